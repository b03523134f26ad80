"""The fold: latest state per luminaire and the energy rollups (energy_15min per luminaire,
energy_15min_supply per supply point), kept up to date from ingest_segments, right under late and
out-of-order data.

Energy of a reading = its cumulative energy_wh minus that of the luminaire's previous reading by
(time, seq); a negative difference is a counter reset (driver replaced) and the new value counts
from 0; a luminaire's first reading counts 0. Each reading's energy goes to the 15-minute bucket
of its time. A reading whose energy is absent (ABSENT_POWER: gear without D4i metering, or a
missed read) updates the live state but is left out of the energy: neither zero nor a reset.

Ingest queues, in the transaction that stores a batch, one segment per (controller, luminaire,
bucket) of it (ingest/segments.py: its last reading; its metered readings' first and last, the
energy between them, their count). `refresh` (one runner at a time, under an advisory lock) takes
them all: the latest reading per luminaire is upserted into luminaire_state; a luminaire whose
segments all come after its cursor (the last reading counted) and follow one another without
interleaving is rolled up by adding, from these rows alone (each segment's first metered reading
counted against the previous segment's last, or the cursor); any other (late data, or two
batches' readings interleaved) is recomputed from the hypertable, from its earliest segment's
bucket on, which covers the bucket of the next reading after each late one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import psycopg

from wire.records import LuminaireFailure

BUCKET_S = 900
LOCK_KEY = 0x4C55_524F  # pg advisory lock: one rollup runner per database at a time
METERED = f"failure & {int(LuminaireFailure.ABSENT_POWER)} = 0"  # the reading has its energy

TEMP_TABLES = """
CREATE TEMP TABLE IF NOT EXISTS fold_segments (LIKE ingest_segments) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS rollup_plan (
    controller_key integer NOT NULL, luminaire smallint NOT NULL, incremental boolean NOT NULL,
    start timestamptz, stop timestamptz NOT NULL, cursor_wh double precision
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS rollup_counted (
    controller_key integer NOT NULL, luminaire smallint NOT NULL, incremental boolean NOT NULL,
    time timestamptz NOT NULL, seq bigint NOT NULL, energy_wh double precision NOT NULL,
    delta_wh double precision NOT NULL, samples integer NOT NULL
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS rollup_sums (
    controller_key integer NOT NULL, luminaire smallint NOT NULL, bucket timestamptz NOT NULL,
    energy_wh double precision NOT NULL, samples integer NOT NULL, incremental boolean NOT NULL
) ON COMMIT DELETE ROWS;
"""

TAKE = """
WITH taken AS (DELETE FROM ingest_segments RETURNING *)
INSERT INTO fold_segments SELECT * FROM taken
"""

STATE = """
INSERT INTO luminaire_state AS s (controller_key, luminaire, time, level, status, power_w,
                                  energy_wh, voltage_v, power_factor, driver_temp_c, failure)
SELECT DISTINCT ON (controller_key, luminaire) controller_key, luminaire, time, level, status,
       power_w, energy_wh, voltage_v, power_factor, driver_temp_c, failure
FROM fold_segments ORDER BY controller_key, luminaire, time DESC, seq DESC
ON CONFLICT (controller_key, luminaire) DO UPDATE
SET time = excluded.time, level = excluded.level, status = excluded.status,
    power_w = excluded.power_w, energy_wh = excluded.energy_wh, voltage_v = excluded.voltage_v,
    power_factor = excluded.power_factor, driver_temp_c = excluded.driver_temp_c,
    failure = excluded.failure
WHERE excluded.time >= s.time
"""

# Per luminaire: incremental when its metered segments all come after its cursor (or it has none:
# nothing of it was counted yet) and none starts before those before it end (at the same time
# counts as interleaved: recomputing is always right); else recompute
# [bucket of the earliest, max(latest, cursor)].
PLAN = """
INSERT INTO rollup_plan (controller_key, luminaire, incremental, start, stop, cursor_wh)
SELECT m.controller_key, m.luminaire, (c.time IS NULL OR m.lo > c.time) AND NOT m.interleaved,
       CASE WHEN (c.time IS NULL OR m.lo > c.time) AND NOT m.interleaved THEN c.time
            ELSE time_bucket('15 minutes', m.lo) END,
       greatest(m.hi, c.time), c.energy_wh
FROM (SELECT controller_key, luminaire, min(m_first_time) AS lo, max(m_last_time) AS hi,
             coalesce(bool_or(m_first_time <= before_time), false) AS interleaved
      FROM (SELECT controller_key, luminaire, m_first_time, m_last_time,
                   max(m_last_time) OVER w AS before_time
            FROM fold_segments WHERE m_samples > 0
            WINDOW w AS (PARTITION BY controller_key, luminaire ORDER BY m_first_time, m_first_seq
                         ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)) o
      GROUP BY controller_key, luminaire) m
LEFT JOIN energy_cursor c USING (controller_key, luminaire)
"""

_DELTA = """CASE WHEN before_wh IS NULL THEN 0
            WHEN first_wh >= before_wh THEN first_wh - before_wh
            ELSE first_wh END"""

# In-order segments: each chained from the previous one's last reading or the cursor, from the
# fold's own rows (no hypertable read); one counted row per segment, at its last metered reading.
COUNT_INCREMENTAL = f"""
INSERT INTO rollup_counted
SELECT controller_key, luminaire, true, m_last_time, m_last_seq, m_last_wh,
       {_DELTA} + m_inner_wh, m_samples
FROM (
    SELECT f.controller_key, f.luminaire, f.m_last_time, f.m_last_seq, f.m_last_wh,
           f.m_inner_wh, f.m_samples, f.m_first_wh AS first_wh,
           coalesce(lag(f.m_last_wh) OVER w, p.cursor_wh) AS before_wh
    FROM fold_segments f JOIN rollup_plan p USING (controller_key, luminaire)
    WHERE p.incremental AND f.m_samples > 0
    WINDOW w AS (PARTITION BY f.controller_key, f.luminaire ORDER BY f.m_first_time, f.m_first_seq)
) r
"""

# Late or interleaved data: the luminaire's buckets from the earliest segment's on, recounted
# reading by reading from the hypertable after the reading before them.
COUNT_RECOMPUTE = f"""
WITH base AS (
    SELECT p.controller_key, p.luminaire, p.start, p.stop, before.energy_wh AS prev_wh
    FROM rollup_plan p LEFT JOIN LATERAL (
        SELECT t.energy_wh FROM luminaire_telemetry t
        WHERE t.controller_key = p.controller_key AND t.luminaire = p.luminaire
          AND t.time < p.start AND t.{METERED}
        ORDER BY t.time DESC, t.seq DESC LIMIT 1
    ) before ON true
    WHERE NOT p.incremental
), chained AS (
    SELECT b.controller_key, b.luminaire, r.time, r.seq, r.energy_wh AS first_wh,
           coalesce(lag(r.energy_wh) OVER w, b.prev_wh) AS before_wh
    FROM base b CROSS JOIN LATERAL (
        SELECT t.time, t.seq, t.energy_wh FROM luminaire_telemetry t
        WHERE t.controller_key = b.controller_key AND t.luminaire = b.luminaire
          AND t.time >= b.start AND t.time <= b.stop AND t.{METERED}
    ) r
    WINDOW w AS (PARTITION BY b.controller_key, b.luminaire ORDER BY r.time, r.seq)
)
INSERT INTO rollup_counted
SELECT controller_key, luminaire, false, time, seq, first_wh, {_DELTA}, 1
FROM chained
"""

SUMS = """
INSERT INTO rollup_sums
SELECT controller_key, luminaire, time_bucket('15 minutes', time), sum(delta_wh), sum(samples),
       incremental
FROM rollup_counted GROUP BY 1, 2, 3, 6
"""

APPLY = """
INSERT INTO energy_15min AS e (bucket, controller_key, luminaire, energy_wh, samples)
SELECT bucket, controller_key, luminaire, energy_wh, samples FROM rollup_sums
WHERE NOT incremental ORDER BY controller_key, luminaire, bucket
ON CONFLICT (controller_key, luminaire, bucket) DO UPDATE
SET energy_wh = excluded.energy_wh, samples = excluded.samples;

INSERT INTO energy_15min AS e (bucket, controller_key, luminaire, energy_wh, samples)
SELECT bucket, controller_key, luminaire, energy_wh, samples FROM rollup_sums
WHERE incremental ORDER BY controller_key, luminaire, bucket
ON CONFLICT (controller_key, luminaire, bucket) DO UPDATE
SET energy_wh = e.energy_wh + excluded.energy_wh, samples = e.samples + excluded.samples;

INSERT INTO energy_cursor AS c (controller_key, luminaire, time, seq, energy_wh)
SELECT DISTINCT ON (controller_key, luminaire) controller_key, luminaire, time, seq, energy_wh
FROM rollup_counted ORDER BY controller_key, luminaire, time DESC, seq DESC
ON CONFLICT (controller_key, luminaire) DO UPDATE
SET time = excluded.time, seq = excluded.seq, energy_wh = excluded.energy_wh;

INSERT INTO energy_15min_supply AS s (bucket, ean, energy_wh)
SELECT touched.bucket, touched.ean, sum(e.energy_wh)
FROM (
    SELECT DISTINCT cab.supply_point_ean AS ean, r.bucket
    FROM rollup_sums r
    JOIN controllers c ON c.key = r.controller_key
    JOIN cabinets cab ON cab.id = c.cabinet_id
    WHERE cab.supply_point_ean IS NOT NULL
) touched
JOIN cabinets cab ON cab.supply_point_ean = touched.ean
JOIN controllers c ON c.cabinet_id = cab.id
JOIN energy_15min e ON e.controller_key = c.key AND e.bucket = touched.bucket
GROUP BY touched.ean, touched.bucket ORDER BY touched.ean, touched.bucket
ON CONFLICT (ean, bucket) DO UPDATE SET energy_wh = excluded.energy_wh;
"""


@dataclass(frozen=True)
class RefreshResult:
    luminaires: int  # luminaires with new readings
    readings: int  # metered readings (re)counted
    recomputed: int  # luminaires recomputed because of late data


def refresh(conn: psycopg.Connection) -> RefreshResult | None:
    """Fold ingest_segments into the live state and the rollups in one transaction; None when another
    runner holds the lock (its pass or the next one picks the marks up). Leaves no transaction open."""
    with conn.transaction(), conn.cursor() as cur:  # committed on return, rolled back on error
        cur.execute(TEMP_TABLES)
        locked = cur.execute("SELECT pg_try_advisory_xact_lock(%s)", (LOCK_KEY,)).fetchone()
        if not (locked and locked[0]):
            return None
        cur.execute(TAKE)
        if cur.rowcount == 0:
            return RefreshResult(0, 0, 0)
        cur.execute(STATE)
        luminaires = cur.execute(PLAN).rowcount
        cur.execute(COUNT_INCREMENTAL)
        cur.execute(COUNT_RECOMPUTE)
        row = cur.execute("SELECT coalesce(sum(samples), 0) FROM rollup_counted").fetchone()
        readings = int(row[0]) if row else 0
        row = cur.execute("SELECT count(*) FROM rollup_plan WHERE NOT incremental").fetchone()
        recomputed = row[0] if row else 0
        cur.execute(SUMS)
        cur.execute(APPLY)
    return RefreshResult(luminaires, readings, recomputed)


def pending(conn: psycopg.Connection) -> int:
    """Readings not folded yet."""
    row = conn.execute("SELECT coalesce(sum(readings), 0) FROM ingest_segments").fetchone()
    n = row[0] if row else 0
    conn.commit()
    return int(n)


# --- pure reference ----------------------------------------------------------------------


def reference_buckets(
    readings: Iterable[tuple[int, int, int, float]],
) -> dict[tuple[int, int], tuple[float, int]]:
    """Pure-Python oracle: readings (luminaire, time_s, seq, energy_wh) in any order ->
    {(luminaire, bucket_start_s): (energy_wh, samples)}."""
    by_luminaire: dict[int, list[tuple[int, int, float]]] = {}
    for lum, t, seq, energy in readings:
        by_luminaire.setdefault(lum, []).append((t, seq, energy))
    out: dict[tuple[int, int], tuple[float, int]] = {}
    for lum, rows in by_luminaire.items():
        rows.sort(key=lambda r: (r[0], r[1]))
        previous: float | None = None
        for t, _seq, energy in rows:
            if previous is None:
                delta = 0.0
            elif energy >= previous:
                delta = energy - previous
            else:  # counter reset: the new counter counts from 0
                delta = energy
            previous = energy
            key = (lum, t - t % BUCKET_S)
            total, samples = out.get(key, (0.0, 0))
            out[key] = (total + delta, samples + 1)
    return out


DIRECT_SQL = f"""
SELECT controller_key, luminaire, time_bucket('15 minutes', time) AS bucket,
       sum(CASE WHEN before_wh IS NULL THEN 0 WHEN energy_wh >= before_wh
                THEN energy_wh - before_wh ELSE energy_wh END) AS energy_wh,
       count(*) AS samples
FROM (SELECT controller_key, luminaire, time, energy_wh,
             lag(energy_wh) OVER (PARTITION BY controller_key, luminaire ORDER BY time, seq) AS before_wh
      FROM luminaire_telemetry WHERE {METERED}) r
GROUP BY 1, 2, 3
"""
"""The same arithmetic as one SQL query over all raw rows: the check after a run."""
