"""The API's "now" for commands and schedule pushes: the wall clock, or the simulated clock a demo
hands it (`LUCIOLE_API_SIM_CLOCK`), the one its fleet and agents run on, so that issue times,
expiries and the expired status agree with the controllers' clocks."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from wire.sim_clock import SimClock


class ApiClock:
    """Now, and how long a command's expiry lasts in wall seconds (the MQTT message expiry)."""

    def __init__(self, sim: SimClock | None = None,
                 wall: Callable[[], float] = time.time) -> None:
        self.sim = sim
        self.wall = wall

    @property
    def speed(self) -> float:
        return 1.0 if self.sim is None else self.sim.speed

    def now(self) -> datetime:
        wall_s = self.wall()
        return datetime.fromtimestamp(wall_s, UTC) if self.sim is None else self.sim.now(wall_s)

    def expiry_interval_s(self, expires_at: datetime, now: datetime | None = None) -> int:
        """The MQTT 5 message expiry interval of a command expiring at `expires_at` (on this
        clock): the wall seconds left, less one for the way to the broker, so the broker never
        keeps a command past its expiry; at least 1 (0 would mean never)."""
        left_s = (expires_at - (self.now() if now is None else now)).total_seconds()
        return max(1, int(left_s / self.speed) - 1)
