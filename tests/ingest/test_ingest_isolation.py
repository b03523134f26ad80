"""Failure handling without services: how a failed write is classified, and how a batch is
stored around its offending messages (a Store that fails like the database would)."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.failures import Failure, classify, data_reason, describe
from ingest.isolation import BatchStore, RetryPolicy
from ingest.writer import WriteResult

Message = tuple[str, bytes]


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (psycopg.errors.lookup("22P05")("unsupported Unicode escape"), Failure.DATA),
        (psycopg.errors.lookup("22003")("numeric out of range"), Failure.DATA),
        (psycopg.errors.lookup("23505")("duplicate key"), Failure.DATA),
        (psycopg.errors.lookup("23503")("foreign key"), Failure.DATA),
        (psycopg.errors.lookup("54000")("index row too large"), Failure.DATA),
        (psycopg.errors.lookup("40001")("serialization failure"), Failure.TRANSIENT),
        (psycopg.errors.lookup("40P01")("deadlock"), Failure.TRANSIENT),
        (psycopg.errors.lookup("57P01")("terminating connection"), Failure.TRANSIENT),
        (psycopg.errors.lookup("57P03")("the database system is starting up"), Failure.TRANSIENT),
        (psycopg.errors.lookup("53100")("disk full"), Failure.TRANSIENT),
        (psycopg.errors.lookup("08006")("connection failure"), Failure.TRANSIENT),
        (psycopg.errors.lookup("58030")("io error"), Failure.TRANSIENT),
        (psycopg.errors.lookup("55P03")("lock not available"), Failure.TRANSIENT),
        (psycopg.OperationalError("server closed the connection unexpectedly"), Failure.TRANSIENT),
        (psycopg.InterfaceError("the connection is closed"), Failure.TRANSIENT),
        (ConnectionResetError(), Failure.TRANSIENT),
        (psycopg.errors.lookup("42P01")("relation does not exist"), Failure.SETUP),
        (psycopg.errors.lookup("42501")("permission denied"), Failure.SETUP),
        (psycopg.errors.lookup("28P01")("password authentication failed"), Failure.SETUP),
        (psycopg.errors.lookup("XX000")("internal error"), Failure.UNEXPECTED),
        (psycopg.errors.lookup("42601")("syntax error"), Failure.UNEXPECTED),
        (psycopg.ProgrammingError("no sqlstate"), Failure.UNEXPECTED),
        (ValueError("a bug"), Failure.UNEXPECTED),
        (UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed"), Failure.UNEXPECTED),
        (OverflowError("date value out of range"), Failure.UNEXPECTED),
    ],
)
def test_failures_are_classified_by_type_and_sqlstate(exc: BaseException,
                                                      expected: Failure) -> None:
    assert classify(exc) is expected
    assert expected.retried == (expected in (Failure.TRANSIENT, Failure.SETUP))


def test_reasons_and_descriptions_are_short_stable_labels() -> None:
    exc = psycopg.errors.lookup("22P05")("unsupported Unicode escape sequence\nDETAIL: ...")
    assert data_reason(exc) == "db_rejected:untranslatable_character"
    assert data_reason(psycopg.errors.lookup("23514")("x")) == "db_rejected:check_violation"
    assert describe(exc) == ("UntranslatableCharacter [22P05]: unsupported Unicode escape "
                             "sequence DETAIL: ...")
    assert len(describe(ValueError("x" * 5000))) == 500


class FakeDatabase:
    """A Store that refuses any batch holding a poison (its payload says how), and keeps what
    it committed. `transient` failures come first, `setup` ones too, whatever the batch."""

    def __init__(self, transient: int = 0, dead_letter_fails: bool = False) -> None:
        self.committed: list[Message] = []
        self.dead: list[tuple[Message, str]] = []
        self.writes = 0
        self.transient = transient
        self.dead_letter_fails = dead_letter_fails

    def write(self, batch: Sequence[Message]) -> WriteResult:
        self.writes += 1
        if self.transient:
            self.transient -= 1
            raise psycopg.errors.lookup("40001")("could not serialize access")
        for _, payload in batch:
            if payload.startswith(b"data"):
                raise psycopg.errors.lookup("22P05")("unsupported Unicode escape sequence")
            if payload.startswith(b"bug"):
                raise KeyError("a bug met on this message")
        self.committed += batch
        return WriteResult(messages=len(batch), new_messages=len(batch))

    def dead_letter(self, message: Message, reason: str, detail: str | None = None) -> WriteResult:
        if self.dead_letter_fails:
            raise psycopg.errors.lookup("22021")("invalid byte sequence")
        self.dead.append((message, reason))
        return WriteResult(messages=1, new_messages=1, rejects=Counter({reason: 1}))


def _store(db: FakeDatabase, waits: list[float], stop_after: int = 10**9) -> BatchStore:
    def wait(delay: float) -> bool:
        waits.append(delay)
        return len(waits) >= stop_after

    return BatchStore(db, RetryPolicy(0.1, 5.0), wait, random.Random(1))


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 300).flatmap(lambda n: st.tuples(
    st.just(n), st.sets(st.integers(0, n - 1), max_size=6),
    st.lists(st.sampled_from([b"data", b"bug"]), min_size=6, max_size=6))))
def test_every_message_is_committed_once_or_dead_lettered_once(case: tuple) -> None:
    n, poisoned, kinds = case
    poison_kind = {i: kinds[k] for k, i in enumerate(sorted(poisoned))}
    batch = [(f"t/{i}", poison_kind.get(i, b"ok") + b"%d" % i) for i in range(n)]
    db, waits = FakeDatabase(), []
    outcome = _store(db, waits).write(batch)
    assert outcome is not None and not waits
    good = [m for i, m in enumerate(batch) if i not in poisoned]
    assert db.committed == good  # each once, in the batch's order
    expected = {batch[i]: ("db_rejected:untranslatable_character" if poison_kind[i] == b"data"
                           else "internal_error") for i in poisoned}
    assert dict(db.dead) == expected and len(db.dead) == len(poisoned)
    assert outcome.result.new_messages == n
    assert outcome.internal_errors == sum(k == b"bug" for k in poison_kind.values())
    # one write without a poison; with k of them about 2 k log2(n) more
    assert db.writes <= 1 + 2 * len(poisoned) * max(1, n.bit_length())


def test_transient_failures_are_retried_with_capped_backoff_then_stored() -> None:
    db, waits = FakeDatabase(transient=8), []
    batch = [("t", b"ok%d" % i) for i in range(10)]
    outcome = _store(db, waits).write(batch)
    assert outcome is not None and db.committed == batch and not db.dead
    assert len(waits) == 8 and outcome.failures == 8
    jitter = random.Random(1)
    assert waits[:3] == pytest.approx([0.1 * 2**k * (1 - 0.5 * jitter.random()) for k in range(3)])
    assert max(waits) <= 5.0


def test_stopping_while_waiting_to_retry_returns_none_without_dead_letters() -> None:
    db, waits = FakeDatabase(transient=100), []
    assert _store(db, waits, stop_after=3).write([("t", b"ok")]) is None
    assert len(waits) == 3 and not db.committed and not db.dead


def test_a_dead_letter_refused_too_is_counted_and_the_rest_still_stored() -> None:
    db, waits = FakeDatabase(dead_letter_fails=True), []
    batch = [("t", b"ok1"), ("t", b"data2"), ("t", b"ok3")]
    outcome = _store(db, waits).write(batch)
    assert outcome is not None and outcome.unstorable == 1
    assert db.committed == [batch[0], batch[2]] and not db.dead
