"""The fault-detection job: one pass reads the records stored in its window and raises or clears
faults, with the detectors' state kept in the database between passes."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg

from analytics import fault_types as ft
from analytics.causes import clock, luminaire_cause
from analytics.detector_state import DetectorState, load_state, save_state
from analytics.fault_store import FaultEvent, apply_events
from analytics.fleet_rules import (
    METER_GAP_SETTLE_S,
    MeterSteps,
    SensorReadings,
    contactor_events,
    due_gap_steps,
    meter_events,
    meter_gap_events,
    meter_gap_steps,
    silence_events,
    stuck_sensor_events,
)
from analytics.luminaire_rules import (
    Evidence,
    LuminaireReadings,
    debounced,
    light_percent,
    luminaire_evidence,
)
from analytics.registry import LUM_STRIDE, Registry, load_registry
from analytics.sun import sun_phase_at

_LUMINAIRE_ROWS = """
SELECT controller_key, luminaire, extract(epoch FROM time)::float8, level, status, power_w,
       voltage_v, current_a, power_factor, driver_temp_c, failure
FROM luminaire_telemetry WHERE time > %s AND time <= %s
"""
# readings stored after the job's cursor passed their time (an agent's outbox drained after an
# outage): per luminaire, those newer than the last reading it examined, up to the cursor; the
# constant lower bound lets TimescaleDB skip the chunks before it
_LATE_ROWS = """
SELECT t.* FROM unnest(%(keys)s::int4[], %(lums)s::int2[], %(since)s::timestamptz[])
    AS u(key, lum, since)
CROSS JOIN LATERAL (
    SELECT controller_key, luminaire, extract(epoch FROM time)::float8, level, status, power_w,
           voltage_v, current_a, power_factor, driver_temp_c, failure
    FROM luminaire_telemetry
    WHERE controller_key = u.key AND luminaire = u.lum AND time > u.since AND time > %(lo)s
      AND time <= %(start)s
    OFFSET 0) t  -- not flattened into a join: one index range scan per luminaire
"""
_SENSOR_ROWS = """
SELECT controller_key, sensor, quantity, extract(epoch FROM time)::float8, value
FROM sensor_readings WHERE time > %s AND time <= %s
"""
# the same for the series the stuck-sensor detector examines (urban sensors, index >= 32)
_LATE_SENSOR_ROWS = """
SELECT t.* FROM unnest(%(keys)s::int4[], %(sensors)s::int2[], %(quantities)s::int2[],
                       %(since)s::timestamptz[]) AS u(key, sensor, quantity, since)
CROSS JOIN LATERAL (
    SELECT controller_key, sensor, quantity, extract(epoch FROM time)::float8, value
    FROM sensor_readings
    WHERE controller_key = u.key AND sensor = u.sensor AND quantity = u.quantity
      AND time > u.since AND time > %(lo)s AND time <= %(start)s
    OFFSET 0) t
"""
_NEWEST = "SELECT max(time) FROM luminaire_telemetry"
_OLDEST = "SELECT min(time) FROM luminaire_telemetry"


@dataclass(frozen=True)
class PassResult:
    """What one pass read and decided."""

    records: int
    raised: int
    cleared: int
    late: int = 0  # of the records, those stored after the passes over their time


# per step of a cabinet meter across a gap: the energy each of its luminaires' counters counted
# from the step's start to its end, each end read between the reports around it (the counter of
# the last report before, plus its power held since; the counter of the first report after,
# less its power held until then); a counter that went backwards (a driver replaced) counts from
# zero. The step is known when every luminaire heard around it was heard on both sides.
_LUMINAIRE_ENERGY = """
SELECT u.i,
       coalesce(sum(CASE WHEN p.e IS NULL OR n.e IS NULL THEN 0.0
                         WHEN n.e >= p.e THEN n.e - p.e ELSE n.e END), 0.0),
       coalesce(bool_and((p.e IS NULL) = (n.e IS NULL)), true)
FROM unnest(%(i)s::int4[], %(keys)s::int4[], %(lums)s::int2[], %(t0)s::timestamptz[],
            %(t1)s::timestamptz[], %(settle)s::interval[]) AS u(i, key, lum, t0, t1, settle)
LEFT JOIN LATERAL (
    SELECT energy_wh + power_w * extract(epoch FROM u.t0 - time) / 3600.0 AS e
    FROM luminaire_telemetry
    WHERE controller_key = u.key AND luminaire = u.lum
      AND time <= u.t0 AND time > u.t0 - u.settle
    ORDER BY time DESC LIMIT 1) p ON true
LEFT JOIN LATERAL (
    SELECT energy_wh - power_w * extract(epoch FROM time - u.t1) / 3600.0 AS e
    FROM luminaire_telemetry
    WHERE controller_key = u.key AND luminaire = u.lum
      AND time >= u.t1 AND time <= u.t1 + u.settle
    ORDER BY time LIMIT 1) n ON true
GROUP BY u.i
"""


def read_luminaire_energy(conn: psycopg.Connection, reg: Registry,
                          steps: MeterSteps) -> tuple[np.ndarray, np.ndarray]:
    """What each step's cabinet's luminaires counted over the step, and whether it is known."""
    n = len(steps)
    wh, complete = np.zeros(n), np.ones(n, bool)
    if n == 0:
        return wh, complete
    lum_cab = reg.ctl_cab[reg.lum_ctl]
    i, lums = [], []
    for k, c in enumerate(steps.cab.tolist()):
        of = np.flatnonzero(lum_cab == c)
        i.append(np.full(of.shape[0], k))
        lums.append(of)
    ii, ll = np.concatenate(i), np.concatenate(lums)
    t0 = [datetime.fromtimestamp(t, UTC) for t in steps.t0[ii].tolist()]
    t1 = [datetime.fromtimestamp(t, UTC) for t in steps.t1[ii].tolist()]
    key = reg.lum_key[ll]
    for k, e, ok in conn.execute(_LUMINAIRE_ENERGY, {
            "i": ii.tolist(), "keys": (key // LUM_STRIDE).tolist(),
            "lums": (key % LUM_STRIDE).tolist(), "t0": t0, "t1": t1,
            "settle": [timedelta(seconds=METER_GAP_SETTLE_S)] * len(t0)}).fetchall():
        wh[k], complete[k] = e, ok
    return wh, complete


def _columns(rows: list[tuple], width: int) -> np.ndarray:
    return np.array(rows, dtype=np.float64).reshape(-1, width)


def _rows(a: np.ndarray, reg: Registry) -> LuminaireReadings:
    """Luminaire rows (as the queries return them) of registered luminaires, sorted."""
    lum = reg.luminaires_of(a[:, 0].astype(np.int64), a[:, 1].astype(np.int64))
    a, lum = a[lum >= 0], lum[lum >= 0]
    return LuminaireReadings.sorted(
        lum=lum, t=a[:, 2], level=a[:, 3].astype(np.int64), status=a[:, 4].astype(np.int64),
        power=a[:, 5], voltage=a[:, 6], current=a[:, 7], pf=a[:, 8], temp=a[:, 9],
        failure=a[:, 10].astype(np.int64))


def read_late_luminaires(conn: psycopg.Connection, reg: Registry, st: DetectorState,
                         start: datetime, within_s: float, gap_s: float) -> np.ndarray:
    """Readings with times up to `start` that were stored after the passes over their time:
    for each luminaire last examined between `within_s` and `gap_s` before `start` (silent
    since: a luminaire heard just before the cursor has no backlog to replay), those newer than
    the last reading it examined. Rows as the luminaire query returns them."""
    t0 = start.timestamp()
    last = st.last_time
    candidates = np.flatnonzero(np.isfinite(last) & (last < t0 - gap_s) & (last > t0 - within_s))
    out = [np.zeros((0, 11))]
    # two queries: the luminaires heard within the last day (nearly all: one or two chunks to
    # search) and those silent longer (few: up to `within_s` of chunks)
    recent = last[candidates] > t0 - 86400.0
    for group in (candidates[recent], candidates[~recent]):
        if group.shape[0] == 0:
            continue
        key = reg.lum_key[group]
        since = [datetime.fromtimestamp(t, UTC) for t in last[group].tolist()]
        rows = conn.execute(_LATE_ROWS, {
            "keys": (key // LUM_STRIDE).tolist(), "lums": (key % LUM_STRIDE).tolist(),
            "since": since, "lo": min(since), "start": start}).fetchall()
        out.append(_columns(rows, 11))
    return np.concatenate(out)


def read_late_sensors(conn: psycopg.Connection, st: DetectorState, start: datetime,
                      within_s: float, gap_s: float) -> np.ndarray:
    """Urban sensor readings with times up to `start` stored after the passes over their time,
    as `read_late_luminaires` finds them: for each series last examined between `within_s` and
    `gap_s` before `start`, those newer than its last reading examined. Rows as the sensor
    query returns them."""
    t0 = start.timestamp()
    series = [(k, v[3]) for k, v in st.sensors.items()
              if k[1] >= 32 and t0 - within_s < v[3] < t0 - gap_s]
    if not series:
        return np.zeros((0, 5))
    since = [datetime.fromtimestamp(t, UTC) for _, t in series]
    rows = conn.execute(_LATE_SENSOR_ROWS, {
        "keys": [k[0] for k, _ in series], "sensors": [k[1] for k, _ in series],
        "quantities": [k[2] for k, _ in series], "since": since, "lo": min(since),
        "start": start}).fetchall()
    return _columns(rows, 5)


def read_sensors(conn: psycopg.Connection, reg: Registry, start: datetime,
                 end: datetime, late: np.ndarray | None = None) -> SensorReadings:
    """Sensor readings stored for times in (start, end], after the `late` rows if any."""
    a = _columns(conn.execute(_SENSOR_ROWS, (start, end)).fetchall(), 5)
    if late is not None:
        a = np.concatenate([late, a])
    return SensorReadings(ctl=reg.controllers_of(a[:, 0].astype(np.int64)),
                          sensor=a[:, 1].astype(np.int64), quantity=a[:, 2].astype(np.int64),
                          t=a[:, 3], value=a[:, 4])


def luminaire_events(reg: Registry, r: LuminaireReadings, ev: Evidence, rows: np.ndarray,
                     kinds: np.ndarray, signs: np.ndarray) -> list[FaultEvent]:
    """Fault events of debounced luminaire evidence, with their causes."""
    out = []
    for i, k, sign in zip(rows.tolist(), kinds.tolist(), signs.tolist(), strict=True):
        kind = ft.LUMINAIRE_KINDS[k]
        lum = int(r.lum[i])
        c = int(reg.lum_ctl[lum])
        idx = None if kind.scope == "controller" else int(reg.lum_idx[lum])
        t = float(r.t[i])
        if sign < 0:
            out.append(FaultEvent(kind, False, t, reg.ctl_tenant[c], controller_id=reg.ctl_id[c],
                                  luminaire_idx=idx))
            continue
        figures = {
            "power_w": float(r.power[i]), "level_pct": float(light_percent(r.level[i])),
            "expected_w": float(ev.expected_w[i]), "voltage_v": float(r.voltage[i]),
            "current_a": float(r.current[i]), "power_factor": float(r.pf[i]),
            "temp_c": float(r.temp[i]), "ratio": float(np.nan_to_num(ev.ratio[i], nan=1.0)),
            "rated_w": float(reg.lum_rated_w[lum]),
        }
        cause = luminaire_cause(kind, idx=int(reg.lum_idx[lum]), controller=reg.ctl_id[c],
                                at=clock(t, reg.ctl_tz[c]), relights=int(ev.relights[i]),
                                **figures)
        out.append(FaultEvent(kind, True, t, reg.ctl_tenant[c], controller_id=reg.ctl_id[c],
                              luminaire_idx=idx, cause=cause, detail=figures))
    return out


class FaultDetectionJob:
    """Detects faults in the records of each window, incrementally."""

    name = "faults"

    def __init__(self, silence_s: float = 900.0, registry_refresh_s: float = 300.0,
                 late_within_s: float = 7 * 86400.0) -> None:
        self.silence_s = silence_s
        # readings stored up to this long after the last reading examined of their luminaire
        # are examined in their time order; older ones are not
        self.late_within_s = late_within_s
        self.registry_refresh_s = registry_refresh_s
        # state and registry after this process's last pass, reused when the next pass starts
        # where it ended (no other runner advanced the cursor in between)
        self._cache: tuple[datetime, float, Registry, DetectorState] | None = None

    def forget(self) -> None:
        """Drop the in-memory state (the pass that changed it did not commit)."""
        self._cache = None

    def _state(self, conn: psycopg.Connection,
               start: datetime) -> tuple[Registry, DetectorState, float]:
        cache = self._cache
        self._cache = None
        if cache is not None and cache[0] == start and (
                time.monotonic() - cache[1] < self.registry_refresh_s):
            return cache[2], cache[3], cache[1]
        reg = load_registry(conn)
        return reg, load_state(conn, reg), time.monotonic()

    def newest(self, conn: psycopg.Connection) -> datetime | None:
        return conn.execute(_NEWEST).fetchone()[0]  # type: ignore[index]

    def oldest(self, conn: psycopg.Connection) -> datetime | None:
        return conn.execute(_OLDEST).fetchone()[0]  # type: ignore[index]

    def run_pass(self, conn: psycopg.Connection, start: datetime, end: datetime) -> PassResult:
        """Read (start, end], update state and faults; the caller owns the transaction."""
        reg, st, loaded_at = self._state(conn, start)
        late = read_late_luminaires(conn, reg, st, start, self.late_within_s, self.silence_s)
        window = _columns(conn.execute(_LUMINAIRE_ROWS, (start, end)).fetchall(), 11)
        r = _rows(np.concatenate([late, window]), reg)
        late_sensors = read_late_sensors(conn, st, start, self.late_within_s, self.silence_s)
        late_records = int(late.shape[0]) + int(late_sensors.shape[0])
        s = read_sensors(conn, reg, start, end, late_sensors)
        power_before = st.last_power_w.copy()
        night, since, until = sun_phase_at(reg.ctl_lat, reg.ctl_lon, reg.lum_ctl[r.lum], r.t)
        ev = luminaire_evidence(r, reg, st, night, since, until)
        rows, kinds, signs = debounced(r, ev, st)
        events = luminaire_events(reg, r, ev, rows, kinds, signs)
        t0, t1 = start.timestamp(), end.timestamp()
        events += silence_events(reg, st, r, t0, t1, self.silence_s)
        events += contactor_events(reg, st, r, t1)
        # a meter's step across a gap (a day on a switched supply) is judged once the reports of
        # the luminaires after it are stored, before the night rule reads this pass's readings
        meter_gap_steps(reg, st, s)
        steps = due_gap_steps(reg, st, t1)
        events += meter_gap_events(reg, st, steps, *read_luminaire_energy(conn, reg, steps))
        events += meter_events(reg, st, r, power_before, s)
        events += stuck_sensor_events(reg, st, s)
        raised, cleared = apply_events(conn, events)
        save_state(conn, reg, st, r.lum, np.arange(reg.n_controllers))
        self._cache = (end, loaded_at, reg, st)
        return PassResult(len(r) + int(s.t.shape[0]), raised, cleared, late_records)
