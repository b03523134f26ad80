"""Kernels of the dimming optimiser: the least-cost night of a group by dynamic programming, beside
a plain reference that solves the same problem another way.

A night is T slots. In slot t the group must burn at least level ``req[t]`` (an index into the
group's level grid, ascending in light and in power). A plan is a sequence of levels made of at
most ``max_segments`` constant runs (the switch-on run and at most max_segments - 1 dimming
steps), each at least ``min_len`` slots long (a night shorter than that is one run). The cost of
level j in slot t is ``weight[t] * P(t, j)`` with the expected group power ``P(t, j) = (1 - b[t])
power[j] + b[t] max(boost_w, power[j])``: the presence boost keeps the luminaires at boost_w for
the share b[t] of the slot. ``weight`` is the slot's length in hours plus the Lagrangian price of
a power cap, so the cost is energy (Wh) plus the price of the power drawn in a capped window.

The kernel (`solve_nights`) works on runs: since cost grows with the level in every slot, the best
level of a run is the highest requirement inside it, so the DP is over where runs end and how many
were used: f[k, e] = min over s of f[k-1, s] + cost(s..e at max req), O(K T²) per night with
prefix sums. The reference (`solve_night_reference`) is the textbook state DP over (slot, level,
runs used, run length so far), O(T L² K D), with nothing shared with the kernel but the problem.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

INF = np.inf


@njit(cache=True)
def _slot_power(power: np.ndarray, boost_w: float, b: float, j: int) -> float:
    pj = power[j]
    return (1.0 - b) * pj + b * max(boost_w, pj)


@njit(cache=True)
def _solve_one(req: np.ndarray, weight: np.ndarray, boost: np.ndarray, n: int,
               power: np.ndarray, boost_w: float, max_segments: int, min_len: int,
               out: np.ndarray) -> float:
    n_levels = power.shape[0]
    if n == 0:
        return 0.0
    dmin = min(min_len, n)
    csum = np.zeros((n_levels, n + 1))
    for j in range(n_levels):
        acc = 0.0
        for t in range(n):
            acc += weight[t] * _slot_power(power, boost_w, boost[t], j)
            csum[j, t + 1] = acc
    kmax = max_segments
    # f[e, k]: least cost of slots [0, e) in k runs; the run cost of [s, e) is computed once per
    # (s, e) and shared by every k
    f = np.full((n + 1, kmax + 1), INF)
    back = np.full((n + 1, kmax + 1), -1, dtype=np.int64)
    f[0, 0] = 0.0
    for e in range(dmin, n + 1):
        j = 0
        for s in range(e - 1, e - dmin, -1):
            if req[s] > j:
                j = req[s]
        for s in range(e - dmin, -1, -1):
            if req[s] > j:
                j = req[s]
            run = csum[j, e] - csum[j, s]
            for k in range(1, kmax + 1):
                v = f[s, k - 1] + run
                if v < f[e, k]:
                    f[e, k] = v
                    back[e, k] = s
    kbest = 1
    for k in range(1, kmax + 1):
        if f[n, k] < f[n, kbest]:
            kbest = k
    total = f[n, kbest]
    e = n
    k = kbest
    while k > 0:
        s = back[e, k]
        j = 0
        for t in range(s, e):
            if req[t] > j:
                j = req[t]
        for t in range(s, e):
            out[t] = j
        e = s
        k -= 1
    return total


@njit(cache=True)
def _solve_range(req: np.ndarray, weight: np.ndarray, boost: np.ndarray, n_slots: np.ndarray,
                 power: np.ndarray, boost_w: np.ndarray, max_segments: np.ndarray,
                 min_len: np.ndarray, levels: np.ndarray, cost: np.ndarray, p: int) -> None:
    out = np.full(req.shape[1], -1, dtype=np.int64)
    cost[p] = _solve_one(req[p], weight[p], boost[p], n_slots[p], power[p], boost_w[p],
                         max_segments[p], min_len[p], out)
    for t in range(n_slots[p]):
        levels[p, t] = out[t]


@njit(cache=True, parallel=True)
def _solve_parallel(req: np.ndarray, weight: np.ndarray, boost: np.ndarray, n_slots: np.ndarray,
                    power: np.ndarray, boost_w: np.ndarray, max_segments: np.ndarray,
                    min_len: np.ndarray, levels: np.ndarray, cost: np.ndarray) -> None:
    for p in prange(req.shape[0]):
        _solve_range(req, weight, boost, n_slots, power, boost_w, max_segments, min_len, levels,
                     cost, p)


@njit(cache=True)
def _solve_serial(req: np.ndarray, weight: np.ndarray, boost: np.ndarray, n_slots: np.ndarray,
                  power: np.ndarray, boost_w: np.ndarray, max_segments: np.ndarray,
                  min_len: np.ndarray, levels: np.ndarray, cost: np.ndarray) -> None:
    for p in range(req.shape[0]):
        _solve_range(req, weight, boost, n_slots, power, boost_w, max_segments, min_len, levels,
                     cost, p)


#: below this many nights one thread is faster than waking the pool (about 0.1 s on a busy
#: machine)
PARALLEL_FROM = 2_000


def solve_nights(req: np.ndarray, weight: np.ndarray, boost: np.ndarray, n_slots: np.ndarray,
                 power: np.ndarray, boost_w: np.ndarray, max_segments: np.ndarray,
                 min_len: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-cost plans of P nights at once: (level index per slot, -1 past the night; cost).

    req int (P, S), weight and boost float (P, S), n_slots int (P,), power float (P, L),
    boost_w float (P,), max_segments and min_len int (P,)."""
    problems, slots = req.shape
    levels = np.full((problems, slots), -1, dtype=np.int16)
    cost = np.zeros(problems)
    args = (np.ascontiguousarray(req, dtype=np.int16), np.ascontiguousarray(weight, np.float64),
            np.ascontiguousarray(boost, np.float64), np.ascontiguousarray(n_slots, np.int64),
            np.ascontiguousarray(power, np.float64), np.ascontiguousarray(boost_w, np.float64),
            np.ascontiguousarray(max_segments, np.int64), np.ascontiguousarray(min_len, np.int64))
    run = _solve_parallel if problems >= PARALLEL_FROM else _solve_serial
    run(*args, levels, cost)
    return levels, cost


# ------------------------------------------------------------------------------ reference
def plan_cost(levels: np.ndarray, weight: np.ndarray, boost: np.ndarray, power: np.ndarray,
              boost_w: float) -> float:
    """Cost of a plan (level index per slot) under the kernel's cost model."""
    lv = np.asarray(levels, dtype=np.int64)
    p = power[lv]
    expected = (1.0 - boost[:lv.shape[0]]) * p + boost[:lv.shape[0]] * np.maximum(boost_w, p)
    return float(np.sum(weight[:lv.shape[0]] * expected))


def plan_feasible(levels: np.ndarray, req: np.ndarray, max_segments: int, min_len: int) -> bool:
    """The plan meets every slot's requirement, has at most max_segments runs, each long enough."""
    lv = np.asarray(levels, dtype=np.int64)
    n = lv.shape[0]
    if n == 0:
        return True
    if np.any(lv < req[:n]):
        return False
    cuts = np.flatnonzero(np.diff(lv) != 0) + 1
    bounds = np.concatenate([[0], cuts, [n]])
    runs = np.diff(bounds)
    return bool(runs.shape[0] <= max_segments and np.all(runs >= min(min_len, n)))


def solve_night_reference(req: np.ndarray, weight: np.ndarray, boost: np.ndarray, n: int,
                          power: np.ndarray, boost_w: float, max_segments: int,
                          min_len: int) -> tuple[np.ndarray, float]:
    """The same problem by a state DP over (level, runs used, length of the current run capped at
    min_len), slot by slot. Returns (level index per slot, cost)."""
    n_levels = power.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64), 0.0
    d = min(min_len, n)
    slot = np.array([[(1.0 - boost[t]) * power[j] + boost[t] * max(boost_w, power[j])
                      for j in range(n_levels)] for t in range(n)]) * weight[:n, None]
    shape = (n_levels, max_segments + 1, d + 1)
    cost = np.full(shape, np.inf)
    parents: list[dict[tuple[int, int, int], tuple[int, int, int]]] = []
    for j in range(req[0], n_levels):
        cost[j, 1, 1 if d > 1 else d] = slot[0, j]
    parents.append({})
    for t in range(1, n):
        new = np.full(shape, np.inf)
        parent: dict[tuple[int, int, int], tuple[int, int, int]] = {}
        for j, k, r in zip(*np.nonzero(np.isfinite(cost)), strict=True):
            here = cost[j, k, r]
            # stay at level j
            if j >= req[t]:
                r2 = min(r + 1, d)
                v = here + slot[t, j]
                if v < new[j, k, r2]:
                    new[j, k, r2] = v
                    parent[(j, k, r2)] = (j, k, r)
            # change level, when the run so far is long enough and a run is left
            if r >= d and k < max_segments:
                for j2 in range(max(req[t], 0), n_levels):
                    if j2 == j:
                        continue
                    r2 = min(1, d)
                    v = here + slot[t, j2]
                    if v < new[j2, k + 1, r2]:
                        new[j2, k + 1, r2] = v
                        parent[(j2, k + 1, r2)] = (int(j), int(k), int(r))
        cost = new
        parents.append(parent)
    final = cost[:, :, d]
    j_end, k_end = np.unravel_index(int(np.argmin(final)), final.shape)
    best = float(final[j_end, k_end])
    state = (int(j_end), int(k_end), d)
    levels = np.zeros(n, dtype=np.int64)
    for t in range(n - 1, -1, -1):
        levels[t] = state[0]
        if t > 0:
            state = parents[t][state]
    return levels, best
