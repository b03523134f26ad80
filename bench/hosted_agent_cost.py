"""Benchmark: CPU a hosted agent's DALI work costs per simulated hour, early and days later.

One hosted controller as `luciole sim agents` builds it (4 luminaires of simulated D4i gear whose
time follows the agent clock, `luciole.hosted_agents.ClockedGear`), its `DaliPoller` polling at
the hosted interval and its levels driven every control tick by the fallback dusk-to-dawn plan
in Brussels, on a stepped clock: every clock read moves time on by `--step-s` (what a frame's
wall time is worth at the demo's 60x), so the gear's physics runs on every frame as in the demo.
No broker, no sleeping: a simulated hour takes what its CPU takes.

It prints the CPU seconds of the first `--hours` simulated hours and of the `--hours` after
`--days` simulated days, and the ceiling the late figure must stay under: the early figure of
this run times 1.25 (a cost that grows with simulated time, or with the events handled, fails
it). The last line reads `hosted agent: early X s, late Y s of CPU per simulated hour (ceiling
Z s)`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from controller_fw_sim.dali import SimulatedDaliBus
from edge_agent.poller import DaliPoller
from hardware.dali import InProcessBus
from luciole.hosted_agents import HOSTED_CONFIG, ClockedGear
from wire.nights import FALLBACK, Position, level_at

START = datetime(2026, 12, 1, 15, 0, tzinfo=UTC).timestamp()
BRUSSELS = Position(50.85, 4.35)
CONTROL_TICK_S = 10.0  # luciole.hosted_agents.agent_settings


class SteppedClock:
    """Agent time that moves on by `step_s` at each read, and by the whole wait at a sleep."""

    def __init__(self, step_s: float) -> None:
        self.step_s = step_s
        self.t = 0.0

    def time(self) -> float:
        return START + self.monotonic()

    def monotonic(self) -> float:
        self.t += self.step_s
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.t += max(0.0, seconds)
        await asyncio.sleep(0)


async def hour(poller: DaliPoller, clock: SteppedClock) -> float:
    """One simulated hour of polls and control ticks; its CPU seconds."""
    cpu = time.process_time()
    end = clock.t + 3600.0
    next_poll = clock.t
    while clock.t < end:
        if clock.t >= next_poll:
            await poller.poll_once()
            next_poll = clock.t + HOSTED_CONFIG.dali_poll_interval_s
        level = level_at(FALLBACK, BRUSSELS, datetime.fromtimestamp(clock.time(), UTC))
        await poller.drive(dict.fromkeys(poller.groups, level))
        await clock.sleep(CONTROL_TICK_S)
    return time.process_time() - cpu


async def run(hours: int, days: float, step_s: float) -> tuple[float, float]:
    clock = SteppedClock(step_s)
    gear = ClockedGear(SimulatedDaliBus.with_gear(4, seed=1), clock)
    poller = DaliPoller(InProcessBus(gear), 0, clock, lambda *a, **k: None,
                        HOSTED_CONFIG.dali_poll_interval_s)
    await poller.discover()
    early = [await hour(poller, clock) for _ in range(hours)]
    for _ in range(max(0, round(days * 24) - hours)):
        await hour(poller, clock)
    late = [await hour(poller, clock) for _ in range(hours)]
    return sum(early) / hours, sum(late) / hours


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=int, default=2, help="simulated hours measured, each end")
    parser.add_argument("--days", type=float, default=2.0, help="simulated days before the late hours")
    parser.add_argument("--step-s", type=float, default=0.06,
                        help="agent seconds a clock read moves on (1 ms of wall time at 60x)")
    args = parser.parse_args()
    early, late = asyncio.run(run(args.hours, args.days, args.step_s))
    ceiling = 1.25 * early
    print(f"hosted agent: early {early:.2f} s, late {late:.2f} s of CPU per simulated hour "
          f"(ceiling {ceiling:.2f} s){'' if late <= ceiling else ' OVER THE CEILING'}")
    sys.exit(0 if late <= ceiling else 1)


if __name__ == "__main__":
    main()
