"""MQTT -> TimescaleDB ingest: batch decode, validate, dead-letter, deduplicate, COPY, state, rollups."""
