"""The energy job: each pass reads the readings stored in its window (and late ones the message
ledger names), recomputes the 15-minute intervals they touch per luminaire, cabinet meter, supply
point and tenant, and the local days around them with their baseline and savings."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
import psycopg

from analytics import energy_kernels as ek
from analytics.energy_days import Factor, baseline_wh, days_between, local_day, savings
from analytics.energy_intervals import (
    DRIVER_EFFICIENCY,
    Cells,
    Fleet,
    Grid,
    Method,
    Readings,
    Sun,
    account,
    sun_of,
)
from analytics.fault_job import PassResult
from analytics.kernels import STANDBY_W
from analytics.registry import LUM_STRIDE, Registry, load_registry
from analytics.sun import transitions
from wire.records import LuminaireFailure, Quantity, RecordType
from wire.sensor_channels import METER_SENSOR_BASE, URBAN_SENSOR_BASE

log = logging.getLogger(__name__)

ABSENT_POWER = int(LuminaireFailure.ABSENT_POWER)

_NEWEST = "SELECT max(time) FROM luminaire_telemetry"
_OLDEST = "SELECT min(time) FROM luminaire_telemetry"
_WATERMARK = "SELECT received_at FROM energy_watermark WHERE job = %s"
_SET_WATERMARK = """
INSERT INTO energy_watermark (job, received_at) VALUES (%s, %s)
ON CONFLICT (job) DO UPDATE SET received_at = greatest(energy_watermark.received_at, excluded.received_at)
"""
# Late readings: messages received since the watermark whose readings lie at or before the pass's
# start (already passed by the cursor), per controller the earliest such reading. A controller
# numbers its records in the order it takes them (seq, per boot), so the earliest late reading is
# the earliest reading at or before the start from the lowest seq received since the watermark
# on: one range per controller boot, each reading compared with one range. (Joined message by
# message, each reading was compared with every message of its controller received since the
# watermark: quadratic in a pass's messages, minutes a pass in the demo, further behind each
# time.) A reading of that range that came earlier only moves a recompute earlier, never later.
_LATE = """
WITH received AS (
    SELECT controller_key, boot_id, min(first_seq) AS lo, max(first_seq + record_count) AS hi
    FROM message_ledger
    WHERE received_at > %(since)s AND kind = %(kind)s
    GROUP BY controller_key, boot_id
)
SELECT r.controller_key, min(t.time)
FROM received r JOIN luminaire_telemetry t
  ON t.controller_key = r.controller_key AND t.boot_id = r.boot_id
WHERE t.seq >= r.lo AND t.seq < r.hi
  AND t.time <= %(start)s AND t.time > %(start)s - %(lookback)s
GROUP BY r.controller_key
"""
_RECEIVED = "SELECT max(received_at) FROM message_ledger WHERE received_at > %s"
_COLUMNS = "extract(epoch FROM t.time)::float8, t.energy_wh, t.power_w, t.level, t.failure"
# Per luminaire: the last reading before its recompute start, and the last one before that
# reading's interval (the counter step into the interval comes from it).
_ANCHORS = f"""
SELECT l.i, extract(epoch FROM a.time)::float8, p.*
FROM unnest(%(ck)s::int[], %(lum)s::int2[], %(s)s::timestamptz[], %(i)s::int[]) AS l(ck, lum, s, i)
JOIN LATERAL (
    SELECT t.time FROM luminaire_telemetry t
    WHERE t.controller_key = l.ck AND t.luminaire = l.lum AND t.time < l.s
      AND t.time > l.s - %(lookback)s
    ORDER BY t.time DESC LIMIT 1
) a ON true
LEFT JOIN LATERAL (
    SELECT {_COLUMNS} FROM luminaire_telemetry t
    WHERE t.controller_key = l.ck AND t.luminaire = l.lum
      AND t.time < time_bucket('15 minutes', a.time) AND t.time > l.s - %(lookback)s
    ORDER BY t.time DESC LIMIT 1
) p ON true
"""
_RANGES = f"""
SELECT l.i, {_COLUMNS}
FROM unnest(%(ck)s::int[], %(lum)s::int2[], %(lo)s::timestamptz[], %(hi)s::timestamptz[],
            %(i)s::int[]) AS l(ck, lum, lo, hi, i)
JOIN LATERAL (
    SELECT * FROM luminaire_telemetry t
    WHERE t.controller_key = l.ck AND t.luminaire = l.lum AND t.time >= l.lo AND t.time < l.hi
) t ON true
"""
_WINDOW = f"""
SELECT t.controller_key, t.luminaire, {_COLUMNS}
FROM luminaire_telemetry t WHERE t.time >= %s AND t.time <= %s
"""
_METERS = """
SELECT controller_key, extract(epoch FROM time)::float8, value
FROM sensor_readings
WHERE time >= %s AND time <= %s AND quantity = %s AND sensor >= %s AND sensor < %s
"""
_STAGE = """
CREATE TEMP TABLE IF NOT EXISTS energy_stage (LIKE energy_interval INCLUDING DEFAULTS)
ON COMMIT DELETE ROWS
"""
_CELL_COLUMNS = ("bucket", "controller_key", "luminaire", "energy_wh", "measured_wh",
                 "estimated_wh", "default_wh", "uncertainty_wh", "source", "flags", "covered_s",
                 "powered_s", "burning_s", "level_s", "samples")
_UPSERT = f"""
INSERT INTO energy_interval ({", ".join(_CELL_COLUMNS)})
SELECT {", ".join(_CELL_COLUMNS)} FROM energy_stage ORDER BY controller_key, luminaire, bucket
ON CONFLICT (controller_key, luminaire, bucket) DO UPDATE SET
{", ".join(f"{c} = excluded.{c}" for c in _CELL_COLUMNS[3:])}, computed_at = now()
"""
_METER_UPSERT = """
INSERT INTO energy_meter_interval (bucket, cabinet_id, energy_wh, flags)
SELECT * FROM unnest(%s::timestamptz[], %s::text[], %s::float8[], %s::int[])
ON CONFLICT (cabinet_id, bucket) DO UPDATE SET energy_wh = excluded.energy_wh, flags = excluded.flags
"""
_SUPPLY = """
WITH lum AS (
    SELECT e.bucket, cab.supply_point_ean AS ean, sum(e.energy_wh) AS energy_wh,
           sum(e.measured_wh) AS measured_wh, sum(e.estimated_wh) AS estimated_wh,
           sum(e.default_wh) AS default_wh, sum(e.uncertainty_wh) AS uncertainty_wh,
           count(*) AS expected, count(*) FILTER (WHERE e.samples > 0) AS reporting,
           count(*) FILTER (WHERE e.source = 0) AS measured_cells,
           count(*) FILTER (WHERE e.source > 0) AS estimated_cells,
           sum(e.burning_s) AS burning_s,
           sum(e.level_s) / nullif(sum(e.covered_s), 0) AS mean_level, bit_or(e.flags) AS flags
    FROM energy_interval e
    JOIN controllers c ON c.key = e.controller_key
    JOIN cabinets cab ON cab.id = c.cabinet_id
    WHERE e.bucket >= %(lo)s AND e.bucket < %(hi)s AND cab.supply_point_ean IS NOT NULL
    GROUP BY 1, 2
), cabs AS (
    SELECT supply_point_ean AS ean, count(*) AS n FROM cabinets
    WHERE supply_point_ean IS NOT NULL GROUP BY 1
), meter AS (
    SELECT m.bucket, cab.supply_point_ean AS ean, sum(m.energy_wh) AS wh, count(*) AS n
    FROM energy_meter_interval m JOIN cabinets cab ON cab.id = m.cabinet_id
    WHERE m.bucket >= %(lo)s AND m.bucket < %(hi)s GROUP BY 1, 2
)
INSERT INTO energy_supply_interval AS s (bucket, ean, energy_wh, measured_wh, estimated_wh,
    default_wh, uncertainty_wh, luminaires_expected, luminaires_reporting, burning_s, mean_level,
    flags, meter_wh, difference_wh, measured_cells, estimated_cells)
SELECT lum.bucket, lum.ean, lum.energy_wh, lum.measured_wh, lum.estimated_wh, lum.default_wh,
       lum.uncertainty_wh, lum.expected, lum.reporting, lum.burning_s, lum.mean_level, lum.flags,
       CASE WHEN meter.n = cabs.n THEN meter.wh END,
       CASE WHEN meter.n = cabs.n THEN meter.wh - lum.energy_wh END,
       lum.measured_cells, lum.estimated_cells
FROM lum JOIN cabs USING (ean) LEFT JOIN meter USING (ean, bucket)
ORDER BY lum.ean, lum.bucket
ON CONFLICT (ean, bucket) DO UPDATE SET energy_wh = excluded.energy_wh,
    measured_wh = excluded.measured_wh, estimated_wh = excluded.estimated_wh,
    default_wh = excluded.default_wh, uncertainty_wh = excluded.uncertainty_wh,
    luminaires_expected = excluded.luminaires_expected,
    luminaires_reporting = excluded.luminaires_reporting, burning_s = excluded.burning_s,
    mean_level = excluded.mean_level, flags = excluded.flags, meter_wh = excluded.meter_wh,
    difference_wh = excluded.difference_wh, measured_cells = excluded.measured_cells,
    estimated_cells = excluded.estimated_cells, computed_at = now()
"""
# Per tenant and interval: the sums of every luminaire interval of its controllers (the
# municipality's sub-day reports read these rows, api/energy.py).
_TENANT = """
INSERT INTO energy_tenant_interval AS t (tenant_id, bucket, energy_wh, measured_wh, estimated_wh,
    default_wh, uncertainty_wh, measured_cells, estimated_cells)
SELECT c.tenant_id, e.bucket, sum(e.energy_wh), sum(e.measured_wh), sum(e.estimated_wh),
       sum(e.default_wh), sum(e.uncertainty_wh), count(*) FILTER (WHERE e.source = 0),
       count(*) FILTER (WHERE e.source > 0)
FROM energy_interval e JOIN controllers c ON c.key = e.controller_key
WHERE e.bucket >= %(lo)s AND e.bucket < %(hi)s
GROUP BY 1, 2
ORDER BY 1, 2
ON CONFLICT (tenant_id, bucket) DO UPDATE SET energy_wh = excluded.energy_wh,
    measured_wh = excluded.measured_wh, estimated_wh = excluded.estimated_wh,
    default_wh = excluded.default_wh, uncertainty_wh = excluded.uncertainty_wh,
    measured_cells = excluded.measured_cells, estimated_cells = excluded.estimated_cells,
    computed_at = now()
"""
# Per scope key and local day: the sums of its luminaires' intervals (and meters, for supply
# points). d: (day, lo, hi, tenant) of the days touched.
_DAY_SUMS = """
WITH d AS (
    SELECT * FROM unnest(%(day)s::date[], %(lo)s::timestamptz[], %(hi)s::timestamptz[],
                         %(tenant)s::text[]) AS d(day, lo, hi, tenant)
), member AS (
    SELECT 'tenant' AS scope, c.tenant_id AS key, c.key AS ck, NULL::int2 AS lum, c.tenant_id
    FROM controllers c
    UNION ALL
    SELECT 'supply_point', cab.supply_point_ean, c.key, NULL, c.tenant_id
    FROM controllers c JOIN cabinets cab ON cab.id = c.cabinet_id
    WHERE cab.supply_point_ean IS NOT NULL
    UNION ALL
    SELECT 'group', g.id::text, c.key, l.idx, c.tenant_id
    FROM groups g JOIN group_members gm ON gm.group_id = g.id
    JOIN luminaires l ON l.id = gm.luminaire_id JOIN controllers c ON c.id = l.controller_id
)
SELECT m.scope, m.key, d.day, m.tenant_id, count(DISTINCT e.bucket), sum(e.energy_wh),
       sum(e.measured_wh), sum(e.estimated_wh), sum(e.default_wh), sum(e.uncertainty_wh),
       count(*) FILTER (WHERE e.source = 0), count(*) FILTER (WHERE e.source > 0)
FROM d JOIN member m ON m.tenant_id = d.tenant
JOIN energy_interval e ON e.controller_key = m.ck AND (m.lum IS NULL OR e.luminaire = m.lum)
 AND e.bucket >= d.lo AND e.bucket < d.hi
GROUP BY 1, 2, 3, 4
"""
_DAY_METER = """
SELECT s.ean, sum(s.meter_wh), count(s.meter_wh), count(*)
FROM energy_supply_interval s WHERE s.bucket >= %s AND s.bucket < %s AND s.ean = ANY(%s)
GROUP BY 1
"""
_MEMBERS = """
SELECT 'group', g.id::text, c.key, l.idx FROM groups g
JOIN group_members gm ON gm.group_id = g.id JOIN luminaires l ON l.id = gm.luminaire_id
JOIN controllers c ON c.id = l.controller_id
"""
_FACTORS = """
SELECT DISTINCT ON (tenant_id, kind) tenant_id, kind, value, unit, basis, year, source
FROM energy_factors WHERE valid_from <= %s ORDER BY tenant_id, kind, valid_from DESC
"""
_BASELINES = "SELECT tenant_id, regime, share FROM energy_baselines"
_CABINET_EAN = "SELECT id, supply_point_ean FROM cabinets ORDER BY id"
_DAY_UPSERT = """
INSERT INTO energy_day (scope, key, day, tenant_id, intervals, intervals_present, energy_wh,
    measured_wh, estimated_wh, default_wh, uncertainty_wh, meter_wh, difference_wh, baseline_wh,
    baseline_regime, savings_wh, tariff_eur_kwh, tariff_basis, tariff_year, tariff_source,
    savings_eur, emission_g_kwh, emission_basis, emission_year, emission_source, savings_co2_kg,
    measured_cells, estimated_cells)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,
        %s, %s, %s, %s, %s, %s)
ON CONFLICT (scope, key, day) DO UPDATE SET intervals = excluded.intervals,
    intervals_present = excluded.intervals_present, energy_wh = excluded.energy_wh,
    measured_wh = excluded.measured_wh, estimated_wh = excluded.estimated_wh,
    default_wh = excluded.default_wh, uncertainty_wh = excluded.uncertainty_wh,
    meter_wh = excluded.meter_wh, difference_wh = excluded.difference_wh,
    baseline_wh = excluded.baseline_wh, baseline_regime = excluded.baseline_regime,
    savings_wh = excluded.savings_wh, tariff_eur_kwh = excluded.tariff_eur_kwh,
    tariff_basis = excluded.tariff_basis, tariff_year = excluded.tariff_year,
    tariff_source = excluded.tariff_source, savings_eur = excluded.savings_eur,
    emission_g_kwh = excluded.emission_g_kwh, emission_basis = excluded.emission_basis,
    emission_year = excluded.emission_year, emission_source = excluded.emission_source,
    savings_co2_kg = excluded.savings_co2_kg, measured_cells = excluded.measured_cells,
    estimated_cells = excluded.estimated_cells, computed_at = now()
"""


def _floor(t: datetime) -> datetime:
    s = t.timestamp()
    return datetime.fromtimestamp(s - s % ek.BUCKET_S, UTC)


def _at(s: np.ndarray) -> list[datetime]:
    return [datetime.fromtimestamp(float(x), UTC) for x in s.tolist()]


@dataclass(frozen=True)
class Places:
    """Sun transitions per rounded controller position (0.1 degree moves them by a minute)."""

    sun: Sun
    ctl_place: np.ndarray
    lat: np.ndarray
    lon: np.ndarray


def places(reg: Registry, t0: float, t1: float) -> Places:
    key = np.round(reg.ctl_lat, 1) * 1000.0 + np.round(reg.ctl_lon, 1)
    uniq, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    lat, lon = reg.ctl_lat[first], reg.ctl_lon[first]
    sun = sun_of([transitions(float(a), float(b), t0, t1)
                  for a, b in zip(lat.tolist(), lon.tolist(), strict=True)])
    return Places(sun, inverse.astype(np.int64), lat, lon)


def fleet_of(reg: Registry, pl: Places) -> Fleet:
    """What the accounting knows of each registered luminaire."""
    ctl = reg.lum_ctl
    tenants = {t: i for i, t in enumerate(sorted(set(reg.ctl_tenant)))}
    ctl_tenant = np.array([tenants[t] for t in reg.ctl_tenant], dtype=np.int64)
    rated = np.where(reg.lum_rated_w > 0, reg.lum_rated_w / DRIVER_EFFICIENCY + STANDBY_W, 0.0)
    return Fleet(rated_input_w=rated, switched=reg.ctl_switched[ctl].astype(bool),
                 place=pl.ctl_place[ctl], peer=reg.ctl_cab[ctl],
                 wider=ctl_tenant[ctl] if ctl.shape[0] else np.zeros(0, np.int64))


def _rows_to_readings(lum: np.ndarray, a: np.ndarray) -> Readings:
    """Readings of rows (t, energy, power, level, failure); energy and power NaN where the gear
    does not measure them (ABSENT_POWER)."""
    absent = (a[:, 4].astype(np.int64) & ABSENT_POWER) != 0
    return Readings.sorted(lum, a[:, 0], np.where(absent, np.nan, a[:, 1]),
                           np.where(absent, np.nan, a[:, 2]), a[:, 3].astype(np.int64))


class EnergyJob:
    """Energy accounting, incrementally, from its cursor (late readings through the ledger)."""

    name = "energy"

    def __init__(self, method: Method | None = None, late_margin_s: float = 300.0) -> None:
        self.method = method or Method()
        self.late_margin = timedelta(seconds=late_margin_s)

    def newest(self, conn: psycopg.Connection) -> datetime | None:
        return conn.execute(_NEWEST).fetchone()[0]  # type: ignore[index]

    def oldest(self, conn: psycopg.Connection) -> datetime | None:
        return conn.execute(_OLDEST).fetchone()[0]  # type: ignore[index]

    def _late(self, conn: psycopg.Connection, start: datetime,
              lookback: timedelta) -> tuple[dict[int, datetime], datetime | None]:
        row = conn.execute(_WATERMARK, (self.name,)).fetchone()
        since = (row[0] - self.late_margin) if row else datetime.now(UTC) - lookback
        late = {int(ck): t for ck, t in conn.execute(_LATE, {
            "since": since, "kind": int(RecordType.LUMINAIRE), "start": start,
            "lookback": lookback}).fetchall()}
        newest = conn.execute(_RECEIVED, (since,)).fetchone()
        return late, (newest[0] if newest else None)

    def run_pass(self, conn: psycopg.Connection, start: datetime, end: datetime) -> PassResult:
        """Recompute the intervals of (start, end] and those late readings touch."""
        began = time.perf_counter()
        reg = load_registry(conn)
        n = reg.n_luminaires
        if n == 0:
            return PassResult(0, 0, 0)
        lookback = timedelta(seconds=self.method.lookback_s)
        w0 = _floor(start)
        late, received = self._late(conn, start, lookback)
        s = np.full(n, w0.timestamp())
        if late:
            keys = np.array(list(late), dtype=np.int64)
            ctl = reg.controllers_of(keys)
            t_late = np.array([_floor(late[int(k)]).timestamp() for k in keys])
            for c, t in zip(ctl.tolist(), t_late.tolist(), strict=True):
                if c >= 0:
                    lums = reg.lum_ctl == c
                    s[lums] = np.minimum(s[lums], t)
        ck = (reg.lum_key // LUM_STRIDE).astype(np.int64)
        idx = reg.lum_idx
        anchors = conn.execute(_ANCHORS, {
            "ck": ck.tolist(), "lum": idx.tolist(), "s": _at(s), "i": list(range(n)),
            "lookback": lookback}).fetchall()
        c0 = s.copy()
        pre_lum, pre_rows = [], []
        for row in anchors:
            i, a_t = int(row[0]), float(row[1])
            c0[i] = a_t - a_t % ek.BUCKET_S
            if row[2] is not None:
                pre_lum.append(i)
                pre_rows.append(row[2:])
        need = np.flatnonzero(c0 < w0.timestamp())
        ranged = conn.execute(_RANGES, {
            "ck": ck[need].tolist(), "lum": idx[need].tolist(), "lo": _at(c0[need]),
            "hi": [w0] * need.shape[0], "i": need.tolist()}).fetchall() if need.shape[0] else []
        window = conn.execute(_WINDOW, (w0, end)).fetchall()
        win = np.array([r[2:] for r in window], dtype=np.float64).reshape(-1, 5)
        win_lum = reg.luminaires_of(np.array([r[0] for r in window], dtype=np.int64),
                                    np.array([r[1] for r in window], dtype=np.int64))
        rng = np.array([r[1:] for r in ranged], dtype=np.float64).reshape(-1, 5)
        pre = np.array(pre_rows, dtype=np.float64).reshape(-1, 5)
        lum = np.concatenate([win_lum, np.array([r[0] for r in ranged], dtype=np.int64),
                              np.array(pre_lum, dtype=np.int64)])
        rows = np.concatenate([win, rng, pre])
        keep = lum >= 0
        readings = _rows_to_readings(lum[keep], rows[keep])
        t_end = end.timestamp()
        pl = places(reg, float(c0.min()), t_end)
        fleet = fleet_of(reg, pl)
        grid = Grid.spans(c0, np.full(n, t_end))
        cells = account(readings, fleet, pl.sun, grid, t_end, self.method)
        self._write_cells(conn, reg, grid, cells)
        lo = datetime.fromtimestamp(float(c0.min()), UTC)
        hi = datetime.fromtimestamp(float(grid.b0.max() + np.diff(grid.off).max()) * ek.BUCKET_S
                                    if grid.cells else t_end, UTC)
        self._write_meters(conn, reg, lo, end)
        conn.execute(_SUPPLY, {"lo": lo, "hi": hi})
        conn.execute(_TENANT, {"lo": lo, "hi": hi})
        self._write_days(conn, reg, pl, lo, end)
        if received is not None:
            conn.execute(_SET_WATERMARK, (self.name, received))
        log.debug("job=energy window=%s..%s readings=%d cells=%d late_controllers=%d "
                  "duration_s=%.3f", start, end, readings.t.shape[0], grid.cells, len(late),
                  time.perf_counter() - began)
        return PassResult(int(win_lum.shape[0]), 0, 0)

    def _write_cells(self, conn: psycopg.Connection, reg: Registry, grid: Grid,
                     cells: Cells) -> None:
        lum = grid.cell_lum()
        bucket_us = (grid.cell_bucket() * int(ek.BUCKET_S) * 1_000_000).astype(np.int64)
        cols = {
            "bucket": bucket_us, "controller_key": (reg.lum_key // LUM_STRIDE)[lum],
            "luminaire": reg.lum_idx[lum], "energy_wh": np.maximum(cells.energy_wh, 0.0),
            "measured_wh": cells.measured_wh, "estimated_wh": cells.estimated_wh,
            "default_wh": cells.default_wh, "uncertainty_wh": cells.uncertainty_wh,
            "source": cells.source, "flags": cells.flags, "covered_s": cells.covered_s,
            "powered_s": cells.powered_s, "burning_s": cells.burning_s, "level_s": cells.level_s,
            "samples": cells.samples,
        }
        conn.execute(_STAGE)
        epoch = datetime(1970, 1, 1, tzinfo=UTC)
        with conn.cursor().copy(f"COPY energy_stage ({', '.join(_CELL_COLUMNS)}) FROM STDIN") as cp:
            for i in range(grid.cells):
                cp.write_row((epoch + timedelta(microseconds=int(cols["bucket"][i])),
                              *(v[i].item() for k, v in cols.items() if k != "bucket")))
        conn.execute(_UPSERT)

    def _write_meters(self, conn: psycopg.Connection, reg: Registry, lo: datetime,
                      end: datetime) -> None:
        rows = conn.execute(_METERS, (lo - timedelta(hours=1), end, int(Quantity.ENERGY_KWH),
                                      METER_SENSOR_BASE, URBAN_SENSOR_BASE)).fetchall()
        if not rows or reg.n_cabinets == 0:
            return
        a = np.array(rows, dtype=np.float64)
        ctl = reg.controllers_of(a[:, 0].astype(np.int64))
        cab = np.where(ctl >= 0, reg.ctl_cab[np.maximum(ctl, 0)], -1)
        ok = cab >= 0
        order = np.lexsort((a[ok, 1], cab[ok]))
        cab_o, t_o, kwh = cab[ok][order], a[ok, 1][order], a[ok, 2][order]
        n_cab = reg.n_cabinets
        start_s = lo.timestamp()
        grid = Grid.spans(np.full(n_cab, start_s), np.full(n_cab, end.timestamp()))
        bound = np.full(n_cab, 1e6)  # W: a cabinet's feeder
        delta, bits = ek.counter_steps(cab_o, t_o, kwh * 1000.0, bound,
                                       np.array([1e9, 1e10, 1e12]), self.method.short_s)
        good = (bits & (ek.STEP_BAD | ek.STEP_FIRST | ek.STEP_RESET | ek.STEP_IMPLAUSIBLE
                        | ek.STEP_GAP)) == 0
        prev = np.arange(cab_o.shape[0]) - 1
        steps = np.flatnonzero(good & np.isfinite(delta))
        energy, covered = np.zeros(grid.cells), np.zeros(grid.cells)
        mean_w = delta[steps] * 3600.0 / np.maximum(t_o[steps] - t_o[prev[steps]], 1e-9)
        ek.spread_steps(cab_o[steps], t_o[prev[steps]], t_o[steps], mean_w, mean_w, delta[steps],
                        grid.b0, grid.off, energy, covered)
        full = covered >= ek.BUCKET_S - 1e-6
        cl = grid.cell_lum()[full]
        buckets = _at(grid.cell_bucket()[full] * ek.BUCKET_S)
        flags = np.zeros(grid.cells, dtype=np.int64)
        conn.execute(_METER_UPSERT, (buckets, [reg.cab_id[c] for c in cl.tolist()],
                                     energy[full].tolist(), flags[full].tolist()))

    def _write_days(self, conn: psycopg.Connection, reg: Registry, pl: Places, lo: datetime,
                    end: datetime) -> None:
        """Recompute the local days touched, per tenant, group and supply point."""
        tz_of = dict(zip(reg.ctl_tenant, reg.ctl_tz, strict=True))
        days, los, his, tenants, counts = [], [], [], [], {}
        for tenant, tz in tz_of.items():
            for d in days_between(lo, end, tz):
                a, b, k = local_day(d, tz)
                days.append(d)
                los.append(a)
                his.append(b)
                tenants.append(tenant)
                counts[(tenant, d)] = (a, b, k)
        sums = conn.execute(_DAY_SUMS, {"day": days, "lo": los, "hi": his,
                                        "tenant": tenants}).fetchall()
        if not sums:
            return
        factors: dict[tuple[str, str], Factor] = {}
        for t, kind, value, unit, basis, year, source in conn.execute(
                _FACTORS, (max(days),)).fetchall():
            factors[(t, kind)] = Factor(value, unit, basis, year, source)
        regimes = {t: (regime, share) for t, regime, share in conn.execute(_BASELINES).fetchall()}
        cab_ean: dict[str, str | None] = {r[0]: r[1] for r in conn.execute(_CABINET_EAN)}
        ctl_ean = np.array([cab_ean.get(reg.cab_id[c]) or "" if c >= 0 else ""
                            for c in reg.ctl_cab.tolist()], dtype=np.str_)
        groups: dict[str, np.ndarray] = {}
        for _, gid, ck, idx in conn.execute(_MEMBERS).fetchall():
            j = reg.luminaires_of(np.array([ck]), np.array([idx]))[0]
            if j >= 0:
                groups.setdefault(gid, np.zeros(0, np.int64))
                groups[gid] = np.append(groups[gid], j)
        rated = fleet_of(reg, pl).rated_input_w
        ctl_tenant = np.array(reg.ctl_tenant, dtype=np.str_)
        for scope, key, day, tenant, present, energy, meas, est, dflt, unc, n_meas, n_est in sums:
            a, b, k = counts[(tenant, day)]
            if scope == "tenant":
                lums = np.flatnonzero(ctl_tenant[reg.lum_ctl] == key)
            elif scope == "supply_point":
                lums = np.flatnonzero(ctl_ean[reg.lum_ctl] == key)
            else:
                lums = groups.get(key, np.zeros(0, np.int64))
            night = self._night(pl, reg, lums, a, b)
            regime, share = regimes.get(tenant, ("full_dusk_to_dawn", 1.0))
            base = baseline_wh(rated[lums], night, share)
            tariff = factors.get((tenant, "tariff"))
            emission = factors.get((tenant, "emission"))
            sv = savings(base, float(energy), tariff, emission)
            meter = diff = None
            if scope == "supply_point":
                m = conn.execute(_DAY_METER, (a, b, [key])).fetchone()
                if m and m[2] == m[3] == k:
                    meter, diff = float(m[1]), float(m[1]) - float(energy)
            conn.execute(_DAY_UPSERT, (
                scope, key, day, tenant, k, present, energy, meas, est, dflt, unc, meter, diff,
                base, regime, sv.saved_wh,
                *(_factor(tariff)), sv.saved_eur, *(_factor(emission)), sv.saved_co2_kg,
                n_meas, n_est))

    @staticmethod
    def _night(pl: Places, reg: Registry, lums: np.ndarray, a: datetime,
               b: datetime) -> np.ndarray:
        place = pl.ctl_place[reg.lum_ctl[lums]]
        out = np.zeros(lums.shape[0])
        for p in np.unique(place).tolist():
            tr = pl.sun.trans[pl.sun.off[p]:pl.sun.off[p + 1]]
            out[place == p] = ek.night_seconds(tr, a.timestamp(), b.timestamp())
        return out


def _factor(f: Factor | None) -> tuple[float | None, str | None, int | None, str | None]:
    return (None, None, None, None) if f is None else (f.value, f.basis, f.year, f.source)


def day_of(t: datetime, tz: str) -> date:
    """The local day of a time."""
    return days_between(t, t + timedelta(microseconds=1), tz)[0]
