"""A switched lighting supply for one agent-level simulated controller, as on Sibelga's network.

The cabinet's contactor closes at sunset and opens at sunrise (the sun's upper limb on the
horizon, as the fleet simulator plays it): by day the controller is unpowered. `SwitchedAgent`
plays that on a real edge agent process: at sunrise it cuts the power (SIGKILL, no clean
shutdown: what the outbox holds on disk is all that survives), at sunset it boots the agent
afresh with its simulated clock starting at that sunset.
"""

from __future__ import annotations

import logging
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from astral import Observer
from astral.sun import elevation, sunrise, sunset

log = logging.getLogger(__name__)

NIGHT_ELEVATION_DEG = -0.833  # the fleet simulator's rule (controller_fw_sim.fleet)


@dataclass(frozen=True)
class SwitchedSupply:
    """The supply of a cabinet at (lat, lon), switched off by day."""

    lat: float
    lon: float

    def is_on(self, t: float) -> bool:
        """Powered at epoch s `t`: the sun is below the horizon."""
        when = datetime.fromtimestamp(t, UTC)
        # geometric elevation: sunset and sunrise are where it crosses -0.833 degrees
        return elevation(Observer(self.lat, self.lon), when, with_refraction=False) < (
            NIGHT_ELEVATION_DEG)

    def next_switch(self, t: float) -> float:
        """Epoch s of the next change after `t`: the next sunrise while on, sunset while off."""
        obs = Observer(self.lat, self.lon)
        event = sunrise if self.is_on(t) else sunset
        day = datetime.fromtimestamp(t, UTC).date()
        for d in range(3):
            at = event(obs, day + timedelta(days=d - 1), tzinfo=UTC).timestamp()
            if at > t:
                return at
        raise ValueError(f"no sunrise or sunset within two days of {t} at {self.lat}, {self.lon}")


#: starts the agent process with its simulated clock at the given epoch s
Boot = Callable[[float], subprocess.Popen[bytes]]


@dataclass
class SwitchedAgent:
    """A real edge agent process on a switched supply: off by day, booted at dusk."""

    supply: SwitchedSupply
    boot: Boot
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)
    boots: int = field(default=0, init=False)

    def power(self, t: float) -> None:
        """Bring the agent to what the supply is at simulated time `t`: booted if on, its power
        cut if off."""
        on = self.supply.is_on(t)
        running = self.process is not None and self.process.poll() is None
        if on and not running:
            self.process = self.boot(t)
            self.boots += 1
            log.info("supply on t=%.0f pid=%d boots=%d", t, self.process.pid, self.boots)
        elif not on and self.process is not None:
            if running:
                self.process.send_signal(signal.SIGKILL)  # a power cut: no shutdown
            self.process.wait(10)
            log.info("supply off t=%.0f pid=%d", t, self.process.pid)
            self.process = None

    def close(self) -> None:
        """Stop the agent cleanly (the end of a test, not a power cut)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None
