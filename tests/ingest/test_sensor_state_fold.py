"""The sensor inventory's per-batch fold (pure): one row per series, its greatest (time, boot_id,
seq) and its least time, checked against a reading-by-reading reference on random batches."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.sensor_state import fold

Row = tuple[int, int, int, int, int, int, float]
"""(controller, sensor, quantity, time, boot id, seq, value)."""


def reference(rows: list[Row]) -> dict[tuple[int, int, int], tuple[int, int, int, int, float]]:
    """Reading by reading: {series: (first time, time, boot id, seq, value)} of the newest."""
    out: dict[tuple[int, int, int], tuple[int, int, int, int, float]] = {}
    for c, s, q, t, b, n, v in rows:
        seen = out.get((c, s, q))
        if seen is None or (t, b, n) > seen[1:4]:
            first = t if seen is None else min(seen[0], t)
            out[(c, s, q)] = (first, t, b, n, v)
        else:
            out[(c, s, q)] = (min(seen[0], t), *seen[1:])
    return out


ROWS = st.lists(st.tuples(st.integers(1, 3), st.integers(30, 33), st.integers(1, 3),
                          st.integers(0, 5), st.integers(-2, 2), st.integers(0, 1000),
                          st.floats(-100, 100, width=32)), max_size=60,
                unique_by=lambda r: (r[0], r[1], r[2], r[3], r[4], r[5]))


@settings(max_examples=300, deadline=None)
@given(ROWS)
def test_the_fold_keeps_each_series_newest_reading_and_first_time(rows: list[Row]) -> None:
    columns = [np.array([r[i] for r in rows], dtype=t) for i, t in enumerate(
        (np.int32, np.uint16, np.uint16, np.int64, np.int64, np.int64, np.float32))]
    state = fold(*columns)
    got = {(int(c), int(s), int(q)): (int(f), int(t), int(b), int(n), float(v))
           for c, s, q, f, t, b, n, v in zip(state.controller_key, state.sensor, state.quantity,
                                               state.first_time_us, state.time_us, state.boot_id,
                                               state.seq, state.value, strict=True)}
    assert got == reference(rows)
    keys = list(zip(state.controller_key.tolist(), state.sensor.tolist(), state.quantity.tolist(),
                    strict=True))
    assert keys == sorted(keys)  # key order: two workers lock the same series in the same order


def test_an_empty_batch_folds_to_nothing() -> None:
    empty = [np.zeros(0, dtype=t) for t in (np.int32, np.uint16, np.uint16, np.int64, np.int64,
                                             np.int64, np.float32)]
    assert len(fold(*empty)) == 0
