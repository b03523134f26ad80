"""End-to-end confirmation bookkeeping, sans I/O: which outbox messages are out, which the broker
has acknowledged (PUBACK) and still wait for ingest's receipt, and which are due to be sent again.

A broker's PUBACK is not durability (Mosquitto saves its store only every autosave_interval), so
a message leaves the outbox only when a receipt names it as stored or dead-lettered. A PUBACKed
message that no receipt names within a timeout (the project's one backoff, `wire.retry.Backoff`,
per message: initial timeout, doubling, capped, jittered) is sent again; ingest's message ledger
drops the copy and confirms it once more. The link feeds events in (published, puback, receipt,
connection lost, time) and carries the actions out (publish these ids, remove those).
"""

from __future__ import annotations

import bisect
import heapq
import random
from collections import Counter
from dataclasses import dataclass, field
from enum import Enum

from wire.messages import Receipt, SeqRange, Stream
from wire.receipts import MessageKey
from wire.retry import Backoff


class Phase(Enum):
    IN_FLIGHT = "in_flight"  # handed to the broker, no PUBACK yet
    AWAITING = "awaiting"  # PUBACKed, waiting for a receipt until `due`
    QUEUED = "queued"  # to be sent again


@dataclass
class _Out:
    key: MessageKey | None
    phase: Phase
    attempts: int = 0  # times sent
    due: float = 0.0


@dataclass(frozen=True)
class Released:
    """Messages a receipt (or, for those that cannot be named, their PUBACK) let go."""

    ids: list[int] = field(default_factory=list)
    stored: int = 0
    rejected: Counter[str] = field(default_factory=Counter)


class Confirmations:
    """One agent's confirmation state. Ids are outbox ids (increasing in insertion order).

    At most `window` messages are out (in flight, awaiting a receipt or queued to go again), so
    a centre that stores nothing is not flooded: the agent stops sending new ones and resends the
    old ones at the backoff's pace.
    """

    def __init__(self, backoff: Backoff, window: int, rng: random.Random | None = None,
                 end_to_end: bool = True) -> None:
        if window < 1:
            raise ValueError("the confirmation window must be at least 1")
        self.backoff = backoff
        self.window = window
        # False when receipts cannot reach us (the broker refused the subscription): then a
        # PUBACK releases a message, as durable as the broker's store and no more
        self.end_to_end = end_to_end
        self._rng = rng or random.Random()
        self._out: dict[int, _Out] = {}
        self._queue: list[int] = []  # heap of QUEUED ids
        self._due: list[tuple[float, int]] = []  # heap of (due, id), lazily cleaned
        self._index: dict[tuple[Stream, int], list[tuple[int, int]]] = {}  # sorted (first_seq, id)
        self.cursor = 0  # highest outbox id handed out for a first send
        self.resent = 0  # sends after the first, since start

    # ------------------------------------------------------------------ what to send
    def outstanding(self) -> int:
        return len(self._out)

    def awaiting(self) -> int:
        return sum(1 for o in self._out.values() if o.phase is Phase.AWAITING)

    def to_send(self, limit: int) -> tuple[list[int], int]:
        """(ids to send again, oldest first; how many new messages after `cursor` may follow),
        together at most `limit`. The ids returned are in flight from now on."""
        again: list[int] = []
        while self._queue and len(again) < limit:
            i = heapq.heappop(self._queue)
            out = self._out.get(i)
            if out is None or out.phase is not Phase.QUEUED:
                continue
            out.phase = Phase.IN_FLIGHT
            again.append(i)
        fresh = max(0, min(limit - len(again), self.window - len(self._out)))
        return again, fresh

    def published(self, message_id: int, key: MessageKey | None) -> None:
        """A message is handed to the broker (first time or again)."""
        out = self._out.get(message_id)
        if out is None:
            out = self._out[message_id] = _Out(key, Phase.IN_FLIGHT)
            if key is not None:
                bisect.insort(self._index.setdefault((key.stream, key.boot_id), []),
                              (key.first_seq, message_id))
            self.cursor = max(self.cursor, message_id)
        else:
            self.resent += 1
        out.phase = Phase.IN_FLIGHT
        out.attempts += 1

    def forget(self, ids: list[int]) -> None:
        """Messages that are no longer in the outbox (dropped by its size or age bound)."""
        for i in ids:
            self._drop(i)

    # ------------------------------------------------------------------ events
    def puback(self, message_id: int, now: float) -> Released:
        """The broker acknowledged a message: wait for its receipt until a timeout. A message
        without a key cannot be named by a receipt: its PUBACK releases it."""
        out = self._out.get(message_id)
        if out is None or out.phase is not Phase.IN_FLIGHT:
            return Released()
        if out.key is None or not self.end_to_end:
            self._drop(message_id)
            return Released([message_id])
        out.phase = Phase.AWAITING
        out.due = now + self.backoff.delay(out.attempts, self._rng)
        heapq.heappush(self._due, (out.due, message_id))
        return Released()

    def connection_lost(self) -> None:
        """What was in flight may not have reached the broker: send it again."""
        for i, out in self._out.items():
            if out.phase is Phase.IN_FLIGHT:
                out.phase = Phase.QUEUED
                heapq.heappush(self._queue, i)

    def receipt(self, receipt: Receipt) -> Released:
        """Release every message the receipt covers (stored or dead-lettered), whatever its
        phase: a receipt may come before the PUBACK."""
        ids: list[int] = []
        stored, rejected = 0, Counter[str]()
        named: list[tuple[SeqRange, str | None]] = [(r, None) for r in receipt.stored]
        named += [(r, r.reason) for r in receipt.rejected]
        for r, reason in named:
            entries = self._index.get((r.stream, r.boot_id))
            if not entries:
                continue
            start = bisect.bisect_left(entries, (r.first_seq, -1))
            stop = bisect.bisect_right(entries, (r.last_seq, 1 << 62))
            hits = [i for _first, i in entries[start:stop]
                    if (key := self._out[i].key) is not None and key.last_seq <= r.last_seq]
            for i in hits:
                self._drop(i)
                if reason is None:
                    stored += 1
                else:
                    rejected[reason] += 1
            ids += hits
        return Released(sorted(ids), stored, rejected)

    def expire(self, now: float) -> list[int]:
        """PUBACKed messages whose receipt did not come in time: queued to be sent again."""
        expired: list[int] = []
        while self._due and self._due[0][0] <= now:
            due, i = heapq.heappop(self._due)
            out = self._out.get(i)
            if out is None or out.phase is not Phase.AWAITING or out.due != due:
                continue
            out.phase = Phase.QUEUED
            heapq.heappush(self._queue, i)
            expired.append(i)
        return expired

    def next_due(self) -> float | None:
        """When the earliest awaited receipt times out (None: nothing awaited)."""
        while self._due:
            due, i = self._due[0]
            out = self._out.get(i)
            if out is not None and out.phase is Phase.AWAITING and out.due == due:
                return due
            heapq.heappop(self._due)
        return None

    def requeue(self, ids: list[int]) -> None:
        """Ids `to_send` returned that were not sent after all (the drain rate): keep them queued."""
        for i in ids:
            out = self._out.get(i)
            if out is not None and out.phase is Phase.IN_FLIGHT:
                out.phase = Phase.QUEUED
                heapq.heappush(self._queue, i)

    # ------------------------------------------------------------------ internals
    def _drop(self, message_id: int) -> None:
        out = self._out.pop(message_id, None)
        if out is None or out.key is None:
            return
        entries = self._index.get((out.key.stream, out.key.boot_id))
        if entries is None:
            return
        at = bisect.bisect_left(entries, (out.key.first_seq, message_id))
        if at < len(entries) and entries[at] == (out.key.first_seq, message_id):
            del entries[at]
        if not entries:
            del self._index[(out.key.stream, out.key.boot_id)]
