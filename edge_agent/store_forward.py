"""Store-and-forward outbox: every outgoing message is written to SQLite (WAL) before it is sent.

A message leaves the outbox only when the centre confirms it stored (or dead-lettered) it, not on
the broker's PUBACK (`edge_agent.confirm`), so a network outage, a broker crash or restart, a
SIGKILL or a power cut loses nothing that was accepted here. The outbox is bounded by size and
age: when full, the oldest messages are dropped first and counted. When the disk itself is full,
the oldest messages are kept and the new one is dropped and counted.
Draining is in insertion order, so readings reach the centre in the order they were taken.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    topic       TEXT NOT NULL,
    payload     BLOB NOT NULL,
    qos         INTEGER NOT NULL,
    retain      INTEGER NOT NULL,
    created_at  REAL NOT NULL,
    size        INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (
    name   TEXT PRIMARY KEY,
    value  INTEGER NOT NULL
);
"""


class OutboxFull(OSError):
    """The disk under the outbox is full: confirmed messages could not be removed yet."""


def _disk_full(exc: sqlite3.OperationalError) -> bool:
    """SQLITE_FULL (no space left), or a write refused by the OS (e.g. EFBIG past a file size
    limit), which SQLite reports as an I/O error."""
    name = getattr(exc, "sqlite_errorname", "")
    return name == "SQLITE_FULL" or name.startswith("SQLITE_IOERR")


@dataclass(frozen=True)
class Pending:
    id: int
    topic: str
    payload: bytes
    qos: int
    retain: bool
    created_at: float


@dataclass(frozen=True)
class OutboxStats:
    messages: int
    bytes: int
    oldest_age_s: float
    dropped_total: int


class Outbox:
    """A durable FIFO of MQTT messages on SQLite; safe to use from several threads."""

    def __init__(self, path: Path, max_bytes: int = 64 << 20, max_age_s: float = 7 * 86_400,
                 clock=time.time) -> None:
        if max_bytes <= 0 or max_age_s <= 0:
            raise ValueError("outbox limits must be positive")
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.max_age_s = max_age_s
        self._clock = clock
        self._lock = threading.Lock()
        self.disk_full_dropped = 0  # new messages refused by a full disk since this process started
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # FULL: a committed put survives a power cut, not only a crash of the process
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._bytes = self._db.execute("SELECT coalesce(sum(size), 0) FROM outbox").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def put(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> int:
        """Store a message durably; returns how many messages were dropped to make room (old ones
        past the bounds), or 1 when the disk is full: then the new message is dropped, the older
        ones are kept, and the drop is counted."""
        size = len(payload) + len(topic)
        if size > self.max_bytes:
            raise ValueError(f"a message of {size} bytes cannot fit an outbox of {self.max_bytes}")
        with self._lock:
            for attempt in (1, 2):
                try:
                    return self._put(topic, payload, qos, retain, size)
                except sqlite3.OperationalError as exc:
                    if not _disk_full(exc):
                        raise
                    if attempt == 1:
                        self._checkpoint()  # the WAL may hold most of the space: give it back
            self.disk_full_dropped += 1
            if self.disk_full_dropped % 100 == 1:
                log.warning("outbox disk full path=%s: kept the oldest messages, dropped the newest "
                            "(dropped_on_full=%d)", self.path, self.disk_full_dropped)
            return 1

    def _put(self, topic: str, payload: bytes, qos: int, retain: bool, size: int) -> int:
        now = self._clock()
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.execute(
                "INSERT INTO outbox (topic, payload, qos, retain, created_at, size)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (topic, payload, qos, int(retain), now, size),
            )
            self._bytes += size
            dropped = self._enforce_limits(now)
            self._db.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise
        return dropped

    def _rollback(self) -> None:
        if self._db.in_transaction:  # SQLite rolls back by itself after an I/O error
            self._db.execute("ROLLBACK")
        self._bytes = self._db.execute("SELECT coalesce(sum(size), 0) FROM outbox").fetchone()[0]

    def _checkpoint(self) -> None:
        try:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.OperationalError as exc:
            log.debug("outbox checkpoint failed path=%s error=%s", self.path, exc)

    def _enforce_limits(self, now: float) -> int:
        dropped = self._db.execute(
            "DELETE FROM outbox WHERE created_at < ? RETURNING size", (now - self.max_age_s,)
        ).fetchall()
        freed = sum(r[0] for r in dropped)
        count = len(dropped)
        while self._bytes - freed > self.max_bytes:
            oldest = self._db.execute("SELECT id, size FROM outbox ORDER BY id LIMIT 256").fetchall()
            if not oldest:
                break
            victims = []
            for row_id, size in oldest:  # drop no more than needed
                if self._bytes - freed <= self.max_bytes:
                    break
                victims.append(row_id)
                freed += size
            self._db.execute("DELETE FROM outbox WHERE id <= ?", (victims[-1],))
            count += len(victims)
        self._bytes -= freed
        if count:
            self._db.execute(
                "INSERT INTO counters (name, value) VALUES ('dropped', ?)"
                " ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
                (count,),
            )
        return count

    def expire(self) -> int:
        """Drop messages older than max_age_s (also done on every put); returns how many."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            dropped = self._enforce_limits(self._clock())
            self._db.execute("COMMIT")
        return dropped

    def peek(self, limit: int, after_id: int = 0) -> list[Pending]:
        """The oldest messages (after `after_id`), in order, without removing them."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, topic, payload, qos, retain, created_at FROM outbox"
                " WHERE id > ? ORDER BY id LIMIT ?",
                (after_id, limit),
            ).fetchall()
        return [Pending(i, t, bytes(p), q, bool(r), c) for i, t, p, q, r, c in rows]

    def get(self, ids: list[int]) -> list[Pending]:
        """The messages with these ids that are still here, in id order."""
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        with self._lock:
            rows = self._db.execute(
                "SELECT id, topic, payload, qos, retain, created_at FROM outbox"
                f" WHERE id IN ({marks}) ORDER BY id", ids,
            ).fetchall()
        return [Pending(i, t, bytes(p), q, bool(r), c) for i, t, p, q, r, c in rows]

    def remove(self, ids: list[int]) -> None:
        """Forget messages the centre has confirmed (stored or dead-lettered). With the disk full
        they stay (OutboxFull): they are sent again later and the centre drops the copies."""
        if not ids:
            return
        with self._lock:
            for attempt in (1, 2):
                try:
                    self._remove(ids)
                    break
                except sqlite3.OperationalError as exc:
                    if not _disk_full(exc):
                        raise
                    if attempt == 2:
                        raise OutboxFull(str(exc)) from exc
                    self._checkpoint()

    def _remove(self, ids: list[int]) -> None:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            freed = 0
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                marks = ",".join("?" * len(chunk))
                freed += sum(
                    r[0] for r in self._db.execute(
                        f"DELETE FROM outbox WHERE id IN ({marks}) RETURNING size", chunk
                    )
                )
            self._db.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise
        self._bytes -= freed

    def stats(self) -> OutboxStats:
        with self._lock:
            count, oldest = self._db.execute("SELECT count(*), min(created_at) FROM outbox").fetchone()
            row = self._db.execute("SELECT value FROM counters WHERE name = 'dropped'").fetchone()
        age = 0.0 if oldest is None else max(0.0, self._clock() - oldest)
        return OutboxStats(count, self._bytes, age, (row[0] if row else 0) + self.disk_full_dropped)


class TokenBucket:
    """Bounds the drain rate after a reconnect so a backlog does not flood the broker."""

    def __init__(self, rate_per_s: float, burst: int, clock=time.monotonic) -> None:
        if rate_per_s <= 0 or burst <= 0:
            raise ValueError("rate and burst must be positive")
        self.rate = rate_per_s
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._at = clock()

    def take(self, wanted: int) -> int:
        """Take up to `wanted` tokens now; returns how many were granted."""
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        granted = min(wanted, int(self._tokens))
        self._tokens -= granted
        return granted

    def wait_s(self, wanted: int = 1) -> float:
        """Seconds until `wanted` tokens are available."""
        missing = wanted - self._tokens
        return 0.0 if missing <= 0 else missing / self.rate
