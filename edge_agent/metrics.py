"""Prometheus metrics of the edge agent (`luciole_agent_*`), labelled by controller."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

PUBLISHED = Counter("luciole_agent_messages_published_total",
                    "Messages acknowledged by the broker (PUBACK), resends included",
                    ["controller"])
CONFIRMED = Counter("luciole_agent_messages_confirmed_total",
                    "Messages a receipt released from the outbox, by outcome (stored, or the "
                    "centre's reject reason)", ["controller", "outcome"])
UNCONFIRMED = Gauge("luciole_agent_unconfirmed_messages",
                    "Messages acknowledged by the broker and awaiting the centre's receipt",
                    ["controller"])
RECEIPTS_REFUSED = Counter("luciole_agent_receipts_refused_total",
                           "Receipts ignored: malformed, or naming another controller",
                           ["controller"])
BUFFERED = Gauge("luciole_agent_outbox_messages", "Messages waiting in the outbox", ["controller"])
BUFFER_BYTES = Gauge("luciole_agent_outbox_bytes", "Bytes waiting in the outbox", ["controller"])
DROPPED = Gauge("luciole_agent_outbox_dropped_messages",
                "Messages dropped from a full or aged outbox since it was created", ["controller"])
CONNECTED = Gauge("luciole_agent_connected", "1 while connected to the broker", ["controller"])
RECONNECTS = Counter("luciole_agent_reconnects_total", "Connection attempts that failed or ended",
                     ["controller"])
LINK_FAILURES = Counter("luciole_agent_link_failures_total",
                        "Failed or lost broker connections, by cause (network, tls_trust, tls, auth)",
                        ["controller", "cause"])
POLL_ERRORS = Counter("luciole_agent_poll_errors_total", "Hardware faults raised by the pollers",
                      ["controller", "kind"])
COMMANDS = Counter("luciole_agent_commands_total", "Commands answered, by type and answer",
                   ["controller", "type", "status"])
READINGS = Counter("luciole_agent_readings_total", "Telemetry records written to the outbox",
                   ["controller", "stream"])
PRESENCE = Counter("luciole_agent_presence_detections_total",
                   "Rounds of new presence-sensor detections (each one starts or extends a boost)",
                   ["controller"])
