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

from ingest.copy_binary import CopyLayout, PgType
from ingest.copy_binary import write as copy_write

TEMP_TABLE = """
CREATE TEMP TABLE IF NOT EXISTS sensor_state_batch (
    controller_key  integer NOT NULL,
    sensor          smallint NOT NULL,
    quantity        smallint NOT NULL,
    first_time      timestamptz NOT NULL,
    time            timestamptz NOT NULL,
    boot_id         bigint NOT NULL,
    seq             bigint NOT NULL,
    value           real NOT NULL
) ON COMMIT DELETE ROWS
"""

ROWS = CopyLayout(
    "sensor_state_batch",
    (
        ("controller_key", PgType.INTEGER), ("sensor", PgType.SMALLINT),
        ("quantity", PgType.SMALLINT), ("first_time", PgType.TIMESTAMPTZ),
        ("time", PgType.TIMESTAMPTZ), ("boot_id", PgType.BIGINT), ("seq", PgType.BIGINT),
        ("value", PgType.REAL),
    ),
)

# The batch's series reach the server by a binary COPY of a buffer numpy built (not as array
# parameters: psycopg dumps a list element by element, some 12 ms for 5,000 integers on a loaded
# machine), then one statement merges them. Rows in key order, so two workers merging the same
# series lock them in the same order.
MERGE = """
INSERT INTO sensor_state AS s (controller_key, sensor, quantity, first_time, time, boot_id, seq, value)
SELECT controller_key, sensor, quantity, first_time, time, boot_id, seq, value
FROM sensor_state_batch ORDER BY controller_key, sensor, quantity
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
    """Fold stored readings into sensor_state (the temp table must exist: TEMP_TABLE); returns
    the number of series the batch touched."""
    if controller.shape[0] == 0:
        return 0
    state = fold(controller, sensor, quantity, time_us, boot_id, seq, value)
    copy_write(cur, ROWS, {
        "controller_key": state.controller_key, "sensor": state.sensor,
        "quantity": state.quantity, "first_time": state.first_time_us, "time": state.time_us,
        "boot_id": state.boot_id, "seq": state.seq, "value": state.value,
    })
    cur.execute(MERGE)
    return len(state)
