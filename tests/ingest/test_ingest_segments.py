"""The fold's segments of a batch (ingest/segments.py), without a database: chained as the fold
chains them, they give the energy per luminaire and bucket that the reading-by-reading reference
gives, and each carries its last reading for the live state."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.rollup import reference_buckets
from ingest.segments import ABSENT_POWER, BUCKET_US, build, fold_reference
from wire.codec import LUMINAIRE_DTYPE

T0 = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z, on a bucket boundary


def readings(rows: list[tuple[int, int, float]], failure: list[int] | None = None) -> np.ndarray:
    """(luminaire, seconds from T0, energy_wh) -> records."""
    r = np.zeros(len(rows), dtype=LUMINAIRE_DTYPE)
    r["luminaire"] = [x[0] for x in rows]
    r["time_us"] = [T0 + x[1] * 1_000_000 for x in rows]
    r["energy_wh"] = [x[2] for x in rows]
    r["level"] = 100
    if failure is not None:
        r["failure"] = failure
    return r


# (rows (luminaire, s, Wh), segments expected as
#  (luminaire, readings, m_samples, first Wh, last Wh, inner Wh))
CASES = [
    ("one luminaire, one bucket", [(0, 0, 10.0), (0, 60, 12.0), (0, 120, 15.0)],
     [(0, 3, 3, 10.0, 15.0, 5.0)]),
    ("out of order within the batch", [(0, 120, 15.0), (0, 0, 10.0), (0, 60, 12.0)],
     [(0, 3, 3, 10.0, 15.0, 5.0)]),
    ("a reset counts from 0", [(0, 0, 10.0), (0, 60, 2.0), (0, 120, 3.0)],
     [(0, 3, 3, 10.0, 3.0, 3.0)]),
    ("two buckets, two segments", [(0, 840, 10.0), (0, 900, 12.0), (0, 960, 13.0)],
     [(0, 1, 1, 10.0, 10.0, 0.0), (0, 2, 2, 12.0, 13.0, 1.0)]),
    ("two luminaires", [(1, 0, 5.0), (0, 0, 10.0), (1, 60, 6.0)],
     [(0, 1, 1, 10.0, 10.0, 0.0), (1, 2, 2, 5.0, 6.0, 1.0)]),
]


@pytest.mark.parametrize(("rows", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_segments(rows: list, expected: list) -> None:
    s = build(np.full(len(rows), 7), readings(rows), np.arange(len(rows)))
    got = [(int(s.luminaire[i]), int(s.readings[i]), int(s.m_samples[i]), float(s.m_first_wh[i]),
            float(s.m_last_wh[i]), float(s.m_inner_wh[i])) for i in range(len(s))]
    assert got == expected
    assert (s.controller_key == 7).all()


def test_unmetered_readings_give_the_state_and_no_energy() -> None:
    rows = [(0, 0, 10.0), (0, 60, 0.0), (0, 120, 14.0)]
    s = build(np.zeros(3), readings(rows, failure=[0, ABSENT_POWER, 0]), np.arange(3))
    assert (int(s.readings[0]), int(s.m_samples[0]), float(s.m_inner_wh[0])) == (3, 2, 4.0)
    only_absent = build(np.zeros(1), readings([(0, 0, 0.0)], failure=[ABSENT_POWER]), np.arange(1))
    assert int(only_absent.m_samples[0]) == 0 and int(only_absent.readings[0]) == 1
    assert int(only_absent.state["failure"][0]) == ABSENT_POWER  # the live state still sees it


def test_the_state_is_the_last_reading_by_time_then_seq() -> None:
    rows = [(0, 60, 2.0), (0, 60, 3.0), (0, 0, 1.0)]
    s = build(np.zeros(3), readings(rows), np.array([5, 9, 1]))
    assert (int(s.seq[0]), float(s.state["energy_wh"][0])) == (9, 3.0)


def test_an_empty_batch_has_no_segment() -> None:
    assert len(build(np.zeros(0), readings([]), np.zeros(0))) == 0


# any readings of 3 luminaires over 2 hours (unique times per luminaire), cut into batches in time
# order per luminaire (what the fold adds up incrementally)
ROWS = st.lists(st.tuples(st.integers(0, 2), st.integers(0, 7200),
                          st.one_of(st.floats(0, 1e5, allow_nan=False), st.just(0.0))),
                min_size=1, max_size=60, unique_by=lambda r: (r[0], r[1]))


@given(ROWS, st.lists(st.integers(0, 60), max_size=4))
def test_chained_segments_equal_the_reference(rows: list, cuts: list[int]) -> None:
    rows = sorted(rows, key=lambda r: r[1])  # batches in time order: the incremental case
    bounds = sorted({0, len(rows), *[min(c, len(rows)) for c in cuts]})
    batches = []
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        part = rows[lo:hi]
        order = np.random.default_rng(lo).permutation(len(part))  # any order inside a batch
        part = [part[i] for i in order]
        batches.append(build(np.zeros(len(part)), readings(part),
                             np.array([r[1] for r in part], dtype=np.int64)))
    got = fold_reference(batches)
    expected = reference_buckets((r[0], T0 // 1_000_000 + r[1], r[1], r[2]) for r in rows)
    want = {(0, lum, b * 1_000_000): v for (lum, b), v in expected.items()}
    assert got.keys() == want.keys()
    for key, (energy, samples) in want.items():
        assert got[key][1] == samples
        assert got[key][0] == pytest.approx(energy, rel=1e-9, abs=1e-6)
    assert sum(int(b.readings.sum()) for b in batches) == len(rows)
    assert all(b.m_last_time_us.max(initial=0) - b.m_first_time_us.min(initial=0) >= 0 for b in batches)
    assert all(((b.m_first_time_us // BUCKET_US) == (b.m_last_time_us // BUCKET_US)).all() for b in batches)
