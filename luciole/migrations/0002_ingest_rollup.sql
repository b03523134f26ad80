-- Ingest's incremental energy rollup bookkeeping.
--
-- energy_dirty: (luminaire, time range) of readings committed by an ingest batch whose energy
-- has not been rolled up yet. Written in the same transaction as the readings; append-only with
-- no unique key so concurrent workers never wait on each other here; drained by the rollup.
CREATE TABLE energy_dirty (
    controller_key  integer NOT NULL,
    luminaire       smallint NOT NULL,
    t_min           timestamptz NOT NULL,
    t_max           timestamptz NOT NULL
);

-- energy_cursor: the last reading of each luminaire already counted in energy_15min. Readings
-- after it are added incrementally; readings at or before it (late, out of order) make the
-- rollup recompute that luminaire's buckets from the late reading's bucket on.
CREATE TABLE energy_cursor (
    controller_key  integer NOT NULL,
    luminaire       smallint NOT NULL,
    time            timestamptz NOT NULL,
    seq             bigint NOT NULL,
    energy_wh       double precision NOT NULL,
    PRIMARY KEY (controller_key, luminaire)
);
