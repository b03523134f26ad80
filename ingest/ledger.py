"""Exactly once: a batch's message keys go through message_ledger in the batch's own transaction;
only messages whose (controller, boot id, first seq, kind) was not there keep their records.

A concurrent worker inserting the same key blocks on the other's uncommitted ledger row, then
finds the conflict and drops its copy, so several workers stay exactly once. Keys are inserted
in sorted order so two workers never wait on each other in a cycle.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import psycopg

from ingest.copy_binary import CopyLayout, PgType
from ingest.copy_binary import write as copy_write

TEMP_TABLE = """
CREATE TEMP TABLE IF NOT EXISTS ingest_batch_keys (
    msg             integer NOT NULL,
    controller_key  integer NOT NULL,
    boot_id         bigint NOT NULL,
    first_seq       bigint NOT NULL,
    record_count    integer NOT NULL,
    kind            smallint NOT NULL
) ON COMMIT DELETE ROWS
"""

KEYS = CopyLayout(
    "ingest_batch_keys",
    (
        ("msg", PgType.INTEGER),
        ("controller_key", PgType.INTEGER),
        ("boot_id", PgType.BIGINT),
        ("first_seq", PgType.BIGINT),
        ("record_count", PgType.INTEGER),
        ("kind", PgType.SMALLINT),
    ),
)

CLAIM = """
WITH new AS (
    INSERT INTO message_ledger (controller_key, boot_id, first_seq, record_count, kind)
    SELECT controller_key, boot_id, first_seq, record_count, kind FROM ingest_batch_keys
    ORDER BY controller_key, boot_id, first_seq, kind
    ON CONFLICT DO NOTHING
    RETURNING controller_key, boot_id, first_seq, kind
)
SELECT k.msg FROM ingest_batch_keys k JOIN new USING (controller_key, boot_id, first_seq, kind)
"""

def first_occurrences(controller: np.ndarray, boot: np.ndarray, first_seq: np.ndarray,
                      kind: np.ndarray) -> np.ndarray:
    """Indices of the first occurrence of each key in the batch (a batch may carry a replay
    of its own message), in input order."""
    if controller.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    keys = np.empty(controller.shape[0], dtype=[("c", "<i4"), ("b", "<i8"), ("s", "<i8"), ("k", "<i2")])
    keys["c"], keys["b"], keys["s"], keys["k"] = controller, boot, first_seq, kind
    _, first = np.unique(keys, return_index=True)
    return np.sort(first)


def claim(cursor: psycopg.Cursor[Any], n_messages: int, msg: np.ndarray, controller: np.ndarray,
          boot: np.ndarray, first_seq: np.ndarray, count: np.ndarray, kind: np.ndarray) -> np.ndarray:
    """Insert the keys into the ledger; return a bool mask over the batch's messages: new ones.

    Must run inside the transaction that then writes the new messages' records.
    """
    new = np.zeros(n_messages, dtype=bool)
    keep = first_occurrences(controller, boot, first_seq, kind)
    if keep.shape[0] == 0:
        return new
    copy_write(cursor, KEYS, {
        "msg": msg[keep], "controller_key": controller[keep], "boot_id": boot[keep],
        "first_seq": first_seq[keep], "record_count": count[keep], "kind": kind[keep],
    })
    rows = cursor.execute(CLAIM).fetchall()
    if rows:
        new[np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))] = True
    return new
