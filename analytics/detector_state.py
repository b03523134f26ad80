"""The fault detectors' state between passes: arrays in dense device order, kept in the database."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import psycopg

from analytics.fault_types import CABINET_KINDS, LUMINAIRE_KINDS
from analytics.kernels import DRIVER_KNEE, STANDBY_W
from analytics.registry import LUM_STRIDE, Registry

RELIGHT_DEPTH = 4  # night-time re-lightings remembered per luminaire
DRIVER_EFFICIENCY = 0.92  # typical, for a first guess of a luminaire's full-level power

_LOAD_LUM = """
SELECT controller_key, luminaire, last_time, base_full_w, base_samples, full_ratio, last_power_w,
       lit, relights, bad, good, open
FROM detector_luminaire_state
"""
_LOAD_CTL = "SELECT controller_key, last_seen, comm_open FROM detector_controller_state"
_LOAD_CAB = (
    "SELECT cabinet_id, loss_coefficient, loss_samples, bad, good, open, meter_energy_kwh,"
    " meter_time, gap_start, gap_end, gap_meter_wh FROM detector_cabinet_state"
)
_LOAD_SENSOR = """
SELECT controller_key, sensor, quantity, last_value, repeats, open, last_time
FROM detector_sensor_state
"""

_SAVE_LUM = (
    "CREATE TEMP TABLE IF NOT EXISTS s_lum (LIKE detector_luminaire_state)",
    "COPY s_lum (controller_key, luminaire, last_time, base_full_w, base_spread, base_samples,"
    " full_ratio, last_power_w, lit, relights, bad, good, open) FROM STDIN (FORMAT BINARY)",
    """INSERT INTO detector_luminaire_state SELECT * FROM s_lum
       ON CONFLICT (controller_key, luminaire) DO UPDATE SET
       last_time = EXCLUDED.last_time, base_full_w = EXCLUDED.base_full_w,
       base_spread = EXCLUDED.base_spread, base_samples = EXCLUDED.base_samples,
       full_ratio = EXCLUDED.full_ratio, last_power_w = EXCLUDED.last_power_w,
       lit = EXCLUDED.lit, relights = EXCLUDED.relights, bad = EXCLUDED.bad,
       good = EXCLUDED.good, open = EXCLUDED.open""",
    "DELETE FROM s_lum",
)
_SAVE_CTL = (
    "CREATE TEMP TABLE IF NOT EXISTS s_ctl (LIKE detector_controller_state)",
    "COPY s_ctl (controller_key, last_seen, comm_open) FROM STDIN",
    """INSERT INTO detector_controller_state SELECT * FROM s_ctl
       ON CONFLICT (controller_key) DO UPDATE SET
       last_seen = EXCLUDED.last_seen, comm_open = EXCLUDED.comm_open""",
    "DELETE FROM s_ctl",
)
_SAVE_CAB = (
    "CREATE TEMP TABLE IF NOT EXISTS s_cab (LIKE detector_cabinet_state)",
    "COPY s_cab (cabinet_id, loss_coefficient, loss_samples, bad, good, open, meter_energy_kwh,"
    " meter_time, gap_start, gap_end, gap_meter_wh) FROM STDIN",
    """INSERT INTO detector_cabinet_state SELECT * FROM s_cab
       ON CONFLICT (cabinet_id) DO UPDATE SET
       loss_coefficient = EXCLUDED.loss_coefficient, loss_samples = EXCLUDED.loss_samples,
       bad = EXCLUDED.bad, good = EXCLUDED.good, open = EXCLUDED.open,
       meter_energy_kwh = EXCLUDED.meter_energy_kwh, meter_time = EXCLUDED.meter_time,
       gap_start = EXCLUDED.gap_start, gap_end = EXCLUDED.gap_end,
       gap_meter_wh = EXCLUDED.gap_meter_wh""",
    "DELETE FROM s_cab",
)
_SAVE_SENSOR = (
    "CREATE TEMP TABLE IF NOT EXISTS s_sen (LIKE detector_sensor_state)",
    "COPY s_sen (controller_key, sensor, quantity, last_value, repeats, open, last_time)"
    " FROM STDIN",
    """INSERT INTO detector_sensor_state SELECT * FROM s_sen
       ON CONFLICT (controller_key, sensor, quantity) DO UPDATE SET
       last_value = EXCLUDED.last_value, repeats = EXCLUDED.repeats, open = EXCLUDED.open,
       last_time = EXCLUDED.last_time""",
    "DELETE FROM s_sen",
)


def first_guess_full_w(rated_w: np.ndarray) -> np.ndarray:
    """Input power at full level expected from the rated LED power, before any reading."""
    return STANDBY_W + np.asarray(rated_w, np.float64) / DRIVER_EFFICIENCY * (
        DRIVER_KNEE + (1.0 - DRIVER_KNEE))


@dataclass
class DetectorState:
    """Everything the detectors remember, for every registered device."""

    # luminaires
    last_time: np.ndarray
    base_full_w: np.ndarray
    base_samples: np.ndarray  # int64
    full_ratio: np.ndarray
    last_power_w: np.ndarray
    lit: np.ndarray  # bool
    relights: np.ndarray  # (n, RELIGHT_DEPTH)
    bad: np.ndarray  # int16 (n, kinds)
    good: np.ndarray
    open: np.ndarray  # bool (n, kinds)
    # controllers
    last_seen: np.ndarray
    comm_open: np.ndarray  # bool
    # cabinets
    loss_coefficient: np.ndarray  # meter = load + coefficient x load^2
    loss_samples: np.ndarray  # int64
    cab_bad: np.ndarray  # int16 (cabinets, cabinet kinds)
    cab_good: np.ndarray
    cab_open: np.ndarray
    # the last meter energy register examined (kWh) and its time (epoch s); NaN: none
    meter_kwh: np.ndarray
    meter_t: np.ndarray
    # a step of the meter across a gap waiting to be judged: start, end (epoch s), meter Wh
    gap: np.ndarray  # (cabinets, 3); NaN: none
    # sensors: (controller_key, sensor, quantity) -> [last_value, repeats, open, last_time
    # (epoch s of the last reading examined; NaN: none)]
    sensors: dict[tuple[int, int, int], tuple[float, int, bool, float]]

    @classmethod
    def fresh(cls, reg: Registry) -> DetectorState:
        n, c, k = reg.n_luminaires, reg.n_cabinets, len(LUMINAIRE_KINDS)
        kc = len(CABINET_KINDS)
        return cls(
            last_time=np.full(n, np.nan), base_full_w=first_guess_full_w(reg.lum_rated_w),
            base_samples=np.zeros(n, np.int64), full_ratio=np.full(n, np.nan),
            last_power_w=np.zeros(n), lit=np.zeros(n, bool),
            relights=np.full((n, RELIGHT_DEPTH), np.nan),
            bad=np.zeros((n, k), np.int16), good=np.zeros((n, k), np.int16),
            open=np.zeros((n, k), bool),
            last_seen=np.full(reg.n_controllers, np.nan),
            comm_open=np.zeros(reg.n_controllers, bool),
            loss_coefficient=np.zeros(c), loss_samples=np.zeros(c, np.int64),
            cab_bad=np.zeros((c, kc), np.int16), cab_good=np.zeros((c, kc), np.int16),
            cab_open=np.zeros((c, kc), bool), meter_kwh=np.full(c, np.nan),
            meter_t=np.full(c, np.nan), gap=np.full((c, 3), np.nan), sensors={},
        )


def _fit(values: np.ndarray | list[object], width: int, fill: object) -> list[object]:
    """A stored array padded or cut to the current number of kinds (kinds may be added)."""
    return list(values[:width]) + [fill] * max(0, width - len(values))


def load_state(conn: psycopg.Connection, reg: Registry) -> DetectorState:
    """The stored state of every registered device; fresh values for devices never seen."""
    st = DetectorState.fresh(reg)
    k, kc = len(LUMINAIRE_KINDS), len(CABINET_KINDS)
    rows = conn.execute(_LOAD_LUM).fetchall()
    if rows:
        j = reg.luminaires_of(np.array([r[0] for r in rows]), np.array([r[1] for r in rows]))
        for r, jj in zip(rows, j.tolist(), strict=True):
            if jj < 0:
                continue
            st.last_time[jj], st.base_full_w[jj], st.base_samples[jj] = r[2], r[3], r[4]
            st.full_ratio[jj], st.last_power_w[jj], st.lit[jj] = r[5], r[6], r[7]
            st.relights[jj] = _fit(np.frombuffer(r[8], "<f8"), RELIGHT_DEPTH, np.nan)
            st.bad[jj] = _fit(np.frombuffer(r[9], "<i2"), k, 0)
            st.good[jj] = _fit(np.frombuffer(r[10], "<i2"), k, 0)
            st.open[jj] = _fit(np.frombuffer(r[11], "?"), k, False)
    rows = conn.execute(_LOAD_CTL).fetchall()
    if rows:
        c = reg.controllers_of(np.array([r[0] for r in rows]))
        for r, cc in zip(rows, c.tolist(), strict=True):
            if cc >= 0:
                st.last_seen[cc], st.comm_open[cc] = r[1], r[2]
    cab_pos = {cid: i for i, cid in enumerate(reg.cab_id)}
    for r in conn.execute(_LOAD_CAB).fetchall():
        i = cab_pos.get(r[0])
        if i is not None:
            st.loss_coefficient[i], st.loss_samples[i] = r[1], r[2]
            st.cab_bad[i], st.cab_good[i] = _fit(r[3], kc, 0), _fit(r[4], kc, 0)
            st.cab_open[i] = _fit(r[5], kc, False)
            st.meter_kwh[i] = np.nan if r[6] is None else r[6]
            st.meter_t[i] = np.nan if r[7] is None else r[7]
            st.gap[i] = [np.nan if v is None else v for v in r[8:11]]
    for r in conn.execute(_LOAD_SENSOR).fetchall():
        st.sensors[(r[0], r[1], r[2])] = (r[3], r[4], r[5], np.nan if r[6] is None else r[6])
    return st


_LUM_TYPES = ["int4", "int2", "float8", "float8", "float8", "int4", "float8", "float8", "bool",
              "bytea", "bytea", "bytea", "bytea"]


def _copy(conn: psycopg.Connection, statements: tuple[str, ...], rows: list[tuple],
          types: list[str] | None = None) -> None:
    if not rows:
        return
    create, copy_sql, merge, drop = statements
    conn.execute(create)  # once per session; emptied after each merge
    with conn.cursor().copy(copy_sql) as copy:
        if types is not None:
            copy.set_types(types)
        for row in rows:
            copy.write_row(row)
    conn.execute(merge)
    conn.execute(drop)


def _nulls(a: np.ndarray) -> list[float | None]:
    """NaN as NULL."""
    return [None if np.isnan(v) else v for v in a.tolist()]


def _blobs(a: np.ndarray) -> list[bytes]:
    """Each row of a 2-d array as its raw little-endian bytes."""
    a = np.ascontiguousarray(a)
    raw = a.tobytes()
    width = a.shape[1] * a.dtype.itemsize
    return [raw[i * width:(i + 1) * width] for i in range(a.shape[0])]


def save_state(conn: psycopg.Connection, reg: Registry, st: DetectorState,
               luminaires: np.ndarray, controllers: np.ndarray) -> None:
    """Store the state of the given dense luminaires and controllers, every cabinet and sensor."""
    lums = np.unique(luminaires)
    key = reg.lum_key[lums]
    rows = list(zip(
        (key // LUM_STRIDE).tolist(), (key % LUM_STRIDE).tolist(),
        np.nan_to_num(st.last_time[lums], nan=0.0).tolist(), st.base_full_w[lums].tolist(),
        [0.0] * lums.shape[0], st.base_samples[lums].tolist(), st.full_ratio[lums].tolist(),
        st.last_power_w[lums].tolist(), st.lit[lums].tolist(),
        _blobs(st.relights[lums].astype("<f8")), _blobs(st.bad[lums].astype("<i2")),
        _blobs(st.good[lums].astype("<i2")), _blobs(st.open[lums].astype("?")), strict=False,
    ))
    _copy(conn, _SAVE_LUM, rows, _LUM_TYPES)
    ctls = np.unique(controllers)
    ctls = ctls[~np.isnan(st.last_seen[ctls])]
    _copy(conn, _SAVE_CTL, list(zip(reg.ctl_key[ctls].tolist(), st.last_seen[ctls].tolist(),
                                    st.comm_open[ctls].tolist(), strict=True)))
    _copy(conn, _SAVE_CAB, list(zip(reg.cab_id, st.loss_coefficient.tolist(),
                                    st.loss_samples.tolist(), st.cab_bad.tolist(),
                                    st.cab_good.tolist(), st.cab_open.tolist(),
                                    _nulls(st.meter_kwh), _nulls(st.meter_t),
                                    _nulls(st.gap[:, 0]), _nulls(st.gap[:, 1]),
                                    _nulls(st.gap[:, 2]), strict=True)))
    _copy(conn, _SAVE_SENSOR, [(*k, v[0], v[1], v[2], None if np.isnan(v[3]) else v[3])
                               for k, v in st.sensors.items()])
