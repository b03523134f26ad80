"""Command acks: each into command_acks once and the command's status moved forward, inside the
batch's transaction. An ack of no command of its own controller is refused (unknown_command).

A command's status only moves forward: pending, then accepted (or expired, set by the centre),
then done, failed or refused; the first final answer stays. Acks may arrive in any order and
more than once (a controller answers a redelivered command again): (command, status) is stored
once, with the earliest time seen in its batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from wire.messages import Ack

TEMP_TABLE = """
CREATE TEMP TABLE IF NOT EXISTS ingest_batch_acks (
    msg             integer NOT NULL,
    controller_key  integer NOT NULL,
    command_id      text NOT NULL,
    status          text NOT NULL,
    reason          text,
    time            timestamptz NOT NULL
) ON COMMIT DELETE ROWS
"""

BATCH_COPY = ("COPY ingest_batch_acks (msg, controller_key, command_id, status, reason, time)"
              " FROM STDIN")

_RANK = """CASE {0} WHEN 'pending' THEN 0 WHEN 'accepted' THEN 1 WHEN 'expired' THEN 1
                 ELSE 2 END"""

# the commands these acks move, locked in id order: two workers never wait on each other in a cycle
LOCK = """
SELECT c.id FROM commands c
WHERE c.id IN (SELECT command_id FROM ingest_batch_acks)
ORDER BY c.id FOR UPDATE
"""

STORE = f"""
WITH matched AS (
    SELECT a.msg, a.command_id, a.status, a.reason, a.time
    FROM ingest_batch_acks a
    JOIN controllers k ON k.key = a.controller_key
    JOIN commands c ON c.id = a.command_id AND c.controller_id = k.id
), stored AS (
    INSERT INTO command_acks (command_id, status, reason, time)
    SELECT DISTINCT ON (command_id, status) command_id, status, reason, time FROM matched
    ORDER BY command_id, status, time
    ON CONFLICT (command_id, status) DO NOTHING
), best AS (
    SELECT DISTINCT ON (command_id) command_id, status FROM matched
    ORDER BY command_id, {_RANK.format("status")} DESC, time
), moved AS (
    UPDATE commands c SET status = b.status FROM best b
    WHERE c.id = b.command_id AND {_RANK.format("b.status")} > {_RANK.format("c.status")}
)
SELECT a.msg FROM ingest_batch_acks a
WHERE NOT EXISTS (SELECT 1 FROM matched m WHERE m.msg = a.msg)
ORDER BY a.msg
"""


def write(cur: Any, acks: Sequence[tuple[int, int, Ack]]) -> tuple[int, list[int]]:
    """Store new acks; return (how many were stored, batch indices of acks of no command of
    their controller)."""
    if not acks:
        return 0, []
    with cur.copy(BATCH_COPY) as copy:
        for msg, key, a in acks:
            copy.write_row((msg, key, a.command_id, a.status.value, a.reason, a.time))
    cur.execute(LOCK)
    unknown = [int(r[0]) for r in cur.execute(STORE).fetchall()]
    return len(acks) - len(unknown), unknown
