"""The optimiser's DP: optimal against brute force on small nights, the numba kernel against the
plain state-DP reference on random nights, and every plan within its constraints."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics.optimiser_kernels import (
    plan_cost,
    plan_feasible,
    solve_night_reference,
    solve_nights,
)


def _night(rng: np.random.Generator, n: int, levels: int, boosted: bool) -> dict:
    power = np.sort(rng.uniform(5, 100, levels))
    power[0] = 5.0
    return dict(
        req=rng.integers(0, levels, n).astype(np.int16),
        weight=rng.uniform(0.05, 0.25, n) + rng.uniform(0, 1, n) * (rng.random(n) < 0.3),
        boost=rng.uniform(0, 0.6, n) if boosted else np.zeros(n),
        n=n, power=power, boost_w=float(power[-1]) if boosted else 0.0,
        max_segments=int(rng.integers(1, 5)), min_len=int(rng.integers(1, 4)),
    )


def _kernel(night: dict, pad: int = 0) -> tuple[np.ndarray, float]:
    n = night["n"]
    s = n + pad

    def padded(a: np.ndarray, fill: float) -> np.ndarray:
        out = np.full(s, fill, dtype=a.dtype)
        out[:n] = a
        return out

    levels, cost = solve_nights(padded(night["req"], 0)[None, :], padded(night["weight"], 0.0)[None, :],
                                padded(night["boost"], 0.0)[None, :], np.array([n]),
                                night["power"][None, :], np.array([night["boost_w"]]),
                                np.array([night["max_segments"]]), np.array([night["min_len"]]))
    assert np.all(levels[0, n:] == -1), "nothing is planned past the night"
    return levels[0, :n].astype(np.int64), float(cost[0])


def _brute_force(night: dict) -> float:
    best = np.inf
    for plan in itertools.product(range(night["power"].shape[0]), repeat=night["n"]):
        lv = np.array(plan)
        if plan_feasible(lv, night["req"], night["max_segments"], night["min_len"]):
            best = min(best, plan_cost(lv, night["weight"], night["boost"], night["power"],
                                       night["boost_w"]))
    return best


@pytest.mark.parametrize("seed", range(40))
def test_the_kernel_is_optimal_against_brute_force_on_small_nights(seed: int) -> None:
    rng = np.random.default_rng(seed)
    night = _night(rng, n=int(rng.integers(1, 7)), levels=int(rng.integers(2, 4)),
                   boosted=seed % 2 == 1)
    levels, cost = _kernel(night, pad=3)
    assert plan_feasible(levels, night["req"], night["max_segments"], night["min_len"])
    assert cost == pytest.approx(plan_cost(levels, night["weight"], night["boost"],
                                           night["power"], night["boost_w"]))
    assert cost == pytest.approx(_brute_force(night), rel=1e-12)
    ref_levels, ref_cost = solve_night_reference(**night)
    assert ref_cost == pytest.approx(cost, rel=1e-12)
    assert plan_feasible(ref_levels, night["req"], night["max_segments"], night["min_len"])


@settings(max_examples=80, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 40), st.integers(2, 24), st.booleans())
def test_kernel_and_reference_agree_on_random_nights(seed: int, n: int, levels: int,
                                                     boosted: bool) -> None:
    night = _night(np.random.default_rng(seed), n, levels, boosted)
    k_levels, k_cost = _kernel(night)
    r_levels, r_cost = solve_night_reference(**night)
    assert k_cost == pytest.approx(r_cost, rel=1e-9)
    for plan in (k_levels, r_levels):
        assert plan_feasible(plan, night["req"], night["max_segments"], night["min_len"])


def test_a_night_shorter_than_the_minimum_step_is_one_run_at_its_highest_need() -> None:
    night = dict(req=np.array([1, 3, 0], dtype=np.int16), weight=np.full(3, 0.25),
                 boost=np.zeros(3), n=3, power=np.linspace(10, 40, 4), boost_w=0.0,
                 max_segments=3, min_len=8)
    levels, _ = _kernel(night)
    assert levels.tolist() == [3, 3, 3]


def test_many_nights_at_once_give_each_the_plan_it_gets_alone() -> None:
    rng = np.random.default_rng(7)
    nights = [_night(rng, int(rng.integers(1, 30)), 20, bool(i % 2)) for i in range(25)]
    s = 32
    req = np.zeros((25, s), np.int16)
    weight = np.zeros((25, s))
    boost = np.zeros((25, s))
    for i, nt in enumerate(nights):
        req[i, :nt["n"]], weight[i, :nt["n"]], boost[i, :nt["n"]] = nt["req"], nt["weight"], nt["boost"]
    levels, cost = solve_nights(req, weight, boost, np.array([nt["n"] for nt in nights]),
                                np.stack([nt["power"] for nt in nights]),
                                np.array([nt["boost_w"] for nt in nights]),
                                np.array([nt["max_segments"] for nt in nights]),
                                np.array([nt["min_len"] for nt in nights]))
    for i, nt in enumerate(nights):
        assert cost[i] == pytest.approx(_kernel(nt)[1])
