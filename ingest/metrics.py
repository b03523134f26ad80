"""Prometheus metrics of ingest, named luciole_ingest_<thing>_<unit>."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

MESSAGES = Counter("luciole_ingest_messages", "MQTT messages committed and acknowledged", ["kind"])
RECORDS = Counter("luciole_ingest_records", "Records stored", ["kind"])
DUPLICATES = Counter("luciole_ingest_duplicate_messages", "Redelivered or replayed messages dropped")
REJECTS = Counter("luciole_ingest_rejects", "Rejected payloads or records", ["reason"])
DB_ERRORS = Counter("luciole_ingest_db_errors", "Failed batch transactions", ["error"])
INTERNAL_ERRORS = Counter(
    "luciole_ingest_internal_errors",
    "Messages dead-lettered as internal_error: ingest failed on them unexpectedly (a bug)",
)
BATCH_SPLITS = Counter(
    "luciole_ingest_batch_splits", "Refused batches split to find their offending messages"
)
UNSTORABLE = Counter(
    "luciole_ingest_unstorable_messages",
    "Messages neither stored nor dead-lettered (the dead letter was refused too); logged",
)
BATCH_MESSAGES = Histogram(
    "luciole_ingest_batch_messages", "Messages per batch",
    buckets=(1, 5, 10, 25, 50, 100, 200, 400, 800, 1600),
)
BATCH_RECORDS = Histogram(
    "luciole_ingest_batch_records", "Records per batch",
    buckets=(1, 10, 100, 500, 1000, 5000, 10_000, 25_000, 50_000, 100_000),
)
COMMIT_SECONDS = Histogram(
    "luciole_ingest_commit_seconds", "Batch transaction time, first statement to commit",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
LAG_SECONDS = Histogram(
    "luciole_ingest_lag_seconds", "Now minus record time at commit (median of each batch)",
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 3600, 86_400),
)
LAG_MAX_SECONDS = Gauge("luciole_ingest_lag_max_seconds", "Largest now minus record time of the last batch")
INFLIGHT = Gauge("luciole_ingest_inflight_messages", "Received and not yet acknowledged messages")
CONNECTED = Gauge("luciole_ingest_connected", "1 while subscribed to the broker")
ROLLUP_SECONDS = Histogram(
    "luciole_ingest_rollup_seconds", "Energy rollup pass time",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
RECEIPTS = Counter("luciole_ingest_receipts_total",
                   "Receipts published to controllers after a commit (one per controller per batch)")
