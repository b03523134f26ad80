"""A fleet publisher's logic, sans-I/O: the in-flight window, the queue of work, reconnection.

Events in (work handed over, a PUBACK, the connection lost, a socket reopened, a CONNACK, close
asked), answers out (which rows to publish now, whether to reconnect now, how long to wait,
whether the work is done). No paho, no sockets, no clock: `fleet_publish._worker` owns those and
passes the time in.

The rules:
- at most `window` messages published and not yet acknowledged; nothing is published while the
  connection is down (paho resends what was in flight once the broker accepts the reconnection);
- rows go out once each, in the order they were handed over;
- a lost connection is retried after the project's backoff (wire.retry.Backoff); after
  `give_up_s` without a connection the publisher reports an error;
- done when closing was asked, every row handed over was published and acknowledged, and the
  connection is up.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from wire.retry import Backoff

MISC_EVERY_S = 1.0  # keepalive bookkeeping (paho's loop_misc) at most this often
IDLE_WAIT_S = 1.0  # longest wait for the socket or new work


class PublishError(RuntimeError):
    """A publisher could not connect, or lost its connection to the broker."""


@dataclass(frozen=True)
class Reconnect:
    """How a publisher reconnects: the project's one backoff between attempts, and how long it
    stays disconnected before it reports an error."""

    backoff: Backoff = field(default_factory=lambda: Backoff(initial_s=0.1, max_s=5.0))
    give_up_s: float = 600.0


@dataclass
class Work:
    """Rows handed over for one kind: row i goes to topics[ctl[i]]; `at` is the next to publish."""

    topics: Sequence[str]
    retain: bool
    ctl: Sequence[int]
    rows: Any  # numpy rows (their bytes are the payload) or a sequence of bytes
    at: int = 0


@dataclass(frozen=True, slots=True)
class Chunk:
    """Publish rows [start, end) of `work` now."""

    work: Work
    start: int
    end: int


class PublisherWindow:
    """One publisher's state: created connected (the shell connected before handing it over)."""

    def __init__(self, window: int, reconnect: Reconnect, rng: random.Random, now: float) -> None:
        if window < 1:
            raise ValueError("the in-flight window must be at least 1")
        self.window = window
        self.reconnect = reconnect
        self._rng = rng
        self.connected = True  # CONNACK accepted
        self.has_socket = True  # a socket is open (connected or waiting for CONNACK)
        self.attempt = 0
        self.retry_at = now
        self.lost_at = now
        self._last_misc = now
        self.work: deque[Work] = deque()
        self.sent = 0
        self.acked = 0
        self.failed = 0
        self.closing = False

    # ------------------------------------------------------------------ events
    def submitted(self, work: Work) -> None:
        self.work.append(work)

    def close(self) -> None:
        """Finish what was handed over, then stop."""
        self.closing = True

    def puback(self, failure: bool = False) -> None:
        self.acked += 1
        if failure:
            self.failed += 1

    def lost(self, now: float) -> bool:
        """The connection (or an attempt to open one) failed. True if it was up until now."""
        was_up = self.connected
        if was_up:
            self.lost_at = now
        self.connected = self.has_socket = False
        self.attempt += 1
        self.retry_at = now + self.reconnect.backoff.delay(self.attempt, self._rng)
        return was_up

    def socket_opened(self) -> None:
        """A reconnection was sent; its CONNACK decides."""
        self.has_socket = True

    def connack(self, accepted: bool, now: float) -> bool:
        """The broker answered a reconnection. False: refused, the shell closes the socket and
        reports it lost."""
        if accepted:
            self.connected, self.attempt = True, 0
        return accepted

    # ------------------------------------------------------------------ answers
    def in_flight(self) -> int:
        return self.sent - self.acked

    def room(self) -> int:
        """How many more may be published now."""
        return max(0, self.window - self.in_flight()) if self.connected else 0

    def take(self) -> list[Chunk]:
        """The rows to publish now (counted as sent), filling the window in order."""
        room = self.room()
        chunks: list[Chunk] = []
        work = self.work
        while work and room > 0:
            item = work[0]
            end = min(len(item.ctl), item.at + room)
            chunks.append(Chunk(item, item.at, end))
            self.sent += end - item.at
            room -= end - item.at
            if end == len(item.ctl):
                work.popleft()
            else:
                item.at = end
        return chunks

    def reconnect_due(self, now: float) -> bool:
        """Open a new connection now? Raises PublishError once disconnected for too long."""
        if self.has_socket or now < self.retry_at:
            return False
        if now - self.lost_at > self.reconnect.give_up_s:
            raise PublishError(f"no connection to the broker for {self.reconnect.give_up_s:.0f} s")
        return True

    def done(self) -> bool:
        return self.closing and not self.work and self.sent == self.acked and self.connected

    def wants_work(self) -> bool:
        """Read the parent's pipe now: idle, room in the window, or nothing else to wait for."""
        idle = not self.work and not self.closing
        return idle or self.room() > 0 or not self.has_socket

    def wait_s(self, now: float) -> float:
        """Longest wait for the socket or the pipe before the next pass."""
        if self.has_socket:
            return IDLE_WAIT_S
        return max(0.0, min(IDLE_WAIT_S, self.retry_at - now))

    def misc_due(self, now: float) -> bool:
        """Time for keepalive bookkeeping (only with a socket)."""
        if self.has_socket and now - self._last_misc > MISC_EVERY_S:
            self._last_misc = now
            return True
        return False
