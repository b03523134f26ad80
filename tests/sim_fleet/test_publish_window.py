"""A fleet publisher's logic without a broker (controller_fw_sim.publish_window): the in-flight
window, the order of rows, reconnection with backoff, giving up, when the work is done."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller_fw_sim.publish_window import Chunk, PublishError, PublisherWindow, Reconnect, Work
from wire.retry import Backoff

NO_JITTER = Reconnect(Backoff(initial_s=1.0, max_s=8.0, jitter=0.0), give_up_s=30.0)


def work(n: int, first: int = 0) -> Work:
    """n rows for controller 0..n-1, payload = the row's global number."""
    return Work([f"t{i}" for i in range(n)], False, list(range(n)),
                [str(first + i).encode() for i in range(n)])


def rows(chunks: list[Chunk]) -> list[bytes]:
    return [c.work.rows[i] for c in chunks for i in range(c.start, c.end)]


def make(window: int = 3) -> PublisherWindow:
    return PublisherWindow(window, NO_JITTER, random.Random(0), now=0.0)


# (window, rows handed over, pubacks between takes, rows published at each take)
WINDOW_CASES = [
    ("fills the window, then one per ack", 3, 5, [0, 1, 1, 1], [3, 1, 1, 0]),
    ("a window larger than the work", 10, 4, [0, 4], [4, 0]),
    ("no ack, no more", 2, 5, [0, 0, 0], [2, 0, 0]),
    ("acks of the whole window release a whole window", 2, 5, [0, 2, 2], [2, 2, 1]),
]


@pytest.mark.parametrize(("window", "n", "acks", "published"), [c[1:] for c in WINDOW_CASES],
                         ids=[c[0] for c in WINDOW_CASES])
def test_window(window: int, n: int, acks: list[int], published: list[int]) -> None:
    s = make(window)
    s.submitted(work(n))
    got = []
    for a in acks:
        for _ in range(a):
            s.puback()
        got.append(len(rows(s.take())))
    assert got == published


def test_rows_go_out_in_order_across_submissions() -> None:
    s = make(window=4)
    s.submitted(work(3, first=0))
    s.submitted(work(3, first=3))
    out = rows(s.take())
    for _ in range(4):
        s.puback()
    out += rows(s.take())
    assert out == [str(i).encode() for i in range(6)]


def test_nothing_is_published_while_disconnected_and_reconnection_waits_for_the_backoff() -> None:
    s = make()
    s.submitted(work(5))
    assert len(rows(s.take())) == 3
    assert s.lost(now=10.0) is True  # was up
    assert s.take() == [] and s.room() == 0
    assert not s.reconnect_due(10.5)  # first delay: 1 s without jitter
    assert s.reconnect_due(11.0)
    s.socket_opened()
    assert not s.reconnect_due(11.0) and s.take() == []  # waiting for CONNACK
    assert s.connack(accepted=True, now=11.1)
    # paho resends the three in flight itself; the window still counts them
    assert s.take() == []
    s.puback()
    assert rows(s.take()) == [b"3"]


def test_refused_reconnections_back_off_exponentially_then_give_up() -> None:
    s = make()
    s.lost(now=0.0)
    due = []
    now = 0.0
    with pytest.raises(PublishError, match="no connection to the broker for 30 s"):
        while now < 100:
            if s.reconnect_due(now):
                due.append(now)
                s.socket_opened()
                assert not s.connack(accepted=False, now=now)
                assert s.lost(now) is False  # it was not up: the outage started at 0
            now = round(now + 0.5, 1)
    assert due == [1.0, 3.0, 7.0, 15.0, 23.0]  # delays 1, 2, 4, 8, 8 (the cap)
    assert now == 31.0  # gave up at the first attempt due after 30 s down


def test_done_needs_close_every_row_acked_and_a_connection() -> None:
    s = make(window=10)
    s.submitted(work(2))
    s.take()
    s.close()
    assert not s.done()
    s.puback()
    s.puback(failure=True)
    assert s.done() and s.failed == 1
    s.lost(now=1.0)
    assert not s.done()


@pytest.mark.parametrize(("setup", "wants"), [
    ("idle", True), ("window full", False), ("room left", True), ("no socket", True),
    ("closing with room left", True)])
def test_when_the_pipe_is_read(setup: str, wants: bool) -> None:
    s = make(window=2)
    if setup == "window full":
        s.submitted(work(3))
        s.take()
    elif setup == "room left":
        s.submitted(work(1))
        s.take()
        s.submitted(work(1))
    elif setup == "no socket":
        s.submitted(work(3))
        s.take()
        s.lost(now=0.0)
    elif setup == "closing with room left":  # the pipe still carries the closing None
        s.close()
    assert s.wants_work() is wants


def test_wait_is_short_while_a_reconnection_is_due() -> None:
    s = make()
    assert s.wait_s(0.0) == 1.0
    s.lost(now=5.0)
    assert s.wait_s(5.0) == 1.0 and s.wait_s(5.75) == pytest.approx(0.25) and s.wait_s(7.0) == 0.0


# ---------------------------------------------------------------- invariants over any history

EVENTS = st.lists(st.one_of(
    st.tuples(st.just("submit"), st.integers(0, 7)),
    st.tuples(st.just("ack"), st.integers(1, 5)),
    st.tuples(st.just("lose"), st.just(0)),
    st.tuples(st.just("tick"), st.integers(0, 3)),
    st.tuples(st.just("refuse"), st.just(0)),
    st.tuples(st.just("take"), st.just(0)),
), max_size=80)


@given(EVENTS, st.integers(1, 6), st.integers(0, 2**32))
def test_window_order_and_reconnection_invariants(events: list[tuple[str, int]], window: int,
                                                  seed: int) -> None:
    s = PublisherWindow(window, Reconnect(Backoff(initial_s=0.5, max_s=4.0), give_up_s=1e9),
                        random.Random(seed), now=0.0)
    now = 0.0
    handed = 0
    published: list[bytes] = []
    for kind, n in events:
        if kind == "submit":
            s.submitted(work(n, first=handed))
            handed += n
        elif kind == "ack":
            for _ in range(min(n, s.in_flight())):  # the broker acks only what is in flight
                s.puback()
        elif kind == "lose":
            s.lost(now)
        elif kind == "tick":
            now += n
            if s.reconnect_due(now):
                before = s.retry_at
                assert now >= before
                s.socket_opened()
                s.connack(accepted=True, now=now)
        elif kind == "refuse" and s.has_socket and not s.connected:
            s.connack(accepted=False, now=now)
            s.lost(now)
        connected = s.connected
        taken = rows(s.take())
        assert connected or not taken, "published while disconnected"
        published += taken
        assert 0 <= s.in_flight() <= window
        assert s.sent == len(published)
    # every row handed over goes out once, in order, as far as it has gone
    assert published == [str(i).encode() for i in range(len(published))]
    assert not s.done() or (s.closing and len(published) == handed)
