"""Numba kernels of energy accounting, each beside a plain numpy reference (the test oracle).

Readings are sorted by (luminaire, time). Intervals are 15-minute buckets stored per luminaire as
one row of a ragged grid: luminaire j owns cells off[j] .. off[j+1] - 1, the first of which is
bucket b0[j] (epoch seconds // 900). Nothing here knows SQL or ids.
"""

from __future__ import annotations

import numpy as np
from numba import njit

BUCKET_S = 900.0

# what the counter step ending at a reading was (bits)
STEP_FIRST = 1  # the luminaire's first reading: nothing before it to difference against
STEP_RESET = 2  # the counter went back (driver or controller replaced): not counted
STEP_WRAP = 4  # the counter went back by rolling over a known modulus: counted, wrapped
STEP_IMPLAUSIBLE = 8  # more energy than the luminaire can draw in the time: not counted
STEP_BAD = 16  # the reading's counter or power is NaN, infinite or negative
STEP_GAP = 32  # longer than a short step: its energy is spread by the expected profile


# ---------------------------------------------------------------------------- counter steps
@njit(cache=True)
def counter_steps(lum: np.ndarray, t: np.ndarray, e: np.ndarray, bound_w: np.ndarray,
                  moduli: np.ndarray, short_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Per reading i, the energy of the step from the luminaire's previous good reading, and its
    STEP_* bits.

    A step counts (delta >= 0, finite) when the counter rose by at most ``bound_w[lum]`` over
    the step's time (plus 1 Wh of rounding); a counter that went back counts as a wrap when
    adding one of ``moduli`` (largest first tried last) makes a plausible step, else it is a
    reset and the step's energy is unknown (NaN). A bad reading (NaN, infinite or negative
    counter) gets NaN and is skipped: the next step starts from the last good reading.
    """
    n = lum.shape[0]
    delta = np.full(n, np.nan)
    bits = np.zeros(n, dtype=np.int64)
    prev = -1
    for i in range(n):
        if i == 0 or lum[i] != lum[i - 1]:
            prev = -1
        ei = e[i]
        if not np.isfinite(ei) or ei < 0.0:
            bits[i] = STEP_BAD
            continue
        if prev < 0:
            bits[i] = STEP_FIRST
            prev = i
            continue
        dt = t[i] - t[prev]
        cap = bound_w[lum[i]] * dt / 3600.0 + 1.0
        d = ei - e[prev]
        b = 0
        if dt > short_s:
            b |= STEP_GAP
        if d < 0.0:
            wrapped = np.nan
            for k in range(moduli.shape[0]):
                m = moduli[k]
                w = d + m
                if e[prev] < m and w >= 0.0 and w <= cap:
                    wrapped = w
                    break
            if np.isnan(wrapped):
                b |= STEP_RESET
            else:
                b |= STEP_WRAP
                delta[i] = wrapped
        elif d > cap:
            b |= STEP_IMPLAUSIBLE
        else:
            delta[i] = d
        bits[i] = b
        prev = i
    return delta, bits


def counter_steps_reference(lum: np.ndarray, t: np.ndarray, e: np.ndarray, bound_w: np.ndarray,
                            moduli: np.ndarray,
                            short_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Plain Python reference of `counter_steps`, one luminaire's list at a time."""
    delta = [float("nan")] * len(lum)
    bits = [0] * len(lum)
    last: dict[int, int] = {}
    for i in range(len(lum)):
        j = int(lum[i])
        ei = float(e[i])
        if not np.isfinite(ei) or ei < 0:
            bits[i] = STEP_BAD
            continue
        if j not in last:
            bits[i] = STEP_FIRST
            last[j] = i
            continue
        p = last[j]
        dt = float(t[i] - t[p])
        cap = float(bound_w[j]) * dt / 3600.0 + 1.0
        d = ei - float(e[p])
        b = STEP_GAP if dt > short_s else 0
        if d < 0:
            ok = [d + m for m in moduli.tolist() if float(e[p]) < m and 0 <= d + m <= cap]
            if ok:
                b |= STEP_WRAP
                delta[i] = ok[0]
            else:
                b |= STEP_RESET
        elif d > cap:
            b |= STEP_IMPLAUSIBLE
        else:
            delta[i] = d
        bits[i] = b
        last[j] = i
    return np.array(delta), np.array(bits, dtype=np.int64)


# ------------------------------------------------------------------- measured steps, split
@njit(cache=True)
def _switch_time(t0: float, t1: float, p0: float, p1: float, delta: float) -> float:
    """When the power went from p0 to p1 inside (t0, t1] so that the energy is ``delta`` Wh."""
    if abs(p0 - p1) < 1e-9:
        return t1
    tau = t0 + (delta * 3600.0 - p1 * (t1 - t0)) / (p0 - p1)
    return min(max(tau, t0), t1)


@njit(cache=True)
def spread_steps(lum: np.ndarray, t0: np.ndarray, t1: np.ndarray, p0: np.ndarray,
                 p1: np.ndarray, delta: np.ndarray, b0: np.ndarray, off: np.ndarray,
                 energy: np.ndarray, covered: np.ndarray) -> None:
    """Add each measured step's energy to the cells it overlaps (in place).

    Power held p0 from t0, then p1 to t1, switching at the time that makes the step's energy
    ``delta`` (one level change inside a step is exact; more are approximated); the step's
    energy is then shared in proportion to that profile. ``covered`` gets the seconds of each
    cell spanned by measured steps.
    """
    for s in range(lum.shape[0]):
        j = lum[s]
        a, z = t0[s], t1[s]
        if z <= a:
            continue
        tau = _switch_time(a, z, p0[s], p1[s], delta[s])
        total = (p0[s] * (tau - a) + p1[s] * (z - tau))
        first = int(np.floor(a / BUCKET_S))
        last = int(np.floor((z - 1e-9) / BUCKET_S))
        for b in range(first, last + 1):
            k = b - b0[j]
            if k < 0 or k >= off[j + 1] - off[j]:
                continue
            lo = max(a, b * BUCKET_S)
            hi = min(z, (b + 1) * BUCKET_S)
            if hi <= lo:
                continue
            part = p0[s] * max(0.0, min(hi, tau) - lo) + p1[s] * max(0.0, hi - max(lo, tau))
            share = part / total if total > 0 else (hi - lo) / (z - a)
            energy[off[j] + k] += delta[s] * share
            covered[off[j] + k] += hi - lo


def spread_steps_reference(lum: np.ndarray, t0: np.ndarray, t1: np.ndarray, p0: np.ndarray,
                           p1: np.ndarray, delta: np.ndarray, b0: np.ndarray,
                           off: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Numpy reference of `spread_steps`: each step's power profile on a one-second grid."""
    energy = np.zeros(int(off[-1]))
    covered = np.zeros(int(off[-1]))
    for s in range(lum.shape[0]):
        j = int(lum[s])
        a, z = int(t0[s]), int(t1[s])
        if z <= a:
            continue
        sec = np.arange(a, z) + 0.5
        if abs(p0[s] - p1[s]) < 1e-9:
            tau = float(z)
        else:
            tau = a + (delta[s] * 3600.0 - p1[s] * (z - a)) / (p0[s] - p1[s])
            tau = min(max(tau, a), z)
        # the second holding tau gets its two parts
        w = np.where(sec + 0.5 <= tau, p0[s], np.where(sec - 0.5 >= tau, p1[s],
                     p0[s] * (tau - (sec - 0.5)) + p1[s] * ((sec + 0.5) - tau)))
        tot = w.sum()
        share = w / tot if tot > 0 else np.full(w.shape[0], 1.0 / w.shape[0])
        cell = np.floor((sec) / BUCKET_S).astype(np.int64) - b0[j]
        ok = (cell >= 0) & (cell < off[j + 1] - off[j])
        np.add.at(energy, off[j] + cell[ok], delta[s] * share[ok])
        np.add.at(covered, off[j] + cell[ok], 1.0)
    return energy, covered


# ------------------------------------------------------------------------ segment medians
@njit(cache=True)
def segment_medians(heads: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Median of each segment values[heads[k]:heads[k+1]] (the last runs to the end)."""
    n = heads.shape[0]
    out = np.empty(n)
    for k in range(n):
        a = heads[k]
        z = heads[k + 1] if k + 1 < n else values.shape[0]
        out[k] = np.median(values[a:z])
    return out


def segment_medians_reference(heads: np.ndarray, values: np.ndarray) -> np.ndarray:
    """numpy reference of `segment_medians`."""
    ends = np.append(heads[1:], values.shape[0])
    return np.array([np.median(values[a:z]) for a, z in zip(heads.tolist(), ends.tolist(),
                                                              strict=True)])


# ------------------------------------------------------------------ supply and night time
@njit(cache=True)
def night_seconds(trans: np.ndarray, lo: float, hi: float) -> float:
    """Seconds of (lo, hi] after a sunset and before the next sunrise; ``trans`` alternates
    sunrise, sunset, sunrise... and brackets (lo, hi]."""
    total = 0.0
    # night spans are (trans[2k+1], trans[2k+2])
    k = 1
    while k + 1 < trans.shape[0]:
        a = max(lo, trans[k])
        z = min(hi, trans[k + 1])
        if z > a:
            total += z - a
        k += 2
    return total


@njit(cache=True)
def cell_night_seconds(b0: np.ndarray, off: np.ndarray, place: np.ndarray, trans: np.ndarray,
                       trans_off: np.ndarray) -> np.ndarray:
    """`night_seconds` of every cell of the grid, at its luminaire's place."""
    out = np.zeros(off[-1])
    for j in range(off.shape[0] - 1):
        tr = trans[trans_off[place[j]]:trans_off[place[j] + 1]]
        for c in range(off[j], off[j + 1]):
            lo = (b0[j] + c - off[j]) * BUCKET_S
            out[c] = night_seconds(tr, lo, lo + BUCKET_S)
    return out


def night_seconds_reference(trans: np.ndarray, lo: float, hi: float) -> float:
    """One-second grid reference of `night_seconds` (for integer bounds)."""
    sec = np.arange(int(lo), int(hi)) + 0.5
    i = np.searchsorted(trans, sec, side="right")
    return float(np.count_nonzero((i % 2 == 0) & (i > 0) & (i < trans.shape[0])))


# --------------------------------------------------------------------------- gap filling
@njit(cache=True)
def fill_gaps(lum: np.ndarray, t0: np.ndarray, t1: np.ndarray, delta: np.ndarray,
              hold0: np.ndarray, hold1: np.ndarray, full_w: np.ndarray, switched: np.ndarray,
              place: np.ndarray, trans: np.ndarray, trans_off: np.ndarray, peer_frac: np.ndarray,
              b0: np.ndarray, off: np.ndarray, edge_s: float, standby_w: float,
              energy: np.ndarray, edge: np.ndarray, held: np.ndarray) -> np.ndarray:
    """Spread each gap's energy over its cells by the expected power (in place); returns the
    expected (unscaled) energy of each gap.

    Expected power in a cell = standby + (full_w[lum] - standby) x the share of the level in
    force: ``peer_frac[cell]`` (what the luminaire's peers drew above standby in that interval,
    as a share of their full power above standby), or where it is NaN the share held from the
    reading before the gap (first half) or after it (second half), ``hold0`` / ``hold1``.
    On a switched supply only the night part of a cell is powered.
    Cells of the gap outside the luminaire's grid shape it (their share of the step is left
    out) but are not written. A gap with a known counter step (``delta`` finite) is made to sum
    to it: the difference first
    moves the supply's switching edges inside the gap by up to ``edge_s`` each (the cabinet's
    clock against the astronomical one), the rest scales the whole gap. ``edge`` gets the
    expected energy of the edge seconds, ``held`` the energy from held levels, per cell.
    """
    n = lum.shape[0]
    expected = np.zeros(n)
    for g in range(n):
        j = lum[g]
        a, z = t0[g], t1[g]
        if z <= a:
            continue
        tr = trans[trans_off[place[j]]:trans_off[place[j] + 1]]
        mid = 0.5 * (a + z)
        first = int(np.floor(a / BUCKET_S))
        last = int(np.floor((z - 1e-9) / BUCKET_S))
        m = last - first + 1
        want = np.zeros(m)
        rate = np.zeros(m)  # W at the level in force
        is_edge = np.zeros(m, dtype=np.bool_)
        from_hold = np.zeros(m, dtype=np.bool_)
        for b in range(first, last + 1):
            k = b - b0[j]
            inside = 0 <= k < off[j + 1] - off[j]  # cells outside still shape the gap
            lo = max(a, b * BUCKET_S)
            hi = min(z, (b + 1) * BUCKET_S)
            if hi <= lo:
                continue
            powered = hi - lo
            if switched[j]:
                powered = night_seconds(tr, lo, hi)
                if 0.0 < night_seconds(tr, b * BUCKET_S, (b + 1) * BUCKET_S) < BUCKET_S:
                    is_edge[b - first] = True
            f = peer_frac[off[j] + k] if inside else np.nan
            if np.isnan(f):
                f = hold0[g] if 0.5 * (lo + hi) <= mid else hold1[g]
                from_hold[b - first] = True
            rate[b - first] = standby_w + (full_w[j] - standby_w) * f
            want[b - first] = rate[b - first] * powered / 3600.0
        x = want.sum()
        expected[g] = x
        if np.isfinite(delta[g]):
            resid = delta[g] - x
            cap = 0.0
            for q in range(m):
                if is_edge[q]:
                    cap += rate[q] * edge_s / 3600.0
            if cap > 0.0:
                moved = min(max(resid, -cap), cap)
                for q in range(m):
                    if is_edge[q]:
                        want[q] = max(0.0, want[q] + moved * rate[q] * edge_s / 3600.0 / cap)
                x2 = want.sum()
            else:
                x2 = x
            scale = delta[g] / x2 if x2 > 0 else 0.0
            if x2 <= 0 and delta[g] > 0:  # nothing expected, yet energy: share it by time
                for b in range(first, last + 1):
                    lo = max(a, b * BUCKET_S)
                    hi = min(z, (b + 1) * BUCKET_S)
                    want[b - first] = delta[g] * max(0.0, hi - lo) / (z - a)
                scale = 1.0
            for q in range(m):
                want[q] *= scale
        for b in range(first, last + 1):
            k = b - b0[j]
            if k < 0 or k >= off[j + 1] - off[j]:
                continue
            q = b - first
            energy[off[j] + k] += want[q]
            if is_edge[q]:
                edge[off[j] + k] += rate[q] * edge_s / 3600.0
            if from_hold[q]:
                held[off[j] + k] += want[q]
    return expected


def fill_gaps_reference(lum: np.ndarray, t0: np.ndarray, t1: np.ndarray, delta: np.ndarray,
                        hold0: np.ndarray, hold1: np.ndarray, full_w: np.ndarray,
                        switched: np.ndarray, place: np.ndarray, trans: np.ndarray,
                        trans_off: np.ndarray, peer_frac: np.ndarray, b0: np.ndarray,
                        off: np.ndarray, edge_s: float,
                        standby_w: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reference of `fill_gaps` on a one-second grid (integer gap bounds): (energy, edge, held)."""
    energy, edge, held = np.zeros(int(off[-1])), np.zeros(int(off[-1])), np.zeros(int(off[-1]))
    for g in range(lum.shape[0]):
        j = int(lum[g])
        a, z = int(t0[g]), int(t1[g])
        if z <= a:
            continue
        tr = trans[trans_off[place[j]]:trans_off[place[j] + 1]]
        sec = np.arange(a, z) + 0.5
        i = np.searchsorted(tr, sec, side="right")
        night = (i % 2 == 0) & (i > 0) & (i < tr.shape[0])
        powered = night if switched[j] else np.ones(sec.shape[0], dtype=bool)
        bucket = np.floor(sec / BUCKET_S).astype(np.int64)
        cells = np.unique(bucket)
        k = cells - b0[j]
        inside = (k >= 0) & (k < off[j + 1] - off[j])
        f = np.full(cells.shape[0], np.nan)
        f[inside] = peer_frac[off[j] + k[inside]]
        lo = np.maximum(a, cells * BUCKET_S)
        hi = np.minimum(z, (cells + 1) * BUCKET_S)
        from_hold = np.isnan(f)
        f = np.where(from_hold, np.where(0.5 * (lo + hi) <= 0.5 * (a + z), hold0[g], hold1[g]), f)
        rate = standby_w + (full_w[j] - standby_w) * f
        on = np.array([np.count_nonzero(powered[bucket == c]) for c in cells.tolist()], float)
        want = rate * on / 3600.0
        is_edge = np.zeros(cells.shape[0], dtype=bool)
        if switched[j]:
            whole = np.array([night_seconds_reference(tr, c * BUCKET_S, (c + 1) * BUCKET_S)
                              for c in cells.tolist()])
            is_edge = (whole > 0) & (whole < BUCKET_S)
        if np.isfinite(delta[g]):
            cap = float(np.sum(rate[is_edge])) * edge_s / 3600.0
            if cap > 0:
                moved = min(max(delta[g] - want.sum(), -cap), cap)
                want = np.where(is_edge, np.maximum(0.0, want + moved * rate * edge_s / 3600.0
                                                    / cap), want)
            total = want.sum()
            if total > 0:
                want = want * delta[g] / total
            elif delta[g] > 0:
                want = delta[g] * (hi - lo) / (z - a)
        c = off[j] + k[inside]
        energy[c] += want[inside]
        edge[c] += np.where(is_edge, rate * edge_s / 3600.0, 0.0)[inside]
        held[c] += np.where(from_hold, want, 0.0)[inside]
    return energy, edge, held
