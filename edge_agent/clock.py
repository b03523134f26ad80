"""Injectable clocks: the real one, and an accelerated one so tests live hours in seconds.

Every piece of the agent that reads the time or waits goes through a `Clock`, so "ten minutes
of agent time" can pass in ten seconds of real time without a line of agent code knowing it.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def time(self) -> float:
        """Agent wall-clock time, seconds since the Unix epoch (UTC)."""

    def monotonic(self) -> float:
        """Agent monotonic time in seconds (for intervals and rate limits)."""

    async def sleep(self, seconds: float) -> None:
        """Wait `seconds` of agent time."""


class RealClock:
    """The machine's clocks."""

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class ScaledClock:
    """Agent time runs `factor` times faster than real time, from `start` (epoch seconds).

    With factor=60 a 60 s telemetry interval takes one real second; `start` lets a test put the
    agent in a Brussels winter night whatever the real date is.
    """

    def __init__(self, factor: float = 1.0, start: float | None = None) -> None:
        if factor <= 0:
            raise ValueError("clock factor must be positive")
        self.factor = float(factor)
        self._real0 = time.monotonic()
        self._start = time.time() if start is None else float(start)

    def _elapsed(self) -> float:
        return (time.monotonic() - self._real0) * self.factor

    def time(self) -> float:
        return self._start + self._elapsed()

    def monotonic(self) -> float:
        return self._elapsed()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self.factor)


def utc_now(clock: Clock) -> datetime:
    """The clock's time as an aware UTC datetime."""
    return datetime.fromtimestamp(clock.time(), tz=UTC)


def to_us(clock: Clock) -> int:
    """The clock's time in integer microseconds since the epoch (telemetry record time)."""
    return int(round(clock.time() * 1_000_000))
