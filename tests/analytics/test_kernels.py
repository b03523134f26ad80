"""The fault detectors' numba kernels agree with their plain references on random inputs."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics.kernels import (
    LEARN_READINGS,
    STANDBY_W,
    cycling,
    cycling_reference,
    debounce,
    debounce_reference,
    drive_share,
    power_baseline,
    power_baseline_reference,
    repeats,
    repeats_reference,
)

JIT = settings(deadline=None, max_examples=150)


def _sorted_lums(draw: st.DrawFn, n_lum: int, rows: int) -> np.ndarray:
    return np.sort(np.array(draw(st.lists(st.integers(0, n_lum - 1), min_size=rows,
                                          max_size=rows)), dtype=np.int64))


@st.composite
def debounce_cases(draw: st.DrawFn) -> tuple:
    n_lum, kinds = draw(st.integers(1, 5)), draw(st.integers(1, 4))
    rows = draw(st.integers(0, 60))
    lum = _sorted_lums(draw, n_lum, rows)
    flags = np.array(draw(st.lists(st.sampled_from([-1, 0, 1]), min_size=rows * kinds,
                                   max_size=rows * kinds)), dtype=np.int8).reshape(rows, kinds)
    raise_after = np.array(draw(st.lists(st.integers(1, 4), min_size=kinds, max_size=kinds)))
    clear_after = np.array(draw(st.lists(st.integers(1, 4), min_size=kinds, max_size=kinds)))
    bad = np.array(draw(st.lists(st.integers(0, 5), min_size=n_lum * kinds,
                                 max_size=n_lum * kinds)), dtype=np.int16).reshape(n_lum, kinds)
    is_open = np.array(draw(st.lists(st.booleans(), min_size=n_lum * kinds,
                                     max_size=n_lum * kinds))).reshape(n_lum, kinds)
    return lum, flags, bad, np.zeros_like(bad), is_open, raise_after, clear_after


@JIT
@given(debounce_cases())
def test_debounce_agrees_with_reference(case: tuple) -> None:
    lum, flags, bad, good, is_open, up, down = case
    a_state = (bad.copy(), good.copy(), is_open.copy())
    b_state = (bad.copy(), good.copy(), is_open.copy())
    a = debounce(lum, flags, *a_state, up, down)
    b = debounce_reference(lum, flags, *b_state, up, down)
    for x, y in zip(a, b, strict=True):
        assert np.array_equal(x, y)
    for x, y in zip(a_state, b_state, strict=True):
        assert np.array_equal(x, y)


def test_debounce_raises_after_a_streak_and_clears_after_another() -> None:
    lum = np.zeros(9, dtype=np.int64)
    flags = np.array([1, 1, -1, 1, 0, 0, 1, 0, 0], dtype=np.int8)[:, None]
    bad, good = np.zeros((1, 1), np.int16), np.zeros((1, 1), np.int16)
    is_open = np.zeros((1, 1), bool)
    rows, kinds, signs = debounce(lum, flags, bad, good, is_open, np.array([3]), np.array([2]))
    # raised at the third bad reading (the silent one in between neither breaks nor counts);
    # the good pair at 4-5 clears it; one bad reading does not raise it again
    assert rows.tolist() == [3, 5] and signs.tolist() == [1, -1] and kinds.tolist() == [0, 0]


@st.composite
def baseline_cases(draw: st.DrawFn) -> tuple:
    n_lum, rows = draw(st.integers(1, 4)), draw(st.integers(0, 80))
    lum = _sorted_lums(draw, n_lum, rows)
    light = np.array(draw(st.lists(st.floats(0.05, 1.0), min_size=rows, max_size=rows)))
    power = np.array(draw(st.lists(st.floats(1.0, 200.0), min_size=rows, max_size=rows)))
    usable = np.array(draw(st.lists(st.booleans(), min_size=rows, max_size=rows)), dtype=bool)
    base = np.array(draw(st.lists(st.floats(5.0, 150.0), min_size=n_lum, max_size=n_lum)))
    samples = np.array(draw(st.lists(st.integers(0, 40), min_size=n_lum, max_size=n_lum)))
    return lum, drive_share(light), power, usable, base, samples.astype(np.int64)


@JIT
@given(baseline_cases())
def test_power_baseline_agrees_with_reference(case: tuple) -> None:
    lum, share, power, usable, base, samples = case
    b1, s1, b2, s2 = base.copy(), samples.copy(), base.copy(), samples.copy()
    a = power_baseline(lum, share, power, usable, b1, s1)
    b = power_baseline_reference(lum, share, power, usable, b2, s2)
    assert np.allclose(a, b, equal_nan=True)
    assert np.allclose(b1, b2) and np.array_equal(s1, s2)


def test_baseline_learns_a_luminaire_across_dimming_and_flags_a_step() -> None:
    full_w = 66.0
    light = np.tile([1.0, 0.5, 0.3], 20)
    share = drive_share(light)
    power = STANDBY_W + (full_w - STANDBY_W) * share
    power[-3:] *= 1.4  # a failing input stage at the end
    lum = np.zeros(power.shape[0], dtype=np.int64)
    base, samples = np.array([40.0]), np.zeros(1, np.int64)
    ratio = power_baseline(lum, share, power, np.ones_like(power, bool), base, samples)
    assert np.isnan(ratio[:LEARN_READINGS]).all()
    assert np.allclose(ratio[LEARN_READINGS:-3], 1.0, atol=0.01)
    assert (ratio[-3:] > 1.35).all()
    assert abs(base[0] - full_w) < 0.5  # the fault taught it nothing


@st.composite
def cycling_cases(draw: st.DrawFn) -> tuple:
    n_lum, rows = draw(st.integers(1, 4)), draw(st.integers(0, 80))
    lum = _sorted_lums(draw, n_lum, rows)
    t = np.cumsum(np.array(draw(st.lists(st.floats(60, 1200), min_size=rows, max_size=rows))))
    lit = np.array(draw(st.lists(st.booleans(), min_size=rows, max_size=rows)), dtype=bool)
    night = np.array(draw(st.lists(st.booleans(), min_size=rows, max_size=rows)), dtype=bool)
    return lum, t, lit, night, np.zeros(n_lum, bool), np.full((n_lum, 4), np.nan)


@JIT
@given(cycling_cases())
def test_cycling_agrees_with_reference(case: tuple) -> None:
    lum, t, lit, night, was_lit, relights = case
    w1, r1, w2, r2 = was_lit.copy(), relights.copy(), was_lit.copy(), relights.copy()
    a = cycling(lum, t, lit, night, w1, r1, 3 * 3600.0, 3)
    b = cycling_reference(lum, t, lit, night, w2, r2, 3 * 3600.0, 3)
    assert np.array_equal(a, b)
    assert np.array_equal(w1, w2) and np.allclose(r1, r2, equal_nan=True)


@st.composite
def repeat_cases(draw: st.DrawFn) -> tuple:
    n, rows = draw(st.integers(1, 4)), draw(st.integers(0, 60))
    series = _sorted_lums(draw, n, rows)
    value = np.array(draw(st.lists(st.sampled_from([1.0, 2.0, 3.5]), min_size=rows,
                                   max_size=rows)))
    ok = np.array(draw(st.lists(st.booleans(), min_size=rows, max_size=rows)), dtype=bool)
    return series, value, ok, np.full(n, np.nan), np.zeros(n, np.int64)


@JIT
@given(repeat_cases())
def test_repeats_agrees_with_reference(case: tuple) -> None:
    series, value, ok, last, count = case
    l1, c1, l2, c2 = last.copy(), count.copy(), last.copy(), count.copy()
    assert np.array_equal(repeats(series, value, ok, l1, c1),
                          repeats_reference(series, value, ok, l2, c2))
    assert np.allclose(l1, l2, equal_nan=True) and np.array_equal(c1, c2)
