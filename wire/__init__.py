"""The edge-cloud contract: topics, binary telemetry codec, JSON messages. Pure, no I/O."""
