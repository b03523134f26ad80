"""Numba kernels of the codec agree with their numpy references."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from wire.kernels import (
    gather_segments,
    gather_segments_reference,
    within_limits,
    within_limits_reference,
)


@st.composite
def segments(draw):
    src = np.frombuffer(draw(st.binary(min_size=0, max_size=500)), dtype=np.uint8)
    bounds = draw(st.lists(
        st.tuples(st.integers(0, len(src)), st.integers(0, len(src))), max_size=20
    ))
    starts = np.array([min(a, b) for a, b in bounds], dtype=np.int64)
    lengths = np.array([abs(a - b) for a, b in bounds], dtype=np.int64)
    return src, starts, lengths


@given(segments())
def test_gather_segments_agrees_with_reference(case):
    src, starts, lengths = case
    expected = gather_segments_reference(src, starts, lengths)
    out = np.full(int(lengths.sum()), 0xAA, dtype=np.uint8)
    assert gather_segments(src, starts, lengths, out) is out
    assert out.tobytes() == expected.tobytes()
    assert expected.tobytes() == b"".join(
        src[s : s + n].tobytes() for s, n in zip(starts, lengths, strict=True)
    )


def test_gather_segments_on_random_large_input():
    rng = np.random.default_rng(7)
    src = rng.integers(0, 256, 1_000_000, dtype=np.uint8)
    starts = rng.integers(0, 900_000, 5000)
    lengths = rng.integers(0, 100_000, 5000) % (1_000_000 - starts)
    out = np.empty(int(lengths.sum()), dtype=np.uint8)
    gather_segments(src, starts, lengths, out)
    assert np.array_equal(out, gather_segments_reference(src, starts, lengths))


LIMIT_VALUES = st.one_of(st.floats(-1e6, 1e6, width=32), st.just(float("nan")),
                         st.just(float("inf")), st.just(float("-inf")), st.sampled_from([0.0, -0.0, 1.0]))


@st.composite
def limit_cases(draw):
    dtype = draw(st.sampled_from([np.float32, np.float64, np.int64, np.uint16]))
    rows, width = draw(st.integers(0, 30)), draw(st.integers(1, 6))
    if np.dtype(dtype).kind == "f":
        cells = st.one_of(LIMIT_VALUES, st.integers(-3, 3).map(float))
    else:
        info = np.iinfo(dtype)
        cells = st.one_of(st.integers(info.min, info.max), st.integers(max(info.min, -3), 3))
    columns = np.array(draw(st.lists(st.lists(cells, min_size=width, max_size=width),
                                     min_size=rows, max_size=rows)), dtype=dtype).reshape(rows, width)
    cols = np.array(draw(st.lists(st.integers(0, width - 1), min_size=1, max_size=4)), np.int64)
    bounds = [sorted(draw(st.lists(cells.filter(lambda v: v == v), min_size=2, max_size=2)))
              for _ in cols]
    low = np.array([b[0] for b in bounds], dtype=dtype)
    high = np.array([b[1] for b in bounds], dtype=dtype)
    ok = np.array(draw(st.lists(st.booleans(), min_size=rows, max_size=rows)), dtype=bool)
    return columns, cols, low, high, ok


@given(limit_cases())
def test_within_limits_agrees_with_reference(case):
    columns, cols, low, high, ok = case
    expected, got = ok.copy(), ok.copy()
    within_limits_reference(columns, cols, low, high, expected)
    within_limits(columns, cols, low, high, got)
    assert got.tolist() == expected.tolist()
    assert not (got & ~ok).any()  # only ever clears


def test_within_limits_fails_nan_and_keeps_bounds():
    columns = np.array([[0.0], [1.0], [np.nan], [-0.0], [1.0000001]], dtype=np.float32)
    ok = np.ones(5, dtype=bool)
    within_limits(columns, np.array([0]), np.array([0.0], np.float32),
                  np.array([1.0], np.float32), ok)
    assert ok.tolist() == [True, True, False, True, False]
