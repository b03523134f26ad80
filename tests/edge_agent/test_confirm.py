"""The agent's end-to-end confirmation bookkeeping, without a broker: a message leaves the outbox
on a receipt that names it (stored or dead-lettered), never on a PUBACK alone; a PUBACKed message
with no receipt in time is sent again with the project's backoff."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from edge_agent.confirm import Confirmations
from wire.messages import Receipt, Stream
from wire.receipts import MessageKey, receipts_for
from wire.retry import Backoff

NOW = datetime(2026, 1, 1, tzinfo=UTC)
BACKOFF = Backoff(initial_s=10.0, max_s=40.0, jitter=0.0)


def key(seq: int, n: int = 50, boot: int = 7, stream: Stream = Stream.LUMINAIRE) -> MessageKey:
    return MessageKey(stream, boot, seq, n)


def receipt(*keys: MessageKey, controller: str = "ctl-1", rejected: str | None = None) -> Receipt:
    if rejected is None:
        return receipts_for(controller, keys, [], NOW)[0]
    return receipts_for(controller, [], [(k, rejected) for k in keys], NOW)[0]


def sent(c: Confirmations, *ids_keys: tuple[int, MessageKey | None], now: float = 0.0) -> None:
    for i, k in ids_keys:
        c.published(i, k)
    for i, _ in ids_keys:
        assert c.puback(i, now).ids == ([] if _ is not None else [i])


def test_a_puback_alone_releases_nothing_a_receipt_does() -> None:
    c = Confirmations(BACKOFF, window=100)
    sent(c, (1, key(0)), (2, key(50)), (3, key(100)))
    assert c.outstanding() == 3 and c.awaiting() == 3
    released = c.receipt(receipt(key(0), key(50)))
    assert released.ids == [1, 2] and released.stored == 2
    assert c.outstanding() == 1


def test_a_receipt_that_covers_part_of_a_message_releases_nothing() -> None:
    c = Confirmations(BACKOFF, window=100)
    sent(c, (1, key(0, 50)))
    assert c.receipt(receipt(key(0, 49))).ids == []
    assert c.receipt(receipt(key(0, 49, boot=8))).ids == []  # another boot
    assert c.receipt(receipt(key(0, 50, stream=Stream.SENSOR))).ids == []  # another stream
    assert c.receipt(receipt(key(0, 60))).ids == [1]


def test_a_dead_lettered_message_is_released_with_its_reason_counted() -> None:
    c = Confirmations(BACKOFF, window=100)
    sent(c, (1, key(0)), (2, key(50)))
    released = c.receipt(receipt(key(0), key(50), rejected="unknown_controller"))
    assert released.ids == [1, 2] and released.rejected == {"unknown_controller": 2}
    assert released.stored == 0


def test_no_receipt_in_time_sends_again_with_a_growing_capped_timeout() -> None:
    c = Confirmations(BACKOFF, window=100)
    sent(c, (1, key(0)), now=0.0)
    assert c.next_due() == 10.0
    assert c.expire(9.9) == [] and c.to_send(8) == ([], 8)
    assert c.expire(10.0) == [1]
    again, fresh = c.to_send(8)
    assert again == [1] and fresh == 7
    timeouts = []
    now = 10.0
    for _ in range(4):
        c.published(1, key(0))
        c.puback(1, now)
        due = c.next_due()
        assert due is not None
        timeouts.append(due - now)
        now = due
        assert c.expire(now) == [1] and c.to_send(1)[0] == [1]
    assert timeouts == [20.0, 40.0, 40.0, 40.0]  # attempt 2, 3, then capped
    assert c.resent == 4


def test_a_receipt_before_the_puback_releases_and_the_late_puback_is_ignored() -> None:
    c = Confirmations(BACKOFF, window=100)
    c.published(1, key(0))
    assert c.receipt(receipt(key(0))).ids == [1]
    assert c.puback(1, 0.0).ids == [] and c.outstanding() == 0 and c.next_due() is None


def test_a_lost_connection_queues_what_was_in_flight_first_in_id_order() -> None:
    c = Confirmations(BACKOFF, window=100)
    for i in (3, 1, 2):
        c.published(i, key(i * 50))
    c.puback(2, 0.0)
    c.connection_lost()
    assert c.to_send(8) == ([1, 3], 6)  # 2 was PUBACKed: it waits for its receipt
    assert c.cursor == 3


def test_the_window_bounds_what_is_unconfirmed() -> None:
    c = Confirmations(BACKOFF, window=3)
    assert c.to_send(8) == ([], 3)
    sent(c, (1, key(0)), (2, key(50)), (3, key(100)))
    assert c.to_send(8) == ([], 0)
    c.receipt(receipt(key(0)))
    assert c.to_send(8) == ([], 1)


def test_what_cannot_be_named_or_has_no_receipt_path_is_released_by_its_puback() -> None:
    c = Confirmations(BACKOFF, window=10)
    c.published(1, None)
    assert c.puback(1, 0.0).ids == [1]
    c.end_to_end = False  # the broker refused the receipt subscription
    c.published(2, key(0))
    assert c.puback(2, 0.0).ids == [2]


def test_requeue_and_forget() -> None:
    c = Confirmations(BACKOFF, window=10)
    sent(c, (1, key(0)), (2, key(50)))
    c.expire(100.0)
    again, _ = c.to_send(2)
    assert again == [1, 2]
    c.requeue([2])
    c.forget([1])  # dropped by the outbox's bound
    assert c.to_send(8) == ([2], 7)
    assert c.outstanding() == 1


def test_random_interleavings_release_each_message_once_and_only_when_named() -> None:
    rng = random.Random(11)
    for _ in range(200):
        c = Confirmations(Backoff(initial_s=1.0, max_s=4.0), window=rng.randint(1, 20), rng=rng)
        keys = {i: key(i * 10, 10) for i in range(1, 40)}
        named: set[int] = set()
        released: list[int] = []
        now = 0.0
        next_new = 1
        for _step in range(300):
            now += rng.random()
            action = rng.random()
            if action < 0.4:
                again, fresh = c.to_send(rng.randint(1, 8))
                new = [i for i in range(next_new, next_new + fresh) if i in keys]
                next_new += len(new)
                for i in again + new:
                    c.published(i, keys[i])
                for i in again + new:
                    if rng.random() < 0.8:
                        released += c.puback(i, now).ids
                if rng.random() < 0.1:
                    c.connection_lost()
            elif action < 0.7:
                pick = [i for i in range(1, next_new) if rng.random() < 0.3]
                if pick:
                    named.update(pick)
                    released += c.receipt(receipt(*(keys[i] for i in pick))).ids
            else:
                c.expire(now)
        assert len(released) == len(set(released))
        assert set(released) <= named
