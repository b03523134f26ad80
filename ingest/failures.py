"""What a failed batch write means: retry it later, find the message that caused it, or a bug.

Classified by type and SQLSTATE, never by message text:

- transient: the database or the link to it (connection lost, serialisation failure or
  deadlock, disk full, out of memory, shutting down, I/O error) — the same batch is retried
  with backoff, unacknowledged;
- setup: the schema or the role's grants are not what ingest needs (missing table or column,
  privilege) — retried with backoff and an error log, since dead-lettering every message until an
  operator fixes the database would be worse;
- data: the database refused a value or a constraint of the batch's content (class 22 data
  exceptions, class 23 integrity violations, class 54 limits such as an index row too large) —
  the offending message is found and dead-lettered;
- unexpected: anything else (a bug) — the offending message is found and dead-lettered as
  `internal_error`, with the traceback in the log.
"""

from __future__ import annotations

import re
from enum import StrEnum

import psycopg

_TRANSIENT_CLASSES = ("08", "40", "53", "57", "58")
"""connection exception, transaction rollback, insufficient resources, operator intervention,
system error."""
_TRANSIENT_STATES = {"55P03", "55006", "25P03"}
"""lock not available, object in use, idle in transaction session timeout."""
_SETUP_CLASSES = ("28", "3D", "3F")
"""invalid authorization, invalid catalog name, invalid schema name."""
_SETUP_STATES = {"42501", "42P01", "42703", "42883", "42704"}
"""insufficient privilege, undefined table, column, function, object."""
_DATA_CLASSES = ("22", "23", "54")
"""data exception, integrity constraint violation, program limit exceeded."""


class Failure(StrEnum):
    TRANSIENT = "transient"
    SETUP = "setup"
    DATA = "data"
    UNEXPECTED = "unexpected"

    @property
    def retried(self) -> bool:
        """True when the same batch is written again later; else its messages are split."""
        return self in (Failure.TRANSIENT, Failure.SETUP)


def classify(exc: BaseException) -> Failure:
    """How a batch write that raised `exc` is handled (see the module docstring)."""
    if isinstance(exc, psycopg.Error):
        state = exc.sqlstate or ""
        if not state:  # no server answer: the connection broke, or was closed under us
            if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
                return Failure.TRANSIENT
            return Failure.UNEXPECTED
        if state.startswith(_TRANSIENT_CLASSES) or state in _TRANSIENT_STATES:
            return Failure.TRANSIENT
        if state.startswith(_SETUP_CLASSES) or state in _SETUP_STATES:
            return Failure.SETUP
        if state.startswith(_DATA_CLASSES):
            return Failure.DATA
        return Failure.UNEXPECTED
    if isinstance(exc, ConnectionError | TimeoutError):
        return Failure.TRANSIENT
    return Failure.UNEXPECTED


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def data_reason(exc: BaseException) -> str:
    """The dead-letter reason of a message the database refused: `db_rejected:<condition>`,
    e.g. db_rejected:untranslatable_character (a bounded set: PostgreSQL's condition names)."""
    return f"db_rejected:{_snake(type(exc).__name__)}"


def describe(exc: BaseException, limit: int = 500) -> str:
    """One line saying what failed, for a log line or a dead letter's detail."""
    text = " ".join(str(exc).split())
    state = getattr(exc, "sqlstate", None)
    where = f" [{state}]" if state else ""
    return f"{type(exc).__name__}{where}: {text}"[:limit]
