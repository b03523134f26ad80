-- Ingest's latest state and energy rollups are folded in bulk, out of the ingest transaction.
--
-- ingest_recent: every luminaire reading committed by ingest (COPY, in the same transaction as
-- its telemetry row) and not yet folded into luminaire_state and the energy rollups. It has no
-- index, so appending costs little; the fold (one runner at a time) empties it about once a
-- second, reading the energy of in-order readings from here instead of from the hypertable.
CREATE TABLE ingest_recent (
    controller_key  integer NOT NULL,
    luminaire       smallint NOT NULL,
    time            timestamptz NOT NULL,
    seq             bigint NOT NULL,
    level           smallint NOT NULL,
    status          smallint NOT NULL,
    power_w         real NOT NULL,
    energy_wh       double precision NOT NULL,
    voltage_v       real NOT NULL,
    power_factor    real NOT NULL,
    driver_temp_c   real NOT NULL,
    failure         integer NOT NULL
);

-- Readings marked by the previous scheme and not rolled up yet move to the new queue.
INSERT INTO ingest_recent
SELECT t.controller_key, t.luminaire, t.time, t.seq, t.level, t.status, t.power_w, t.energy_wh,
       t.voltage_v, t.power_factor, t.driver_temp_c, t.failure
FROM luminaire_telemetry t
JOIN (SELECT controller_key, luminaire, min(t_min) AS lo, max(t_max) AS hi
      FROM energy_dirty GROUP BY controller_key, luminaire) d
  ON d.controller_key = t.controller_key AND d.luminaire = t.luminaire
 AND t.time BETWEEN d.lo AND d.hi;

DROP TABLE energy_dirty;
