"""The agent's own durable state beside the outbox: boot ids, answered commands, config, schedule.

SQLite in WAL mode with synchronous=FULL, like the outbox: a command that was answered stays
answered across a SIGKILL, so its redelivery is not executed twice.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from edge_agent.commands import Seen
from wire.messages import AckStatus

_SCHEMA = """
CREATE TABLE IF NOT EXISTS boots (boot_id INTEGER PRIMARY KEY, started_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS commands (
    id          TEXT PRIMARY KEY,
    status      TEXT NOT NULL,
    reason      TEXT,
    answered_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS documents (name TEXT PRIMARY KEY, body TEXT NOT NULL);
"""

COMMAND_MEMORY_S = 30 * 86_400  # longer than any command's useful life


class AgentState:
    def __init__(self, path: Path) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def new_boot(self, now: float) -> int:
        """A boot id never used before by this controller: above every earlier one, and at
        least the start time in ms so a lost data dir does not reuse ids either."""
        with self._lock:
            last = self._db.execute("SELECT coalesce(max(boot_id), 0) FROM boots").fetchone()[0]
            boot = max(last + 1, int(now * 1000))
            self._db.execute("INSERT INTO boots VALUES (?, ?)", (boot, now))
        return boot

    def seen(self, command_id: str) -> Seen | None:
        with self._lock:
            row = self._db.execute("SELECT status, reason FROM commands WHERE id = ?",
                                   (command_id,)).fetchone()
        return None if row is None else Seen(AckStatus(row[0]), row[1])

    def answered(self, command_id: str, status: AckStatus, reason: str | None, now: float) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO commands VALUES (?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
                " status = excluded.status, reason = excluded.reason, answered_at = excluded.answered_at",
                (command_id, str(status), reason, now),
            )
            self._db.execute("DELETE FROM commands WHERE answered_at < ?", (now - COMMAND_MEMORY_S,))

    def document(self, name: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT body FROM documents WHERE name = ?", (name,)).fetchone()
        return None if row is None else row[0]

    def save_document(self, name: str, body: str) -> None:
        with self._lock:
            self._db.execute("INSERT INTO documents VALUES (?, ?) ON CONFLICT (name) DO UPDATE"
                             " SET body = excluded.body", (name, body))
