"""The simulated clock a demo's fleet and agents run on, shared with the centre's services that
compare times with "now" (ingest's accepted window, the API's commands). Only for simulated
fleets: in production every service uses the wall clock."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import AwareDatetime, BaseModel, Field


class SimClock(BaseModel):
    """A simulated clock running `speed` times the wall clock from `origin` at wall time
    `wall_s` (Unix seconds): the demo's fleet. Only for simulated fleets."""

    origin: AwareDatetime
    wall_s: float = Field(gt=0)
    speed: float = Field(gt=0)

    def now_us(self, wall_us: int) -> int:
        """The simulated clock's time at wall time `wall_us`."""
        elapsed_us = wall_us - int(self.wall_s * 1_000_000)
        return int(self.origin.timestamp() * 1_000_000) + int(elapsed_us * self.speed)

    def now(self, wall_s: float) -> datetime:
        """The simulated clock's time at wall time `wall_s` (Unix seconds), in UTC."""
        return datetime.fromtimestamp(self.now_us(int(wall_s * 1_000_000)) / 1e6, UTC)

    def wall_seconds(self, simulated_s: float) -> float:
        """How many wall seconds `simulated_s` simulated seconds take."""
        return simulated_s / self.speed

    def accept_now_us(self, wall_us: int) -> int:
        """The 'now' record times are validated against: the later of the wall clock and the
        simulated one, so the window of now + 1 day moves with a clock running ahead."""
        return max(wall_us, self.now_us(wall_us))
