-- The highest sequence seen per controller boot is derived from the message ledger (whose
-- primary key answers it per controller) instead of being upserted once per message by ingest.
DROP TABLE ingest_offsets;

CREATE VIEW ingest_offsets AS
SELECT controller_key, boot_id, kind,
       max(first_seq + greatest(record_count, 1) - 1) AS max_seq,
       max(received_at) AS updated_at
FROM message_ledger
GROUP BY controller_key, boot_id, kind;
