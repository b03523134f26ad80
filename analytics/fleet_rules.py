"""Faults only the centre sees across devices: silent controllers and cabinets, a contactor stuck
on by day, a cabinet meter that disagrees with its luminaires, stuck sensors."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analytics import fault_types as ft
from analytics.causes import clock
from analytics.detector_state import DetectorState
from analytics.fault_store import FaultEvent
from analytics.kernels import repeats
from analytics.luminaire_rules import DAY_MARGIN_S, LuminaireReadings
from analytics.registry import Registry
from analytics.sun import sun_phase_at
from wire.records import Quantity

SUPPLY_ON_MARGIN_S = 600.0  # a switched supply is surely on from sunset + this
CABINET_SILENT_SHARE = 0.2  # this share of a cabinet's controllers silent at once: its supply
CABINET_SILENT_MIN = 2
METER_MIN_LOAD_W = 200.0  # cable losses are learned above this load
METER_EXCESS_W, METER_EXCESS_SHARE = 150.0, 0.04
METER_OK_W, METER_OK_SHARE = 75.0, 0.02
METER_LEARN = 6
#: a step of a cabinet meter's energy register at least this long spans a day of a switched
#: supply (or a segment controller that went silent): its energy is compared with what the
#: cabinet's luminaires counted over the same step
METER_GAP_S = 7200.0
#: energy a gap step may count beyond its luminaires' and the share of cable losses: the error of
#: reading each luminaire's counter at the step's ends between its reports, and the meter's
#: accuracy; a leak of 1.5 A for 1.5 h by day passes it
METER_GAP_EXCESS_WH = 500.0
#: a gap step is judged once the luminaires' reports this long after its end are stored: each
#: luminaire's counter at the step's ends is read between its reports around them
METER_GAP_SETTLE_S = 900.0
STUCK_REPEATS = 5  # this many repeats (six equal readings in a row) is a stuck sensor

_SUPPLY, _CONTACTOR, _METER = 0, 1, 2
#: quantity code -> valid range, and its name in causes
_RANGE: dict[int, tuple[float, float]] = {
    int(q): (float(q.low), float(q.high)) for q in Quantity
}
_NAME: dict[int, str] = {int(q): q.name.lower() for q in Quantity}
assert ft.CABINET_KINDS[_SUPPLY] is ft.SUPPLY_LOSS
assert ft.CABINET_KINDS[_CONTACTOR] is ft.CONTACTOR_FAILURE
assert ft.CABINET_KINDS[_METER] is ft.LEAKAGE_DETECTED


@dataclass(frozen=True)
class SensorReadings:
    """Sensor records of a pass: controller (dense), sensor index, quantity, time, value."""

    ctl: np.ndarray
    sensor: np.ndarray
    quantity: np.ndarray
    t: np.ndarray
    value: np.ndarray


def _cabinet_step(st: DetectorState, kind: int, evaluable: np.ndarray,
                  bad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One pass of evidence per cabinet through its streaks; (raised, cleared) cabinet masks."""
    info = ft.CABINET_KINDS[kind]
    b, g, o = st.cab_bad[:, kind], st.cab_good[:, kind], st.cab_open[:, kind]
    is_bad, is_good = evaluable & bad, evaluable & ~bad
    b[:] = np.where(is_bad, np.minimum(b + 1, 32000), np.where(is_good, 0, b))
    g[:] = np.where(is_good, np.minimum(g + 1, 32000), np.where(is_bad, 0, g))
    raised = ~o & (b >= info.raise_after)
    cleared = o & (g >= info.clear_after)
    o[:] = (o | raised) & ~cleared
    return raised, cleared


def silence_events(reg: Registry, st: DetectorState, r: LuminaireReadings, t_start: float,
                   t_end: float, silence_s: float) -> list[FaultEvent]:
    """Controllers silent while their supply is on: one supplyLoss per cabinet when many are,
    else one communicationFailure per controller. Updates last-seen times in `st`."""
    events: list[FaultEvent] = []
    n = reg.n_controllers
    if n == 0:
        return events
    # heard again: a reading newer than any before this pass (a reading of this pass older than
    # the silence that raised a fault is no sign that the link is back)
    before = st.last_seen.copy()
    back_at = np.full(n, np.inf)
    if len(r):
        ctl = reg.lum_ctl[r.lum]
        np.fmax.at(st.last_seen, ctl, r.t)
        newer = ~(r.t <= before[ctl])
        np.fmin.at(back_at, ctl[newer], r.t[newer])
    heard = np.isfinite(back_at)
    was_open = st.comm_open.copy()
    st.last_seen[:] = np.where(np.isnan(st.last_seen), t_start, st.last_seen)
    places = np.arange(n)
    night, since, until = sun_phase_at(reg.ctl_lat, reg.ctl_lon, places, np.full(n, t_end))
    switched = reg.ctl_switched
    on_now = ~switched | (night & (since > SUPPLY_ON_MARGIN_S))
    on_since = np.where(switched, t_end - since + SUPPLY_ON_MARGIN_S, -np.inf)
    silent_from = np.maximum(st.last_seen, on_since)
    silent = on_now & (t_end - silent_from >= silence_s)

    cab = reg.ctl_cab
    n_cab = reg.n_cabinets
    has_cab = cab >= 0
    cab_n = np.bincount(cab[has_cab], minlength=n_cab)
    cab_silent = np.bincount(cab[has_cab & silent], minlength=n_cab)
    cab_on = np.bincount(cab[has_cab & on_now], minlength=n_cab) > 0
    threshold = np.maximum(CABINET_SILENT_MIN, np.ceil(CABINET_SILENT_SHARE * cab_n))
    lost = cab_silent >= threshold
    raised, cleared = _cabinet_step(st, _SUPPLY, cab_on, lost)
    tz = reg.ctl_tz[0] if reg.ctl_tz else "UTC"
    for c in np.flatnonzero(raised).tolist():
        members = np.flatnonzero(cab == c)
        gone = members[silent[members]]
        since_t = float(np.min(silent_from[gone]))
        events.append(FaultEvent(
            ft.SUPPLY_LOSS, True, t_end, reg.cab_tenant[c], cabinet_id=reg.cab_id[c],
            cause=(f"cabinet {reg.cab_id[c]} has lost its supply: {gone.shape[0]} of "
                   f"{members.shape[0]} controllers silent since {clock(since_t, tz)} while the "
                   f"supply should be on"),
            detail={"silent": int(gone.shape[0]), "controllers": int(members.shape[0]),
                    "since": since_t}))
        for k in gone[st.comm_open[gone]].tolist():  # one fault for the cabinet, not fifty
            st.comm_open[k] = False
            events.append(FaultEvent(ft.COMMUNICATION_FAILURE, False, t_end, reg.ctl_tenant[k],
                                     controller_id=reg.ctl_id[k]))
    for c in np.flatnonzero(cleared).tolist():
        events.append(FaultEvent(ft.SUPPLY_LOSS, False, t_end, reg.cab_tenant[c],
                                 cabinet_id=reg.cab_id[c]))

    explained = np.zeros(n, dtype=bool)
    explained[has_cab] = st.cab_open[cab[has_cab], _SUPPLY]
    for k in np.flatnonzero(silent & ~explained & ~st.comm_open).tolist():
        st.comm_open[k] = True
        where = f" (cabinet {reg.cab_id[cab[k]]})" if cab[k] >= 0 else ""
        events.append(FaultEvent(
            ft.COMMUNICATION_FAILURE, True, t_end, reg.ctl_tenant[k], controller_id=reg.ctl_id[k],
            cause=(f"controller {reg.ctl_id[k]}{where} silent since "
                   f"{clock(float(silent_from[k]), reg.ctl_tz[k])} while its supply is on"),
            detail={"last_seen": float(st.last_seen[k])}))
    for k in np.flatnonzero(was_open & st.comm_open & heard).tolist():
        st.comm_open[k] = False
        # readings stored late (time before this pass) came back with the link, during it
        events.append(FaultEvent(ft.COMMUNICATION_FAILURE, False, max(float(back_at[k]), t_start),
                                 reg.ctl_tenant[k], controller_id=reg.ctl_id[k]))
    return events


def contactor_events(reg: Registry, st: DetectorState, r: LuminaireReadings,
                     t_end: float) -> list[FaultEvent]:
    """A switched cabinet whose controllers report by day: its contactor stays closed."""
    events: list[FaultEvent] = []
    n_cab = reg.n_cabinets
    if n_cab == 0:
        return events
    ctl = reg.lum_ctl[r.lum] if len(r) else np.zeros(0, np.int64)
    cab = reg.ctl_cab[ctl] if len(r) else ctl
    night, since, until = sun_phase_at(reg.ctl_lat, reg.ctl_lon, ctl, r.t)
    day = ~night & (since > DAY_MARGIN_S) & (until > DAY_MARGIN_S)
    by_day = day & (cab >= 0)
    by_day &= reg.cab_switched[np.maximum(cab, 0)]
    day_readings = np.bincount(cab[by_day], minlength=n_cab)
    day_power = np.bincount(cab[by_day], weights=r.power[by_day], minlength=n_cab)
    # a pass that ends by day and hears nothing from a switched cabinet is evidence of health
    c_all = np.arange(reg.n_controllers)
    n_end, s_end, u_end = sun_phase_at(reg.ctl_lat, reg.ctl_lon, c_all,
                                       np.full(c_all.shape[0], t_end))
    day_end = ~n_end & (s_end > DAY_MARGIN_S) & (u_end > DAY_MARGIN_S)
    cab_day_end = np.zeros(n_cab, dtype=bool)
    has = reg.ctl_cab >= 0
    cab_day_end[reg.ctl_cab[has & day_end]] = True
    evaluable = reg.cab_switched & ((day_readings > 0) | cab_day_end)
    raised, cleared = _cabinet_step(st, _CONTACTOR, evaluable, day_readings > 0)
    for c in np.flatnonzero(raised).tolist():
        rows = np.flatnonzero(by_day & (cab == c))
        first = float(r.t[rows].min())
        n_ctl = np.unique(ctl[rows]).shape[0]
        mean_w = float(day_power[c] / max(day_readings[c], 1))
        tz = reg.ctl_tz[int(ctl[rows[0]])]
        events.append(FaultEvent(
            ft.CONTACTOR_FAILURE, True, first, reg.cab_tenant[c], cabinet_id=reg.cab_id[c],
            cause=(f"cabinet {reg.cab_id[c]}'s contactor stays closed by day: {n_ctl} "
                   f"controllers report {mean_w:.1f} W per luminaire at {clock(first, tz)} "
                   f"(supply expected off from sunrise)"),
            detail={"controllers": int(n_ctl), "mean_w": mean_w}))
    for c in np.flatnonzero(cleared).tolist():
        events.append(FaultEvent(ft.CONTACTOR_FAILURE, False, t_end, reg.cab_tenant[c],
                                 cabinet_id=reg.cab_id[c]))
    return events


def cabinet_load_w(reg: Registry, r: LuminaireReadings, power_before: np.ndarray,
                   cab_q: np.ndarray, t_q: np.ndarray) -> np.ndarray:
    """Sum of the latest power of each luminaire of cabinet cab_q[i] at time t_q[i]."""
    n_cab = reg.n_cabinets
    lum_cab = reg.ctl_cab[reg.lum_ctl]
    has = lum_cab >= 0
    base = np.bincount(lum_cab[has], weights=power_before[has], minlength=n_cab)
    if len(r) == 0:
        return base[cab_q]
    head = np.concatenate([[True], r.lum[1:] != r.lum[:-1]])
    prev = np.where(head, power_before[r.lum], np.concatenate([[0.0], r.power[:-1]]))
    delta = r.power - prev
    cab = lum_cab[r.lum]
    keep = cab >= 0
    cab, t, delta = cab[keep], r.t[keep], delta[keep]
    order = np.lexsort((t, cab))
    cab, t, delta = cab[order], t[order], delta[order]
    csum = np.cumsum(delta)
    start = np.searchsorted(cab, np.arange(n_cab))
    before = np.concatenate([[0.0], csum])[start]  # cumulated delta of earlier cabinets
    key = cab * 1e10 + t
    pos = np.searchsorted(key, cab_q * 1e10 + t_q, side="right") - 1
    same = (pos >= 0) & (cab[np.maximum(pos, 0)] == cab_q)
    within = np.where(same, csum[np.maximum(pos, 0)] - before[cab_q], 0.0)
    return base[cab_q] + within


def meter_events(reg: Registry, st: DetectorState, r: LuminaireReadings,
                 power_before: np.ndarray, s: SensorReadings) -> list[FaultEvent]:
    """The cabinet meter against the sum of its luminaires plus their cable losses (I² R: a
    coefficient times the load squared, learned per cabinet): a lasting excess is leakage or
    theft."""
    events: list[FaultEvent] = []
    meter = (s.sensor < 32) & (s.quantity == int(Quantity.POWER_W)) & (s.ctl >= 0)
    if not meter.any():
        return events
    ctl, t, p_meter = s.ctl[meter], s.t[meter], s.value[meter].astype(np.float64)
    cab = reg.ctl_cab[ctl]
    ok = cab >= 0
    ctl, t, p_meter, cab = ctl[ok], t[ok], p_meter[ok], cab[ok]
    order = np.lexsort((t, cab))
    ctl, t, p_meter, cab = ctl[order], t[order], p_meter[order], cab[order]
    load = cabinet_load_w(reg, r, power_before, cab, t)
    n_lum = np.bincount(reg.ctl_cab[reg.lum_ctl][reg.ctl_cab[reg.lum_ctl] >= 0],
                        minlength=reg.n_cabinets)
    info = ft.LEAKAGE_DETECTED
    for i in range(t.shape[0]):
        c = int(cab[i])
        k = float(st.loss_coefficient[c])
        expected = load[i] + k * load[i] ** 2
        excess = p_meter[i] - expected
        if load[i] > METER_MIN_LOAD_W:
            z = max(0.0, (p_meter[i] - load[i]) / load[i] ** 2)
            if st.loss_samples[c] < METER_LEARN:
                st.loss_coefficient[c] = z if st.loss_samples[c] == 0 else 0.5 * (k + z)
                st.loss_samples[c] += 1
                continue
            if abs(excess) < METER_OK_SHARE * load[i]:
                st.loss_coefficient[c] = k + float(np.clip(0.05 * (z - k), -1e-8, 1e-8))
        # under METER_MIN_LOAD_W the cable losses are a few watts: a cabinet too small to learn
        # them (one or two controllers) is compared without them (k = 0 until learned)
        bad = excess > max(METER_EXCESS_W, METER_EXCESS_SHARE * load[i])
        good = excess < max(METER_OK_W, METER_OK_SHARE * load[i])
        if bad:
            st.cab_bad[c, _METER] = min(st.cab_bad[c, _METER] + 1, 32000)
            st.cab_good[c, _METER] = 0
        elif good:
            st.cab_good[c, _METER] = min(st.cab_good[c, _METER] + 1, 32000)
            st.cab_bad[c, _METER] = 0
        tz = reg.ctl_tz[int(ctl[i])]
        if bad and not st.cab_open[c, _METER] and st.cab_bad[c, _METER] >= info.raise_after:
            st.cab_open[c, _METER] = True
            tol = max(METER_OK_W, METER_OK_SHARE * load[i])
            events.append(FaultEvent(
                info, True, float(t[i]), reg.cab_tenant[c], cabinet_id=reg.cab_id[c],
                cause=(f"cabinet {reg.cab_id[c]}'s meter reads {p_meter[i] / 1000:.2f} kW while "
                       f"its {int(n_lum[c])} luminaires draw {load[i] / 1000:.2f} kW (expected "
                       f"{expected / 1000:.2f} ± {tol / 1000:.2f} kW with cable losses):"
                       f" {excess:.0f} W unaccounted for at {clock(float(t[i]), tz)}, leakage or"
                       f" theft"),
                detail={"meter_w": float(p_meter[i]), "luminaires_w": float(load[i]),
                        "excess_w": float(excess)}))
        elif good and st.cab_open[c, _METER] and st.cab_good[c, _METER] >= info.clear_after:
            st.cab_open[c, _METER] = False
            events.append(FaultEvent(info, False, float(t[i]), reg.cab_tenant[c],
                                     cabinet_id=reg.cab_id[c]))
    return events


@dataclass(frozen=True)
class MeterSteps:
    """Steps of cabinet meters' energy registers that span a gap of at least METER_GAP_S."""

    cab: np.ndarray  # dense cabinet
    ctl: np.ndarray  # a controller of the cabinet (for its time zone)
    t0: np.ndarray  # epoch s of the reading before the gap
    t1: np.ndarray  # epoch s of the first reading after it
    meter_wh: np.ndarray  # energy the meter counted from t0 to t1

    def __len__(self) -> int:
        return int(self.cab.shape[0])


def meter_gap_steps(reg: Registry, st: DetectorState, s: SensorReadings) -> int:
    """Walk the meters' energy registers in time order, keeping each cabinet's last reading in
    `st`; a step that spans a gap waits in `st.gap` to be judged (`due_gap_steps`). A reading
    no newer than the last one examined is passed over; a register that went backwards (a meter
    replaced) starts afresh. Returns the number of steps found."""
    energy = (s.sensor < 32) & (s.quantity == int(Quantity.ENERGY_KWH)) & (s.ctl >= 0)
    ctl, t, kwh = s.ctl[energy], s.t[energy], s.value[energy].astype(np.float64)
    cab = reg.ctl_cab[ctl]
    ok = cab >= 0
    t, kwh, cab = t[ok], kwh[ok], cab[ok]
    order = np.lexsort((t, cab))
    found = 0
    for c, ti, e in zip(cab[order].tolist(), t[order].tolist(), kwh[order].tolist(), strict=True):
        t_last, e_last = float(st.meter_t[c]), float(st.meter_kwh[c])
        if ti <= t_last:
            continue
        if ti - t_last >= METER_GAP_S and e >= e_last:
            st.gap[c] = (t_last, ti, (e - e_last) * 1000.0)
            found += 1
        st.meter_t[c], st.meter_kwh[c] = ti, e
    return found


def due_gap_steps(reg: Registry, st: DetectorState, end: float,
                  settle_s: float = METER_GAP_SETTLE_S) -> MeterSteps:
    """The steps waiting in `st` whose end is `settle_s` before `end` (the luminaires' first
    reports after it are stored), taken out of `st`."""
    due = np.flatnonzero(np.isfinite(st.gap[:, 1]) & (st.gap[:, 1] + settle_s <= end))
    readers = np.full(reg.n_cabinets, -1, np.int64)
    has = reg.ctl_cab >= 0
    np.maximum.at(readers, reg.ctl_cab[has], np.flatnonzero(has))
    steps = MeterSteps(due.astype(np.int64), readers[due], st.gap[due, 0].copy(),
                       st.gap[due, 1].copy(), st.gap[due, 2].copy())
    st.gap[due] = np.nan
    return steps


def meter_gap_events(reg: Registry, st: DetectorState, steps: MeterSteps, luminaires_wh: np.ndarray,
                     complete: np.ndarray) -> list[FaultEvent]:
    """The energy a cabinet's meter counted across a gap (by day on a switched supply: the
    contactor open, no luminaire powered) against what the cabinet's luminaires' own counters
    counted over the same step plus their cable losses: an excess above METER_GAP_EXCESS_WH is
    a leak between the meter and the contactor (or theft). `luminaires_wh[i]` is the sum over
    the cabinet's luminaires of their counters' increase over step i; `complete[i]` is false
    when a luminaire's counter at the step's start is unknown (the step is not judged)."""
    events: list[FaultEvent] = []
    info = ft.LEAKAGE_DETECTED
    n_lum = np.bincount(reg.ctl_cab[reg.lum_ctl][reg.ctl_cab[reg.lum_ctl] >= 0],
                        minlength=reg.n_cabinets)
    for i in range(len(steps)):
        c = int(steps.cab[i])
        if not complete[i] or st.cab_open[c, _METER]:
            continue
        hours = (float(steps.t1[i]) - float(steps.t0[i])) / 3600.0
        lum_wh, meter_wh = float(luminaires_wh[i]), float(steps.meter_wh[i])
        tolerance_wh = METER_GAP_EXCESS_WH + METER_EXCESS_SHARE * lum_wh
        excess_wh = meter_wh - lum_wh
        if excess_wh <= tolerance_wh:
            continue
        st.cab_open[c, _METER] = True
        st.cab_bad[c, _METER] = max(int(st.cab_bad[c, _METER]), info.raise_after)
        st.cab_good[c, _METER] = 0
        tz = reg.ctl_tz[int(steps.ctl[i])]
        t0, t1 = float(steps.t0[i]), float(steps.t1[i])
        when = ("while its switched supply was off" if reg.cab_switched[c]
                else "while its meter went unread")
        events.append(FaultEvent(
            info, True, t1, reg.cab_tenant[c], cabinet_id=reg.cab_id[c],
            cause=(f"cabinet {reg.cab_id[c]}'s meter counted {meter_wh / 1000:.2f} kWh from "
                   f"{clock(t0, tz)} to {clock(t1, tz)} while its {int(n_lum[c])} luminaires "
                   f"counted {lum_wh / 1000:.2f} kWh: {excess_wh / 1000:.2f} kWh unaccounted for,"
                   f" a mean {excess_wh / hours:.0f} W {when}; leakage upstream of the "
                   f"contactor, or theft"),
            detail={"meter_wh": meter_wh, "luminaires_wh": lum_wh, "excess_wh": excess_wh,
                    "hours": hours}))
    return events


_NO_SENSOR_STATE = (np.nan, 0, False, np.nan)


def stuck_sensor_events(reg: Registry, st: DetectorState, s: SensorReadings) -> list[FaultEvent]:
    """A sensor repeating exactly the same reading (inside its range) is stuck. Readings are
    examined per series in time order, those stored late (older than the pass) first; a reading
    not newer than the last one examined of its series is not examined (it cannot undo what
    newer readings decided)."""
    events: list[FaultEvent] = []
    box = (s.sensor >= 32) & (s.ctl >= 0)
    if not box.any():
        return events
    ctl, sensor, quantity = s.ctl[box], s.sensor[box], s.quantity[box]
    t, value = s.t[box], s.value[box].astype(np.float64)
    key = (ctl.astype(np.int64) << 24) | (sensor.astype(np.int64) << 12) | quantity.astype(np.int64)
    ident = {int(k): (int(reg.ctl_key[c]), int(n), int(q)) for k, c, n, q in zip(
        key.tolist(), ctl.tolist(), sensor.tolist(), quantity.tolist(), strict=True)}
    seen = {k: st.sensors.get(v, _NO_SENSOR_STATE)[3] for k, v in ident.items()}
    newer = ~(t <= np.array([seen[k] for k in key.tolist()], dtype=np.float64))
    ctl, sensor, quantity, key = ctl[newer], sensor[newer], quantity[newer], key[newer]
    t, value = t[newer], value[newer]
    if key.shape[0] == 0:
        return events
    order = np.lexsort((t, key))
    key, ctl, sensor, quantity = key[order], ctl[order], sensor[order], quantity[order]
    t, value = t[order], value[order]
    uniq, series = np.unique(key, return_inverse=True)
    ids = [ident[int(k)] for k in uniq.tolist()]
    state = [st.sensors.get(k, _NO_SENSOR_STATE) for k in ids]
    last = np.array([v[0] for v in state], dtype=np.float64)
    count = np.array([v[1] for v in state], dtype=np.int64)
    opened = np.array([v[2] for v in state], dtype=bool)
    last_t = np.full(uniq.shape[0], -np.inf)
    np.maximum.at(last_t, series, t)
    low = np.array([_RANGE.get(int(q), (-np.inf, np.inf))[0] for q in quantity.tolist()])
    high = np.array([_RANGE.get(int(q), (-np.inf, np.inf))[1] for q in quantity.tolist()])
    evaluable = (value > low) & (value < high)
    out = repeats(series, value, evaluable, last, count)
    for i in range(out.shape[0]):
        g = int(series[i])
        c = int(ctl[i])
        q = int(quantity[i])
        name = _NAME.get(q, str(q))
        if out[i] >= STUCK_REPEATS and not opened[g]:
            opened[g] = True
            events.append(FaultEvent(
                ft.SENSOR_STUCK, True, float(t[i]), reg.ctl_tenant[c], controller_id=reg.ctl_id[c],
                sensor=int(sensor[i]), quantity=q,
                cause=(f"sensor {int(sensor[i])} ({name}) on controller {reg.ctl_id[c]} has read "
                       f"{value[i]:g} {out[i] + 1} times in a row up to "
                       f"{clock(float(t[i]), reg.ctl_tz[c])}: it is stuck"),
                detail={"value": float(value[i]), "repeats": int(out[i]) + 1}))
        elif out[i] == 0 and opened[g]:
            opened[g] = False
            events.append(FaultEvent(ft.SENSOR_STUCK, False, float(t[i]), reg.ctl_tenant[c],
                                     controller_id=reg.ctl_id[c], sensor=int(sensor[i]),
                                     quantity=q))
    for g, k in enumerate(ids):
        st.sensors[k] = (float(last[g]), int(count[g]), bool(opened[g]), float(last_t[g]))
    return events
