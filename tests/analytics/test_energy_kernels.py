"""The energy kernels agree with their references on random inputs; counter steps by table."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from analytics import energy_kernels as ek

MODULI = np.array([65536.0, 1e6])


@pytest.mark.parametrize(("name", "energies", "bits", "delta"), [
    ("steady", [10.0, 12.0, 14.0], [ek.STEP_FIRST, 0, 0], [np.nan, 2.0, 2.0]),
    ("reset to 0", [500.0, 1.0], [ek.STEP_FIRST, ek.STEP_RESET], [np.nan, np.nan]),
    ("16-bit wrap", [65535.0, 1.0], [ek.STEP_FIRST, ek.STEP_WRAP], [np.nan, 2.0]),
    ("a lifetime in a minute", [10.0, 40_000.0], [ek.STEP_FIRST, ek.STEP_IMPLAUSIBLE],
     [np.nan, np.nan]),
    ("NaN skipped, the next step from the last good one", [10.0, np.nan, 12.0],
     [ek.STEP_FIRST, ek.STEP_BAD, 0], [np.nan, np.nan, 2.0]),
    ("negative", [10.0, -1.0], [ek.STEP_FIRST, ek.STEP_BAD], [np.nan, np.nan]),
    ("infinite", [10.0, np.inf, 11.0], [ek.STEP_FIRST, ek.STEP_BAD, 0], [np.nan, np.nan, 1.0]),
])
def test_counter_steps_table(name: str, energies: list[float], bits: list[int],
                             delta: list[float]) -> None:
    n = len(energies)
    lum = np.zeros(n, np.int64)
    t = np.arange(n) * 60.0
    e = np.array(energies)
    d, b = ek.counter_steps(lum, t, e, np.array([200.0]), MODULI, 900.0)
    assert b.tolist() == bits, name
    np.testing.assert_array_equal(d, np.array(delta))


def test_a_long_step_is_a_gap() -> None:
    d, b = ek.counter_steps(np.zeros(2, np.int64), np.array([0.0, 3600.0]), np.array([0.0, 50.0]),
                            np.array([200.0]), MODULI, 900.0)
    assert b[1] == ek.STEP_GAP and d[1] == 50.0


@st.composite
def readings(draw: st.DrawFn) -> tuple[np.ndarray, ...]:
    n = draw(st.integers(1, 40))
    lum = np.sort(np.array(draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))))
    t = np.cumsum(np.array(draw(st.lists(st.integers(1, 2000), min_size=n, max_size=n)),
                           dtype=np.float64))
    e = np.array(draw(st.lists(st.one_of(st.floats(0, 70000), st.just(float("nan")),
                                         st.just(-1.0)), min_size=n, max_size=n)))
    return lum, t, e


@given(readings())
def test_counter_steps_agree_with_the_reference(data: tuple[np.ndarray, ...]) -> None:
    lum, t, e = data
    bound = np.array([50.0, 100.0, 5000.0, 1e6])
    d1, b1 = ek.counter_steps(lum, t, e, bound, MODULI, 900.0)
    d2, b2 = ek.counter_steps_reference(lum, t, e, bound, MODULI, 900.0)
    np.testing.assert_array_equal(b1, b2)
    np.testing.assert_allclose(d1, d2, equal_nan=True)


@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 4000), st.integers(1, 1200),
                          st.floats(0, 80), st.floats(0, 80), st.floats(0, 1)),
                min_size=1, max_size=20))
def test_spread_steps_agrees_with_the_one_second_reference(steps: list[tuple]) -> None:
    lum = np.array([s[0] for s in steps], np.int64)
    t0 = np.array([s[1] for s in steps], np.float64) + 9000.0
    t1 = t0 + np.array([s[2] for s in steps], np.float64)
    p0 = np.array([s[3] for s in steps])
    p1 = np.array([s[4] for s in steps])
    # an energy the two powers can make (the switch inside the step)
    lo = np.minimum(p0, p1) * (t1 - t0) / 3600.0
    hi = np.maximum(p0, p1) * (t1 - t0) / 3600.0
    delta = lo + np.array([s[5] for s in steps]) * (hi - lo)
    b0 = np.full(3, 10, np.int64)
    off = np.array([0, 8, 16, 24], np.int64)
    energy, covered = np.zeros(24), np.zeros(24)
    ek.spread_steps(lum, t0, t1, p0, p1, delta, b0, off, energy, covered)
    e_ref, c_ref = ek.spread_steps_reference(lum, t0, t1, p0, p1, delta, b0, off)
    np.testing.assert_allclose(energy, e_ref, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(covered, c_ref, atol=1e-9)


@given(st.lists(st.integers(1, 30_000), min_size=2, max_size=12), st.integers(0, 200_000),
       st.integers(0, 20_000))
def test_night_seconds_agree_with_the_reference(gaps: list[int], lo: int, width: int) -> None:
    trans = np.cumsum(np.array(gaps, np.float64))
    hi = lo + width
    assert ek.night_seconds(trans, float(lo), float(hi)) == pytest.approx(
        ek.night_seconds_reference(trans, float(lo), float(hi)))


@given(st.lists(st.lists(st.floats(-1e3, 1e3), min_size=1, max_size=9), min_size=1,
                max_size=12))
def test_segment_medians_agree_with_the_reference(segments: list[list[float]]) -> None:
    values = np.array([v for seg in segments for v in seg])
    heads = np.cumsum([0] + [len(seg) for seg in segments[:-1]]).astype(np.int64)
    np.testing.assert_allclose(ek.segment_medians(heads, values),
                               ek.segment_medians_reference(heads, values))


@given(st.lists(st.tuples(st.integers(0, 1), st.integers(0, 20_000), st.integers(1, 30_000),
                          st.one_of(st.just(float("nan")), st.floats(0, 500)),
                          st.floats(0, 1), st.floats(0, 1)), min_size=1, max_size=6),
       st.lists(st.one_of(st.just(float("nan")), st.floats(0, 1)), min_size=24, max_size=24))
def test_fill_gaps_agrees_with_the_one_second_reference(gaps: list[tuple],
                                                       peer: list[float]) -> None:
    lum = np.array([g[0] for g in gaps], np.int64)
    t0 = np.array([g[1] for g in gaps], np.float64) + 90_000.0
    t1 = t0 + np.array([g[2] for g in gaps], np.float64)
    delta = np.array([g[3] for g in gaps])
    h0 = np.array([g[4] for g in gaps])
    h1 = np.array([g[5] for g in gaps])
    full_w = np.array([60.0, 30.0])
    switched = np.array([True, False])
    place = np.array([0, 0], np.int64)
    trans = np.array([80_000.0, 95_000.0, 110_000.0, 125_000.0, 140_000.0])  # rise, set, ...
    trans_off = np.array([0, 5], np.int64)
    b0 = np.full(2, 100, np.int64)  # cells from 90,000 s
    off = np.array([0, 12, 24], np.int64)
    pf = np.array(peer)
    args = (lum, t0, t1, delta, h0, h1, full_w, switched, place, trans, trans_off, pf, b0, off,
            600.0, 0.5)
    e, edge, held = np.zeros(24), np.zeros(24), np.zeros(24)
    ek.fill_gaps(*args, e, edge, held)
    e_ref, edge_ref, held_ref = ek.fill_gaps_reference(*args)
    np.testing.assert_allclose(e, e_ref, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(edge, edge_ref, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(held, held_ref, rtol=1e-6, atol=1e-6)
