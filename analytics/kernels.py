"""Numba kernels of the fault detectors, each beside its plain Python/numpy reference.

Every kernel walks readings sorted by (luminaire, time) and carries per-luminaire state from one
pass to the next in arrays indexed by a dense luminaire number; nothing here knows SQL or ids.
"""

from __future__ import annotations

import numpy as np
from numba import njit

#: standby input power of a driver, W (the part of the power that does not follow the level)
STANDBY_W = 0.5
#: driver low-load constant: input power above standby is affine in light, k + (1 - k) x
DRIVER_KNEE = 0.05
#: readings that teach a fresh baseline before it is trusted
LEARN_READINGS = 24
#: once learned, the baseline moves at most this fraction per reading, by this gain (a time
#: constant of about ten nights: constant-light-output drift is followed, a fault is not)
TRACK_STEP = 0.001
TRACK_GAIN = 0.0005
#: only readings this close to the baseline teach it once learned (faults do not)
TRACK_BAND = 0.05


def drive_share(light: np.ndarray) -> np.ndarray:
    """Share of the full-level power above standby drawn at light fraction ``light`` (0..1)."""
    return DRIVER_KNEE + (1.0 - DRIVER_KNEE) * np.asarray(light, dtype=np.float64)


# ------------------------------------------------------------------------------ debounce
@njit(cache=True)
def debounce(lum: np.ndarray, flags: np.ndarray, bad: np.ndarray, good: np.ndarray,
             is_open: np.ndarray, raise_after: np.ndarray,
             clear_after: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hysteresis over per-reading evidence; returns the (row, kind, +1 raise / -1 clear) events.

    ``flags[i, k]`` is 1 (reading i shows fault kind k), 0 (it shows it absent) or -1 (it says
    nothing). A kind is raised on a luminaire after ``raise_after[k]`` consecutive bad readings
    and cleared after ``clear_after[k]`` consecutive good ones; readings saying nothing neither
    break nor extend a streak. ``bad``, ``good`` (int16) and ``is_open`` (bool), shaped
    (luminaires, kinds), carry the streaks between passes and are updated in place.
    """
    rows, kinds = flags.shape
    out_row = np.empty(rows * kinds, dtype=np.int64)
    out_kind = np.empty(rows * kinds, dtype=np.int64)
    out_sign = np.empty(rows * kinds, dtype=np.int8)
    n = 0
    for i in range(rows):
        j = lum[i]
        for k in range(kinds):
            f = flags[i, k]
            if f == 1:
                good[j, k] = 0
                if bad[j, k] < 32000:
                    bad[j, k] += 1
                if not is_open[j, k] and bad[j, k] >= raise_after[k]:
                    is_open[j, k] = True
                    out_row[n], out_kind[n], out_sign[n] = i, k, 1
                    n += 1
            elif f == 0:
                bad[j, k] = 0
                if good[j, k] < 32000:
                    good[j, k] += 1
                if is_open[j, k] and good[j, k] >= clear_after[k]:
                    is_open[j, k] = False
                    out_row[n], out_kind[n], out_sign[n] = i, k, -1
                    n += 1
    return out_row[:n], out_kind[:n], out_sign[:n]


def debounce_reference(lum: np.ndarray, flags: np.ndarray, bad: np.ndarray, good: np.ndarray,
                       is_open: np.ndarray, raise_after: np.ndarray,
                       clear_after: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Plain Python reference of `debounce`, one streak at a time."""
    events: list[tuple[int, int, int]] = []
    for i in range(flags.shape[0]):
        j = int(lum[i])
        for k in range(flags.shape[1]):
            f = int(flags[i, k])
            if f == 1:
                good[j, k] = 0
                bad[j, k] = min(int(bad[j, k]) + 1, 32000)
                if not is_open[j, k] and bad[j, k] >= raise_after[k]:
                    is_open[j, k] = True
                    events.append((i, k, 1))
            elif f == 0:
                bad[j, k] = 0
                good[j, k] = min(int(good[j, k]) + 1, 32000)
                if is_open[j, k] and good[j, k] >= clear_after[k]:
                    is_open[j, k] = False
                    events.append((i, k, -1))
    arr = np.array(events, dtype=np.int64).reshape(-1, 3)
    return arr[:, 0], arr[:, 1], arr[:, 2].astype(np.int8)


# ------------------------------------------------------------------------------ baseline
@njit(cache=True)
def power_baseline(lum: np.ndarray, share: np.ndarray, power: np.ndarray, usable: np.ndarray,
                   base: np.ndarray, samples: np.ndarray) -> np.ndarray:
    """Each reading's power against its luminaire's own baseline, learning the baseline.

    ``share`` is `drive_share` of the reading's level; a usable reading (lit, powered, no
    failure reported) implies a full-level power ``z = STANDBY_W + (power - STANDBY_W) / share``.
    The baseline ``base`` (input power at full level) starts at the median-like running value of
    the first LEARN_READINGS usable readings, then moves by at most TRACK_STEP of itself per
    reading and only with readings within TRACK_BAND of it: slow constant-light-output drift and
    dimming are followed, a fault is not learned. Returns ``z / base`` per reading (NaN where
    not usable or not learned yet); ``base`` and ``samples`` are updated in place.
    """
    out = np.full(lum.shape[0], np.nan)
    for i in range(lum.shape[0]):
        if not usable[i]:
            continue
        j = lum[i]
        z = STANDBY_W + (power[i] - STANDBY_W) / share[i]
        b = base[j]
        if samples[j] < LEARN_READINGS:
            if samples[j] == 0 or not b > 0:
                base[j] = z
            else:
                step = 0.25 * b
                d = z - b
                base[j] = b + 0.3 * min(max(d, -step), step)
            samples[j] += 1
            continue
        ratio = z / b
        out[i] = ratio
        if abs(ratio - 1.0) < TRACK_BAND:
            step = TRACK_STEP * b
            d = TRACK_GAIN * (z - b)
            base[j] = b + min(max(d, -step), step)
            if samples[j] < 2_000_000_000:
                samples[j] += 1
    return out


def power_baseline_reference(lum: np.ndarray, share: np.ndarray, power: np.ndarray,
                             usable: np.ndarray, base: np.ndarray,
                             samples: np.ndarray) -> np.ndarray:
    """Plain Python reference of `power_baseline`."""
    out = np.full(lum.shape[0], np.nan)
    for i in range(lum.shape[0]):
        if not usable[i]:
            continue
        j = int(lum[i])
        z = STANDBY_W + (float(power[i]) - STANDBY_W) / float(share[i])
        b = float(base[j])
        if samples[j] < LEARN_READINGS:
            base[j] = z if samples[j] == 0 or not b > 0 else b + 0.3 * float(
                np.clip(z - b, -0.25 * b, 0.25 * b))
            samples[j] += 1
            continue
        out[i] = z / b
        if abs(z / b - 1.0) < TRACK_BAND:
            base[j] = b + float(np.clip(TRACK_GAIN * (z - b), -TRACK_STEP * b, TRACK_STEP * b))
            samples[j] = min(int(samples[j]) + 1, 2_000_000_000)
    return out


# ------------------------------------------------------------------------------ cycling
@njit(cache=True)
def cycling(lum: np.ndarray, t: np.ndarray, lit: np.ndarray, night: np.ndarray,
            was_lit: np.ndarray, relights: np.ndarray, window_s: float,
            min_relights: int) -> np.ndarray:
    """Evidence of a lamp switching on and off by itself while it should burn.

    A re-lighting is a reading lit after one unlit, at night. A reading is bad (1) when at least
    ``min_relights`` re-lightings fall within ``window_s`` up to it, good (0) when lit at night
    with fewer than two in the window, else -1. ``was_lit`` (bool) and ``relights`` (the last
    re-lighting times, newest last, NaN when none; shape (luminaires, K)) are updated in place.
    """
    out = np.full(lum.shape[0], -1, dtype=np.int8)
    depth = relights.shape[1]
    for i in range(lum.shape[0]):
        j = lum[i]
        if night[i] and lit[i] and not was_lit[j]:
            for q in range(depth - 1):
                relights[j, q] = relights[j, q + 1]
            relights[j, depth - 1] = t[i]
        was_lit[j] = lit[i]
        if night[i]:
            recent = 0
            for q in range(depth):
                if relights[j, q] >= t[i] - window_s:
                    recent += 1
            if recent >= min_relights:
                out[i] = 1
            elif lit[i] and recent < 2:
                out[i] = 0
    return out


def cycling_reference(lum: np.ndarray, t: np.ndarray, lit: np.ndarray, night: np.ndarray,
                      was_lit: np.ndarray, relights: np.ndarray, window_s: float,
                      min_relights: int) -> np.ndarray:
    """Plain Python reference of `cycling`."""
    out = np.full(lum.shape[0], -1, dtype=np.int8)
    for i in range(lum.shape[0]):
        j = int(lum[i])
        if night[i] and lit[i] and not was_lit[j]:
            relights[j] = np.concatenate([relights[j, 1:], [t[i]]])
        was_lit[j] = lit[i]
        if night[i]:
            recent = int(np.sum(relights[j] >= t[i] - window_s))
            out[i] = 1 if recent >= min_relights else (0 if lit[i] and recent < 2 else -1)
    return out


# ------------------------------------------------------------------------------ sensors
@njit(cache=True)
def repeats(series: np.ndarray, value: np.ndarray, evaluable: np.ndarray,
            last_value: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Consecutive readings of each series equal to the one before (a stuck sensor's sign).

    Readings sorted by (series, time); returns the repeat count after each reading, -1 where
    the reading is not evaluable (at its quantity's range limit, where repeats are natural).
    ``last_value`` and ``count`` carry the series' state and are updated in place.
    """
    out = np.full(series.shape[0], -1, dtype=np.int64)
    for i in range(series.shape[0]):
        s = series[i]
        if not evaluable[i]:
            last_value[s] = np.nan
            count[s] = 0
            continue
        if value[i] == last_value[s]:
            count[s] += 1
        else:
            count[s] = 0
        last_value[s] = value[i]
        out[i] = count[s]
    return out


def repeats_reference(series: np.ndarray, value: np.ndarray, evaluable: np.ndarray,
                      last_value: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Plain Python reference of `repeats`."""
    out = np.full(series.shape[0], -1, dtype=np.int64)
    for i in range(series.shape[0]):
        s = int(series[i])
        if not evaluable[i]:
            last_value[s], count[s] = np.nan, 0
            continue
        count[s] = count[s] + 1 if value[i] == last_value[s] else 0
        last_value[s] = value[i]
        out[i] = count[s]
    return out
