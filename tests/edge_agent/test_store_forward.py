"""The store-and-forward outbox: durable, ordered, bounded by size and age, dropped counted."""

from __future__ import annotations

import multiprocessing
import os
import signal
from pathlib import Path

import pytest

from edge_agent.store_forward import Outbox, TokenBucket


class Clock:
    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_messages_drain_in_order_and_leave_only_when_removed(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "out.db")
    for i in range(10):
        box.put(f"t/{i}", bytes([i]) * 10)
    first = box.peek(4)
    assert [p.topic for p in first] == ["t/0", "t/1", "t/2", "t/3"]
    assert [p.topic for p in box.peek(4, after_id=first[-1].id)] == ["t/4", "t/5", "t/6", "t/7"]
    box.remove([p.id for p in first[:2]])
    assert [p.topic for p in box.peek(3)] == ["t/2", "t/3", "t/4"]
    assert box.stats().messages == 8


def test_survives_reopening(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "out.db")
    box.put("a", b"1")
    box.put("b", b"22", retain=True)
    box.close()
    again = Outbox(tmp_path / "out.db")
    pending = again.peek(10)
    assert [(p.topic, p.payload, p.retain) for p in pending] == [("a", b"1", False), ("b", b"22", True)]
    assert again.stats().bytes == 1 + 1 + 1 + 2


def test_oldest_dropped_first_when_full_and_counted(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "out.db", max_bytes=1000)
    for i in range(30):
        box.put(f"t/{i:02d}", b"x" * 95)  # 100 bytes each with the topic
    stats = box.stats()
    assert stats.bytes <= 1000
    assert stats.messages == 10
    assert stats.dropped_total == 20
    assert [p.topic for p in box.peek(1)] == ["t/20"]


def test_old_messages_expire_and_are_counted(tmp_path: Path) -> None:
    clock = Clock()
    box = Outbox(tmp_path / "out.db", max_age_s=3600, clock=clock)
    box.put("old", b"1")
    clock.t += 1800
    box.put("newer", b"2")
    clock.t += 1801
    assert box.expire() == 1
    assert [p.topic for p in box.peek(10)] == ["newer"]
    assert box.stats().dropped_total == 1


def test_a_message_bigger_than_the_outbox_is_refused(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "out.db", max_bytes=100)
    with pytest.raises(ValueError, match="cannot fit"):
        box.put("t", b"x" * 200)


def _writer(path: str, ready) -> None:
    box = Outbox(Path(path))
    for i in range(1_000_000):
        box.put("t", i.to_bytes(8, "little"))
        if i == 200:
            ready.set()


def test_sigkill_during_writes_loses_no_committed_message(tmp_path: Path) -> None:
    path = tmp_path / "out.db"
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    proc = ctx.Process(target=_writer, args=(str(path), ready))
    proc.start()
    assert ready.wait(60)
    os.kill(proc.pid, signal.SIGKILL)
    proc.join(10)
    values = [int.from_bytes(p.payload, "little") for p in Outbox(path).peek(10_000_000)]
    assert len(values) > 200
    assert values == list(range(len(values))), "a gap or a reordering after SIGKILL"


def test_token_bucket_bounds_the_drain_rate() -> None:
    clock = Clock(0.0)
    bucket = TokenBucket(rate_per_s=100, burst=50, clock=clock)
    assert bucket.take(80) == 50
    assert bucket.take(10) == 0
    assert bucket.wait_s(10) == pytest.approx(0.1)
    clock.t += 0.25
    assert bucket.take(80) == 25
