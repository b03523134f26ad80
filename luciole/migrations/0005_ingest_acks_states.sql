-- Ingest stores what controllers say of themselves and of the commands they received, and says
-- why it dead-lettered a message.
--
-- controller_states: every birth (online) and death (offline; the broker's last will is a death
-- with reason connection_lost) a controller published, each once (the message ledger drops
-- redeliveries). `time` is the controller's; a last will carries the time of the connection it
-- ends. controllers.online, boot_id, firmware and last_seen follow from this history
-- (ingest/states.py says how a will and a birth of the same boot are ordered). A few messages per
-- controller a day: a plain table (the hypertables are the telemetry and events).
CREATE TABLE controller_states (
    time            timestamptz NOT NULL,
    controller_key  integer NOT NULL,
    online          boolean NOT NULL,
    reason          text CHECK (NOT online OR reason IS NULL),  -- why offline, if said
    firmware        text NOT NULL,
    luminaires      smallint NOT NULL CHECK (luminaires BETWEEN 0 AND 1024),
    boot_id         bigint NOT NULL,
    seq             bigint NOT NULL,
    message_id      text NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX controller_states_controller_time ON controller_states (controller_key, time DESC);
CREATE INDEX controller_states_boot ON controller_states (controller_key, boot_id, seq);

-- A dead letter's reason is a short stable label; detail says more when there is more to say
-- (which field of a JSON message was refused, the database's error).
ALTER TABLE ingest_rejects ADD COLUMN detail text;
