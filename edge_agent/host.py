"""Many agents in one process (demo, load tests): N `Agent`s in one TaskGroup.

Agents share nothing but the event loop; no agent knows it has neighbours.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from edge_agent.agent import Agent
from wire.messages import OfflineReason


class Host:
    """Runs agents side by side until stop(); a rebooting agent is started again (new boot)."""

    def __init__(self, factories: Sequence) -> None:
        self.factories = list(factories)  # callables returning a fresh Agent
        self.agents: list[Agent | None] = [None] * len(self.factories)
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    async def _one(self, i: int) -> None:
        while not self._stop.is_set():
            agent = self.factories[i]()
            self.agents[i] = agent
            run = asyncio.create_task(agent.run())
            stop = asyncio.create_task(self._stop.wait())
            try:
                await asyncio.wait({run, stop}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                if not run.done():
                    agent.stop()
                reason = await run
                stop.cancel()
                await asyncio.gather(stop, return_exceptions=True)
            if reason is not OfflineReason.REBOOT:
                break

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            for i in range(len(self.factories)):
                tg.create_task(self._one(i))
