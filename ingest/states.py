"""Birth and death messages: each into controller_states once, and the controller's online flag,
boot, firmware and last_seen derived from that history, inside the batch's transaction.

Which state is current cannot be read from times or sequence numbers alone: a controller's last
will (offline, connection_lost) is written when it connects, before that connection's birth, and
the broker publishes it only when the connection is lost. So, within the controller's latest boot
(by time), ordered by seq: the controller is online when its last birth was followed by no death,
and the will written just before that birth (after the birth before it) has not come; a death
after the last birth, will or not, means offline. A new boot's messages supersede the old boot's.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from wire.messages import OfflineReason, State

TEMP_TABLE = """
CREATE TEMP TABLE IF NOT EXISTS ingest_batch_states (
    controller_key  integer NOT NULL,
    time            timestamptz NOT NULL,
    online          boolean NOT NULL,
    reason          text,
    firmware        text NOT NULL,
    luminaires      smallint NOT NULL,
    boot_id         bigint NOT NULL,
    seq             bigint NOT NULL,
    message_id      text NOT NULL
) ON COMMIT DELETE ROWS
"""

BATCH_COPY = ("COPY ingest_batch_states (controller_key, time, online, reason, firmware,"
              " luminaires, boot_id, seq, message_id) FROM STDIN")

# one writer per controller at a time (in key order: two workers never wait on each other in a
# cycle), so each sees the other's committed history before deriving the flag
LOCK = """
SELECT key FROM controllers WHERE key IN (SELECT controller_key FROM ingest_batch_states)
ORDER BY key FOR UPDATE
"""

STORE = """
INSERT INTO controller_states (time, controller_key, online, reason, firmware, luminaires,
                               boot_id, seq, message_id)
SELECT time, controller_key, online, reason, firmware, luminaires, boot_id, seq, message_id
FROM ingest_batch_states
"""

LATEST_BOOTS = """
WITH touched AS (SELECT DISTINCT controller_key FROM ingest_batch_states),
latest AS (
    SELECT t.controller_key, b.boot_id
    FROM touched t CROSS JOIN LATERAL (
        SELECT h.boot_id FROM controller_states h WHERE h.controller_key = t.controller_key
        ORDER BY h.time DESC, h.seq DESC LIMIT 1
    ) b
)
SELECT h.controller_key, h.boot_id, h.seq, h.online, h.reason, h.firmware, h.time
FROM controller_states h JOIN latest l USING (controller_key, boot_id)
ORDER BY h.controller_key, h.seq
"""

UPDATE = """
UPDATE controllers c
SET online = v.online, boot_id = v.boot_id, firmware = coalesce(v.firmware, c.firmware),
    last_seen = greatest(c.last_seen, v.seen)
FROM unnest(%(key)s::integer[], %(online)s::boolean[], %(boot)s::bigint[], %(firmware)s::text[],
            %(seen)s::timestamptz[]) AS v(key, online, boot_id, firmware, seen)
WHERE c.key = v.key
"""


@dataclass(frozen=True)
class StateRow:
    """One stored state message of a boot."""

    seq: int
    online: bool
    reason: str | None


def online_now(rows: Iterable[StateRow]) -> bool:
    """Whether a controller is online, from the state messages of its latest boot received so
    far, in any order (see the module docstring)."""
    ordered = sorted(rows, key=lambda r: r.seq)
    births = [r.seq for r in ordered if r.online]
    if not births:
        return False
    last = births[-1]
    before = births[-2] if len(births) > 1 else -1
    for r in ordered:
        if r.online:
            continue
        if r.seq > last:
            return False  # died after its last birth
        if r.reason == OfflineReason.CONNECTION_LOST and before < r.seq < last:
            return False  # the will of the last birth's connection: that connection was lost
    return True


_U64 = (1 << 64) - 1


def _signed(value: int) -> int:
    """A u64 boot id or sequence number as the bigint it is stored as (two's complement)."""
    return value - (1 << 64) if value >> 63 else value


def batch_rows(states: Sequence[tuple[int, int, State]]) -> list[tuple[Any, ...]]:
    """Rows of ingest_batch_states for (message index, controller key, state) triples."""
    return [(key, s.time, s.online, None if s.reason is None else s.reason.value, s.firmware,
             s.luminaires, _signed(s.boot_id), _signed(s.seq), s.id) for _, key, s in states]


def write(cur: Any, states: Sequence[tuple[int, int, State]]) -> int:
    """Store new state messages and bring their controllers' flags up to date; return how many."""
    if not states:
        return 0
    with cur.copy(BATCH_COPY) as copy:
        for row in batch_rows(states):
            copy.write_row(row)
    cur.execute(LOCK)
    cur.execute(STORE)
    by_controller: dict[int, list[tuple[Any, ...]]] = {}
    for row in cur.execute(LATEST_BOOTS).fetchall():
        by_controller.setdefault(row[0], []).append(row)
    keys, online, boots, firmware, seen = [], [], [], [], []
    for key, rows in by_controller.items():
        keys.append(key)
        online.append(online_now(StateRow(seq & _U64, up, why)
                                 for _, _, seq, up, why, _, _ in rows))
        boots.append(rows[0][1])
        births = [r for r in rows if r[3]]
        firmware.append(births[-1][5] if births else None)
        seen.append(max(r[6] for r in rows))
    cur.execute(UPDATE, {"key": keys, "online": online, "boot": boots, "firmware": firmware,
                         "seen": seen})
    return len(states)

