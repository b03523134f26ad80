"""Numba kernels of the codec agree with their numpy references."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from wire.kernels import gather_segments, gather_segments_reference


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
        src[s : s + n].tobytes() for s, n in zip(starts, lengths)
    )


def test_gather_segments_on_random_large_input():
    rng = np.random.default_rng(7)
    src = rng.integers(0, 256, 1_000_000, dtype=np.uint8)
    starts = rng.integers(0, 900_000, 5000)
    lengths = rng.integers(0, 100_000, 5000) % (1_000_000 - starts)
    out = np.empty(int(lengths.sum()), dtype=np.uint8)
    gather_segments(src, starts, lengths, out)
    assert np.array_equal(out, gather_segments_reference(src, starts, lengths))
