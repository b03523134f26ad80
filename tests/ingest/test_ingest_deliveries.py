"""The acknowledgement bookkeeping of an ingest worker (ingest.deliveries), without a broker:
which message ids go out after a commit, which are dropped, when reading pauses."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.deliveries import Deliveries, Delivery

# (events before the commit, acks expected). Events: "c" connected, "d" disconnected,
# "rN" receive mid N (0: QoS 0), "t" take everything received so far into the batch.
CASES = [
    ("one connection, three messages", ["c", "r1", "r2", "r3", "t"], [1, 2, 3]),
    ("QoS 0 messages need no ack", ["c", "r1", "r0", "r2", "t"], [1, 2]),
    ("disconnected after taking: nothing acked, the broker redelivers",
     ["c", "r1", "r2", "t", "d"], []),
    ("reconnected after taking: the old mids mean nothing on the new connection",
     ["c", "r1", "r2", "t", "d", "c"], []),
    ("old messages in the inbox are dropped at take, new ones acked",
     ["c", "r1", "r2", "d", "c", "r1", "t"], [1]),
    ("the same mid on two connections is acked only for the current one",
     ["c", "r7", "t", "d", "c", "r7", "t"], [7]),
]


@pytest.mark.parametrize(("events", "acks"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_acks_after_commit(events: list[str], acks: list[int]) -> None:
    d = Deliveries(limit=100)
    inbox: list[Delivery] = []
    batch: list[Delivery] = []
    for e in events:
        if e == "c":
            d.connected()
        elif e == "d":
            d.disconnected()
        elif e == "t":
            batch += [m for m in inbox if d.take(m)]
            inbox.clear()
        else:
            inbox.append(d.received_message(int(e[1:]), "luciole/v1/t/c/telemetry", b""))
    assert d.committed(batch) == acks
    assert d.unacked() == len(inbox)  # everything taken is released, acked or not


def test_reading_pauses_at_the_limit_and_resumes_after_a_commit() -> None:
    d = Deliveries(limit=3)
    d.connected()
    got = [d.received_message(i + 1, "x", b"") for i in range(3)]
    assert d.must_pause() and d.unacked() == 3 and d.peak_unacked == 3
    assert d.committed([m for m in got[:2] if d.take(m)]) == [1, 2]
    assert not d.must_pause() and d.unacked() == 1


def test_stale_messages_count_as_released() -> None:
    d = Deliveries(limit=2)
    d.connected()
    old = [d.received_message(1, "x", b""), d.received_message(2, "x", b"")]
    assert d.must_pause()
    d.disconnected()
    d.connected()
    assert [d.take(m) for m in old] == [False, False]
    assert d.unacked() == 0 and not d.must_pause()


def test_a_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError):
        Deliveries(limit=0)


# ---------------------------------------------------------------- invariants over any history

@dataclass
class World:
    """The shell as ingest.consumer drives it, with the broker's view of what is pending."""

    d: Deliveries
    connection: int = 0
    next_mid: int = 1
    inbox: list[tuple[int, Delivery]] = field(default_factory=list)  # (message id, delivery)
    batch: list[tuple[int, Delivery]] = field(default_factory=list)
    acked: list[int] = field(default_factory=list)  # message identities acked
    committed: set[int] = field(default_factory=set)
    next_message: int = 0


OPS = st.lists(st.sampled_from(["connect", "drop", "receive", "receive", "receive", "take",
                                "commit", "commit"]), max_size=120)


@given(OPS, st.integers(1, 6))
def test_every_ack_is_once_after_its_commit_and_on_its_own_connection(ops: list[str], limit: int) -> None:
    w = World(Deliveries(limit))
    connected = False
    mids_of_connection: dict[int, dict[int, int]] = {}  # connection -> mid -> message identity
    for op in ops:
        if op == "connect" and not connected:
            w.d.connected()
            w.connection += 1
            connected = True
            w.next_mid = 1
        elif op == "drop" and connected:
            w.d.disconnected()
            connected = False
        elif op == "receive" and connected and not w.d.must_pause():
            mid = w.next_mid
            w.next_mid += 1  # a broker reuses mids across connections; identities differ
            delivery = w.d.received_message(mid, "x", b"")
            mids_of_connection.setdefault(w.connection, {})[mid] = w.next_message
            w.inbox.append((w.next_message, delivery))
            w.next_message += 1
        elif op == "take":
            w.batch += [(m, dl) for m, dl in w.inbox if w.d.take(dl)]
            w.inbox.clear()
        elif op == "commit":
            acks = w.d.committed([dl for _, dl in w.batch])
            current = mids_of_connection.get(w.connection, {}) if connected else {}
            identities = [current[mid] for mid in acks]
            w.committed.update(m for m, _ in w.batch)
            # acked only after its commit, and only deliveries of the live connection
            assert set(identities) <= {m for m, dl in w.batch if dl.generation == w.d.generation}
            if not connected:
                assert acks == []
            w.acked += identities
            w.batch.clear()
        assert 0 <= w.d.unacked() <= limit
        assert w.d.unacked() == len(w.inbox) + len(w.batch)
    assert len(w.acked) == len(set(w.acked)), "a message acked twice"
    assert set(w.acked) <= w.committed
