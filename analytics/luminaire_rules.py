"""Luminaire fault rules: per-reading evidence of each kind, vectorised, then debounced."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analytics import fault_types as ft
from analytics.detector_state import DetectorState, first_guess_full_w
from analytics.kernels import (
    STANDBY_W,
    TRACK_BAND,
    cycling,
    debounce,
    drive_share,
    power_baseline,
)
from analytics.registry import Registry
from wire.records import LuminaireFailure

POWERED_V = 50.0  # below this the controller and its driver are unpowered
VOLTAGE_HIGH_V, VOLTAGE_HIGH_OK_V = 253.0, 249.0  # 230 V + 10 %, and where it is cleared
VOLTAGE_LOW_V, VOLTAGE_LOW_OK_V = 207.0, 211.0  # 230 V - 10 %
POWER_FACTOR_LOW, POWER_FACTOR_OK = 0.75, 0.80
DRIVER_TEMP_HIGH_C, DRIVER_TEMP_OK_C = 65.0, 60.0
RATIO_HIGH, RATIO_HIGH_OK = 1.25, 1.15  # power against the baseline for its level
RATIO_LOW, RATIO_LOW_OK = 0.80, 0.90
DRIFT_LOW, DRIFT_OK = 1.05, 1.025  # a lasting excess between these and RATIO_HIGH is drift
#: fixed thresholds of the lamp type, from its rated input power R (first_guess_full_w of the
#: registered rated power), whatever the luminaire learned. Above 1.25 R, at any level, is more
#: than the type can draw. The low thresholds are met only where the type draws most: a lit lamp
#: at (nearly) full level under 0.7 R (a dimmed lamp draws less by design, and a dark one is
#: lampFailure's).
ABS_HIGH, ABS_HIGH_OK = 1.25, 1.15
ABS_LOW, ABS_LOW_OK = 0.70, 0.78
NOMINAL_V, RATED_PF = 230.0, 0.9  # rated current I_R = R / (230 V x 0.9)
#: x I_R. High: over what the type draws at full level at 207 V with a power factor of 0.8
#: (1.25 I_R); 1.5 leaves room. Low: at full level under 0.6 I_R (it draws 0.94 I_R at 230 V).
CURRENT_HIGH, CURRENT_HIGH_OK = 1.5, 1.4
CURRENT_LOW, CURRENT_LOW_OK = 0.60, 0.68
FULL_SHARE = 0.97  # readings at (nearly) full level
#: below this share the affine power model is off by more than a percent (constant light
#: output scales the drive, not the driver's fixed losses): such readings are not compared
COMPARED_SHARE = 0.45
DIMMED_SHARE = 0.80  # readings clearly dimmed
NOT_DIMMING = 0.93  # a dimmed reading drawing this share of the full-level power does not dim
DAY_MARGIN_S = 1800.0  # from sunrise + this to sunset - this it is day for sure
NIGHT_MARGIN_S = 900.0
CYCLE_WINDOW_S = 3 * 3600.0
CYCLE_RELIGHTS = 3
STATUS_GEAR_FAILURE = 0x01

_RAISE = np.array([k.raise_after for k in ft.LUMINAIRE_KINDS], dtype=np.int64)
_CLEAR = np.array([k.clear_after for k in ft.LUMINAIRE_KINDS], dtype=np.int64)


@dataclass(frozen=True)
class LuminaireReadings:
    """Readings sorted by (dense luminaire, time); one array per column."""

    lum: np.ndarray  # int64
    t: np.ndarray  # float64 epoch s
    level: np.ndarray
    status: np.ndarray
    power: np.ndarray
    voltage: np.ndarray
    current: np.ndarray
    pf: np.ndarray
    temp: np.ndarray
    failure: np.ndarray

    def __len__(self) -> int:
        return int(self.lum.shape[0])

    @classmethod
    def sorted(cls, **columns: np.ndarray) -> LuminaireReadings:
        order = np.lexsort((columns["t"], columns["lum"]))
        return cls(**{k: np.asarray(v)[order] for k, v in columns.items()})


def light_percent(level: np.ndarray) -> np.ndarray:
    """IEC 62386-102 logarithmic dimming curve: arc level 0..254 -> % of full light."""
    n = np.asarray(level, dtype=np.float64)
    return np.where(n <= 0, 0.0, np.power(10.0, (n - 1.0) / (253.0 / 3.0) - 1.0))


def _ffill(lum: np.ndarray, values: np.ndarray, has: np.ndarray,
           start: np.ndarray) -> np.ndarray:
    """Per reading, the value of the latest reading of the same luminaire up to it where `has`
    (from `start[lum]` before the first such)."""
    n = lum.shape[0]
    idx = np.where(has, np.arange(n), -1)
    head = np.concatenate([[True], lum[1:] != lum[:-1]]) if n else np.zeros(0, bool)
    group_start = np.maximum.accumulate(np.where(head, np.arange(n), 0)) if n else idx
    last = np.maximum.accumulate(idx) if n else idx
    own = last >= group_start
    return np.where(own, values[np.maximum(last, 0)], start[lum])


@dataclass(frozen=True)
class Evidence:
    """Per-reading flags (rows, kinds) and the figures the causes quote."""

    flags: np.ndarray  # int8: 1 bad, 0 good, -1 nothing said
    ratio: np.ndarray  # power / expected for the level (NaN: not compared)
    expected_w: np.ndarray  # expected input power for the level
    relights: np.ndarray  # night-time re-lightings within the cycling window


def luminaire_evidence(r: LuminaireReadings, reg: Registry, st: DetectorState,
                       night: np.ndarray, since_s: np.ndarray,
                       until_s: np.ndarray) -> Evidence:
    """Evidence of every luminaire kind for every reading; learns the baselines in `st`."""
    k = ft.KIND_INDEX
    rows = len(r)
    flags = np.full((rows, len(ft.LUMINAIRE_KINDS)), -1, dtype=np.int8)
    failure = r.failure.astype(np.int64)
    status = r.status.astype(np.int64)
    # gear without D4i Part 252 / 253 sends no power / no supply figures: absent, not zero
    has_power = (failure & LuminaireFailure.ABSENT_POWER) == 0
    has_diag = (failure & LuminaireFailure.ABSENT_DIAGNOSTICS) == 0
    # a reading arrived, so the controller is powered; where the supply is measured, it says
    powered = np.where(has_diag, r.voltage > POWERED_V, True)
    on_level = r.level > 0
    driver_bad = ((failure & LuminaireFailure.DRIVER) != 0) | ((status & STATUS_GEAR_FAILURE) != 0)
    lamp_bit = (failure & LuminaireFailure.LAMP) != 0
    base_before = st.base_full_w[r.lum].copy()
    lit_w = np.maximum(3.0, 0.1 * base_before)
    # without a power figure, a working gear at a level above 0 is taken as lit
    lit = powered & np.where(has_power, r.power > lit_w, on_level & ~lamp_bit)
    share = drive_share(light_percent(r.level) / 100.0)

    day = ~night & (since_s > DAY_MARGIN_S) & (until_s > DAY_MARGIN_S)
    # by day a lamp should be off: its power is not compared with its night-time baseline
    usable = (powered & has_power & on_level & lit & ~driver_bad & ~lamp_bit
              & (share >= COMPARED_SHARE) & ~day)
    ratio = power_baseline(r.lum, share, r.power.astype(np.float64), usable, st.base_full_w,
                           st.base_samples)
    base = st.base_full_w[r.lum]
    expected = STANDBY_W + (base - STANDBY_W) * share
    with np.errstate(invalid="ignore", divide="ignore"):
        y_full = (r.power - STANDBY_W) / (base - STANDBY_W)
    compared = np.isfinite(ratio)
    full = compared & (share >= FULL_SHARE)
    dimmed = compared & (share < DIMMED_SHARE)
    full_ratio = _ffill(r.lum, ratio, full, st.full_ratio)

    def put(kind: str, evaluable: np.ndarray, bad: np.ndarray,
            good: np.ndarray | None = None) -> None:
        col = np.where(evaluable & bad, 1, np.where(evaluable & (~bad if good is None else good),
                                                    0, -1))
        flags[:, k[kind]] = col

    on_duty = powered & on_level & ~driver_bad
    put("lampFailure", on_duty, lamp_bit | (has_power & (r.power > 0.05) & ~lit))
    put("controlGearCommFailure", powered, driver_bad)
    put("relayFailure", on_duty & has_power & ~lamp_bit, r.power <= 0.05)
    put("lampUnexpectedOn", powered & day, lit)
    dark = night & (since_s > NIGHT_MARGIN_S) & (until_s > NIGHT_MARGIN_S)
    cyc = cycling(r.lum, r.t, lit, dark, st.lit, st.relights, CYCLE_WINDOW_S, CYCLE_RELIGHTS)
    flags[:, k["cyclingFailure"]] = cyc
    measured = powered & has_diag
    put("supplyVoltageTooHigh", measured, r.voltage > VOLTAGE_HIGH_V, r.voltage < VOLTAGE_HIGH_OK_V)
    put("supplyVoltageTooLow", measured, r.voltage < VOLTAGE_LOW_V, r.voltage > VOLTAGE_LOW_OK_V)
    put("powerFactorTooLow", lit & has_power & has_diag & (r.power > 0.4 * base),
        r.pf < POWER_FACTOR_LOW, r.pf > POWER_FACTOR_OK)
    put("temperatureTooHigh", measured, r.temp > DRIVER_TEMP_HIGH_C, r.temp < DRIVER_TEMP_OK_C)
    not_dimming = y_full > NOT_DIMMING
    drifting = st.open[r.lum, k["lampPowerDrift"]]  # a drift that grew on is no new fault
    put("lampPowerTooHigh", compared & ~drifting, (ratio > RATIO_HIGH) & (full | ~not_dimming),
        ratio < RATIO_HIGH_OK)
    put("lampPowerTooLow", compared, ratio < RATIO_LOW, ratio > RATIO_LOW_OK)
    # the lamp type's fixed thresholds: a luminaire with no rated power has none
    rated_in = first_guess_full_w(reg.lum_rated_w[r.lum])
    typed = reg.lum_rated_w[r.lum] > 0
    rated_a = rated_in / (NOMINAL_V * RATED_PF)
    # lit, gear working; a lamp that gives no light is lampFailure's (or relayFailure's)
    shining = on_duty & typed & has_power & lit & ~lamp_bit
    at_full = shining & (share >= FULL_SHARE)
    # over the ceiling at any level raises; only a full-level reading under it clears (a dimmed
    # lamp under the ceiling says nothing of what it draws at full level)
    put("absoluteLampPowerTooHigh", shining, r.power > ABS_HIGH * rated_in,
        (share >= FULL_SHARE) & (r.power < ABS_HIGH_OK * rated_in))
    put("absoluteLampPowerTooLow", at_full, r.power < ABS_LOW * rated_in,
        r.power > ABS_LOW_OK * rated_in)
    put("currentTooHigh", shining & has_diag, r.current > CURRENT_HIGH * rated_a,
        (share >= FULL_SHARE) & (r.current < CURRENT_HIGH_OK * rated_a))
    put("currentTooLow", at_full & has_diag, r.current < CURRENT_LOW * rated_a,
        r.current > CURRENT_LOW_OK * rated_a)
    trusted_full = (full_ratio > 1.0 - 0.15) & (full_ratio < 1.0 + 0.15)
    put("dimmingFailure", dimmed & trusted_full, not_dimming, y_full < NOT_DIMMING - 0.08)
    put("lampPowerDrift", compared, (ratio > DRIFT_LOW) & (ratio <= RATIO_HIGH), ratio < DRIFT_OK)
    first = reg.ctl_first_lum[reg.lum_ctl[r.lum]] == r.lum
    put("poleTilted", first & powered, (failure & LuminaireFailure.TILT) != 0)

    if rows:
        tail = np.concatenate([r.lum[1:] != r.lum[:-1], [True]])
        st.last_time[r.lum[tail]] = r.t[tail]
        st.last_power_w[r.lum[tail]] = r.power[tail]
        st.full_ratio[r.lum[tail]] = full_ratio[tail]
    relights = np.sum(st.relights[r.lum] >= (r.t - CYCLE_WINDOW_S)[:, None], axis=1)
    return Evidence(flags, ratio, expected, relights)


def debounced(r: LuminaireReadings, ev: Evidence,
              st: DetectorState) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, kind, +1 raise / -1 clear) events of the readings' evidence, state in `st`."""
    return debounce(r.lum, ev.flags, st.bad, st.good, st.open, _RAISE, _CLEAR)


def tolerance_w(expected_w: float) -> float:
    """The tolerance quoted with an expected power."""
    return max(1.0, TRACK_BAND * expected_w)
