"""Real edge agents for a part of a simulated region, several in one process, on simulated gear.

Each hosted controller is an `edge_agent.agent.Agent` (the product's code: schedule, commands,
outbox confirmed by ingest's receipts) with its own broker account, driving simulated DALI-2/D4i
gear in process (`controller_fw_sim.dali.SimulatedDaliBus`), all on one accelerated clock that
the fleet simulator shares (same start, same speed), so commands and schedules pushed through
the API change these luminaires' levels and their telemetry shows it. `edge_agent.host.Host`
runs them side by side; the rest of the region stays simulated in bulk (`luciole sim fleet
--hosted FILE` leaves these controllers out).
"""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import secrets
import signal
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from controller_fw_sim.dali import SimulatedDaliBus
from controller_fw_sim.fleet import luminaire_params
from controller_fw_sim.fleet_inventory import Inventory
from controller_fw_sim.hosted_energy import write_snapshot
from edge_agent.agent import Agent, Hardware
from edge_agent.clock import Clock, ScaledClock
from edge_agent.host import Host
from edge_agent.settings import AgentSettings
from hardware.dali import InProcessBus
from wire.messages import ControllerConfig

log = logging.getLogger(__name__)

# Polls at the telemetry interval: at 60x, the default 10 s DALI poll would be 6 polls a second
# per agent, and a few dozen agents would take a core.
HOSTED_CONFIG = ControllerConfig(telemetry_interval_s=60, dali_poll_interval_s=30,
                                 meter_poll_interval_s=60, sensor_poll_interval_s=60)


class ClockedGear:
    """A simulated DALI bus whose time follows the agent clock (physics and D4i energy
    counters advance with it), as a frame sink for `hardware.dali.InProcessBus`."""

    def __init__(self, bus: SimulatedDaliBus, clock: Clock) -> None:
        self.bus = bus
        self.clock = clock
        self._t0 = clock.monotonic()

    def send(self, frame):  # noqa: ANN001, ANN201 - python-dali frames, as the sink protocol
        self.catch_up()
        return self.bus.send(frame)

    def catch_up(self) -> None:
        self.bus.advance_to(self.clock.monotonic() - self._t0)

    def advance(self, seconds: float) -> None:
        pass  # time is the agent clock's

    def levels(self) -> list[int]:
        self.catch_up()
        return [gear.actual_level for gear in self.bus.gear]

    def energy_wh(self) -> float:
        """The gear's own cumulative active energy counters, summed (the ground truth)."""
        return float(self.energy_wh_each().sum())

    def energy_wh_each(self) -> np.ndarray:
        """Each luminaire's cumulative active energy counter, Wh."""
        self.catch_up()
        return np.array(self.bus.state.energy_wh, dtype=np.float64)


@dataclass(frozen=True)
class HostedController:
    tenant: str
    controller: str
    lat: float
    lon: float
    index: int  # in the inventory


def hosted_of(inventory: Inventory, controllers: Sequence[str]) -> list[HostedController]:
    position = {c: i for i, c in enumerate(inventory.controller_ids)}
    tenants = inventory.controller_tenant_ids()
    out = []
    for c in controllers:
        i = position[c]
        out.append(HostedController(tenants[i], c, float(inventory.controller_lat[i]),
                                    float(inventory.controller_lon[i]), i))
    return out


def pick_hosted(inventory: Inventory, n: int, avoid: Iterable[str] = ()) -> list[str]:
    """Up to n controllers for hosted agents, on cabinets whose supply stays on by day only (a
    hosted agent is not switched off at dawn: on a switched cabinet it would report by day), the
    municipality with most such controllers first, never one in `avoid` (the fault scenario's,
    played by the fleet)."""
    skip = set(avoid)
    powered = ~inventory.switched[inventory.controller_cabinet]
    tenant = inventory.controller_tenant
    candidates = [i for i in range(inventory.n_controllers)
                  if powered[i] and inventory.controller_ids[i] not in skip]
    count: dict[int, int] = {}
    for i in candidates:
        count[int(tenant[i])] = count.get(int(tenant[i]), 0) + 1
    order = sorted(candidates, key=lambda i: (-count[int(tenant[i])], int(tenant[i]), i))
    return [inventory.controller_ids[i] for i in order][:max(0, n)]


def read_or_make_password(data_dir: Path, controller: str) -> tuple[str, bool]:
    """The controller's broker password as its agent keeps it (data dir, mode 0600); made once."""
    path = data_dir / controller / "broker.secret"
    if path.exists():
        return path.read_text().strip(), False
    path.parent.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(18)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(password)
    return password, True


def agent_settings(hosted: HostedController, data_dir: Path, host: str, port: int,
                   password: str, **overrides: object) -> AgentSettings:
    data: dict[str, object] = dict(
        controller_id=hosted.controller, tenant=hosted.tenant, data_dir=data_dir / hosted.controller,
        broker=dict(host=host, port=port, username=hosted.controller, password=password),
        position=dict(lat=hosted.lat, lon=hosted.lon), config=HOSTED_CONFIG,
        reconnect_min_s=0.2, reconnect_max_s=5.0, discovery_wait_s=5.0,
        # levels recomputed every 10 s of agent time (commands and schedules wake it at once)
        control_tick_s=10.0,
        # receipts come through a loaded machine: a resend is harmless (the ledger drops it)
        # but doubles the traffic
        confirm_timeout_s=30.0, confirm_timeout_max_s=120.0,
    )
    data.update(overrides)
    return AgentSettings.model_validate(data)


class HostedAgents:
    """Agents and their simulated gear, built once; `run()` until `stop()`."""

    def __init__(self, hosted: Sequence[HostedController], inventory: Inventory, clock: Clock,
                 settings_of: Callable[[HostedController], AgentSettings], seed: int = 0) -> None:
        self.hosted = list(hosted)
        self.clock = clock
        m = inventory.luminaires_per_controller
        # the gear of each controller's luminaires, with their lantern models' physics (rated
        # power...), as the fleet would simulate them and as the inventory registers them
        self.gear = {h.controller: ClockedGear(SimulatedDaliBus.with_gear(
            m, seed=seed * 100_003 + h.index,
            params=luminaire_params(inventory, np.arange(h.index * m, (h.index + 1) * m))), clock)
            for h in self.hosted}
        self.settings = {h.controller: settings_of(h) for h in self.hosted}
        self.host = Host([self._factory(h.controller) for h in self.hosted])

    def _factory(self, controller: str) -> Callable[[], Agent]:
        def make() -> Agent:
            gear = self.gear[controller]
            return Agent(self.settings[controller], clock=self.clock,
                         hardware=Hardware([InProcessBus(gear)], []))
        return make

    def agent(self, controller: str) -> Agent | None:
        i = next(k for k, h in enumerate(self.hosted) if h.controller == controller)
        return self.host.agents[i]

    def energy_snapshot(self) -> dict[str, list[float]]:
        """Each hosted controller's luminaires' energy counters (for the fleet's cabinet meters)."""
        return {c: gear.energy_wh_each().tolist() for c, gear in self.gear.items()}

    async def run(self) -> None:
        await self.host.run()

    def stop(self) -> None:
        self.host.stop()


def scaled_clock(start_epoch_s: float, speed: float, wall_origin_s: float, now_s: float) -> ScaledClock:
    """The fleet's clock (sim time = start + (wall - wall_origin) * speed) as an agent clock."""
    return ScaledClock(speed, start_epoch_s + (now_s - wall_origin_s) * speed)


def run_hosted(agents: HostedAgents, progress_every_s: float = 10.0,
               energy_file: Path | None = None, energy_every_s: float = 1.0) -> None:
    """Run until SIGINT or SIGTERM, logging how many agents are connected; with `energy_file`,
    write the gear's energy counters there every `energy_every_s` wall seconds (the fleet's
    cabinet meters count the hosted luminaires from it)."""

    began = time.monotonic()

    async def write_energy(run: asyncio.Task[None]) -> None:
        assert energy_file is not None
        while not run.done():
            write_snapshot(energy_file, agents.clock.time(), agents.energy_snapshot())
            await asyncio.wait({run}, timeout=energy_every_s)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, agents.stop)
        async with asyncio.TaskGroup() as tg:
            run = tg.create_task(agents.run())
            if energy_file is not None:
                tg.create_task(write_energy(run))
            while not run.done():
                await asyncio.wait({run}, timeout=progress_every_s)
                if run.done():  # the agents have closed their outboxes
                    break
                live = [a for a in agents.host.agents if a is not None]
                usage = resource.getrusage(resource.RUSAGE_SELF)
                log.info("hosted agents=%d connected=%d outbox=%d cpu_s=%.1f wall_s=%.1f",
                         len(agents.hosted), sum(a.link.connected.is_set() for a in live),
                         sum(a.outbox.stats().messages for a in live),
                         usage.ru_utime + usage.ru_stime, time.monotonic() - began)

    asyncio.run(main())
