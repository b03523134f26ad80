"""The sensor inventory (`sensor_state`, migration 0031): per sensor series (controller, sensor
index, quantity) its newest reading and its first time, upserted in the transaction that stores the
readings, so the sensor routes read one row per series instead of the readings.

A batch is folded in numpy to one row per series first (its greatest (time, boot_id, seq) and its
least time), then merged in one statement: the stored row moves only towards a greater
(time, boot_id, seq) and a lesser first time. The merge is a maximum and a minimum, so it does not
depend on the order batches arrive in: a late reading never overwrites a newer one, and a batch
stored twice (which the ledger prevents anyway) changes nothing."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import psycopg

# One statement, the batch's series as arrays (one round trip: no temporary table to COPY into);
# rows in key order, so two workers merging the same series lock them in the same order.
MERGE = """
INSERT INTO sensor_state AS s (controller_key, sensor, quantity, first_time, time, boot_id, seq, value)
SELECT c, sn, q, 'epoch'::timestamptz + f * interval '1 microsecond',
       'epoch'::timestamptz + t * interval '1 microsecond', b, n, v
FROM unnest(%s::int4[], %s::int2[], %s::int2[], %s::int8[], %s::int8[], %s::int8[], %s::int8[],
            %s::float4[]) AS u (c, sn, q, f, t, b, n, v)
ON CONFLICT (controller_key, sensor, quantity) DO UPDATE SET
    first_time = least(s.first_time, excluded.first_time),
    time = CASE WHEN (excluded.time, excluded.boot_id, excluded.seq) > (s.time, s.boot_id, s.seq)
                THEN excluded.time ELSE s.time END,
    boot_id = CASE WHEN (excluded.time, excluded.boot_id, excluded.seq) > (s.time, s.boot_id, s.seq)
                   THEN excluded.boot_id ELSE s.boot_id END,
    seq = CASE WHEN (excluded.time, excluded.boot_id, excluded.seq) > (s.time, s.boot_id, s.seq)
               THEN excluded.seq ELSE s.seq END,
    value = CASE WHEN (excluded.time, excluded.boot_id, excluded.seq) > (s.time, s.boot_id, s.seq)
                 THEN excluded.value ELSE s.value END
WHERE (excluded.time, excluded.boot_id, excluded.seq) > (s.time, s.boot_id, s.seq)
   OR excluded.first_time < s.first_time
"""


@dataclass(frozen=True, eq=False)
class SeriesState:
    """One row per series of a batch's readings, in key order."""

    controller_key: np.ndarray  # int32
    sensor: np.ndarray  # int16-able
    quantity: np.ndarray
    first_time_us: np.ndarray  # int64, the series' least time in the batch
    time_us: np.ndarray  # int64, the time of its greatest (time, boot_id, seq)
    boot_id: np.ndarray  # int64
    seq: np.ndarray  # int64
    value: np.ndarray  # float32

    def __len__(self) -> int:
        return int(self.controller_key.shape[0])


def fold(controller: np.ndarray, sensor: np.ndarray, quantity: np.ndarray, time_us: np.ndarray,
         boot_id: np.ndarray, seq: np.ndarray, value: np.ndarray) -> SeriesState:
    """Reduce readings (parallel arrays) to one row per (controller, sensor, quantity): the reading
    with the greatest (time, boot_id, seq) and the least time. Vectorised: one sort, no row loop."""
    order = np.lexsort((seq, boot_id, time_us, quantity, sensor, controller))
    c, s, q = controller[order], sensor[order], quantity[order]
    n = order.shape[0]
    starts = np.ones(n, dtype=bool)
    if n:
        starts[1:] = (c[1:] != c[:-1]) | (s[1:] != s[:-1]) | (q[1:] != q[:-1])
    first = np.flatnonzero(starts)  # sorted by time within a series: its first row is the oldest
    last = np.empty_like(first)
    last[:-1] = first[1:] - 1
    if first.shape[0]:
        last[-1] = n - 1
    pick = order[last]
    return SeriesState(controller[pick], sensor[pick], quantity[pick], time_us[order[first]],
                       time_us[pick], boot_id[pick], seq[pick], value[pick])


def merge(cur: psycopg.Cursor, controller: np.ndarray, sensor: np.ndarray, quantity: np.ndarray,
          time_us: np.ndarray, boot_id: np.ndarray, seq: np.ndarray, value: np.ndarray) -> int:
    """Fold stored readings into sensor_state; returns the number of series the batch touched."""
    if controller.shape[0] == 0:
        return 0
    state = fold(controller, sensor, quantity, time_us, boot_id, seq, value)
    cur.execute(MERGE, [a.tolist() for a in (
        state.controller_key, state.sensor, state.quantity, state.first_time_us, state.time_us,
        state.boot_id, state.seq, state.value)], binary=True)
    return len(state)
