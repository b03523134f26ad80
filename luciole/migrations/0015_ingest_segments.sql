-- The fold's queue holds segments instead of every reading: per batch, one row per (controller,
-- luminaire, 15-minute bucket) with its last reading (the live state) and, over its metered
-- readings (energy present), the first and last (time, seq, energy), the energy between them and
-- their count (ingest/segments.py). A backlog of several polls per luminaire in a batch queues one
-- row per luminaire and bucket, and the fold no longer re-reads every reading.
CREATE TABLE ingest_segments (
    controller_key  integer NOT NULL,
    luminaire       smallint NOT NULL,
    time            timestamptz NOT NULL,     -- the segment's last reading
    seq             bigint NOT NULL,
    level           smallint NOT NULL,
    status          smallint NOT NULL,
    power_w         real NOT NULL,
    energy_wh       double precision NOT NULL,
    voltage_v       real NOT NULL,
    power_factor    real NOT NULL,
    driver_temp_c   real NOT NULL,
    failure         integer NOT NULL,
    readings        integer NOT NULL,         -- readings in the segment
    m_first_time    timestamptz NOT NULL,     -- metered readings: meaningful when m_samples > 0
    m_first_seq     bigint NOT NULL,
    m_first_wh      double precision NOT NULL,
    m_last_time     timestamptz NOT NULL,
    m_last_seq      bigint NOT NULL,
    m_last_wh       double precision NOT NULL,
    m_inner_wh      double precision NOT NULL, -- energy between its consecutive metered readings
    m_samples       integer NOT NULL
);

-- Readings queued by the previous scheme and not folded yet: one segment each.
INSERT INTO ingest_segments
SELECT controller_key, luminaire, time, seq, level, status, power_w, energy_wh, voltage_v,
       power_factor, driver_temp_c, failure, 1,
       time, seq, energy_wh, time, seq, energy_wh, 0,
       CASE WHEN failure & 256 = 0 THEN 1 ELSE 0 END  -- 256: LuminaireFailure.ABSENT_POWER
FROM ingest_recent;

DROP TABLE ingest_recent;

-- ingest queues segments and folds them (one worker at a time)
GRANT SELECT, INSERT, DELETE ON ingest_segments TO luciole_ingest;
