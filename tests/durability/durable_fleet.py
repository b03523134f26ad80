"""Controllers for the crash tests: complete edge agents (simulated DALI gear) and controllers
reduced to what holds their readings, the agent's own outbox and link with its end-to-end
confirmation, fed synthetic readings in place of DALI polls. All run in one asyncio loop on a
thread of the test process; the test thread kills and restarts the broker and ingest."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from controller_fw_sim.dali import SimulatedDaliBus
from edge_agent.agent import Agent, Hardware
from edge_agent.clock import RealClock, ScaledClock
from edge_agent.link import Link
from edge_agent.store_forward import Outbox
from edge_agent.telemetry import SeqCounter
from hardware.dali import InProcessBus
from ingest.settings import IngestSettings
from luciole.compose import ingest_settings
from luciole.migrate import migrate
from luciole.stack import Stack
from tests.edge_agent.agent_harness import WINTER_NIGHT, ClockedSink, device_account, settings_for
from tests.ingest.ingest_helpers import EAN, T0_US, luminaire_records
from wire.codec import encode_luminaire
from wire.messages import OfflineReason, State, dumps
from wire.topics import Kind, topic

TENANT = "durable"

# a broker that crashes loses the receipts in flight: resend soon, retry fast
FAST = dict(confirm_timeout_s=2.0, confirm_timeout_max_s=8.0, reconnect_min_s=0.1, reconnect_max_s=1.0,
            drain_rate_per_s=5000.0, drain_burst=500, inflight=10)


def register(dsn: str, names: list[str]) -> None:
    """Migrate the stack's database and register the controllers (as the owner)."""
    migrate(dsn)
    with psycopg.connect(dsn) as conn:
        conn.execute("INSERT INTO tenants (id, name) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                     (TENANT, TENANT))
        conn.execute("INSERT INTO supply_points (ean, tenant_id, name) VALUES (%s, %s, 'sp')"
                     " ON CONFLICT DO NOTHING", (EAN, TENANT))
        conn.execute("INSERT INTO cabinets (id, tenant_id, supply_point_ean) VALUES (%s, %s, %s)"
                     " ON CONFLICT DO NOTHING", (f"{TENANT}-cab", TENANT, EAN))
        with conn.cursor().copy("COPY controllers (id, tenant_id, cabinet_id, status) FROM STDIN") as cp:
            for name in names:
                cp.write_row((name, TENANT, f"{TENANT}-cab", "active"))


def ingest_env(stack: Stack, worker: int = 1, **extra: str) -> dict[str, str]:
    """`python -m ingest` as `luciole ingest --worker N` would run it: its own broker account
    and database role, with short batches and retries."""
    s: IngestSettings = ingest_settings(stack, worker)
    env = dict(os.environ)
    assert s.mqtt_password is not None and s.dsn is not None
    env.update({
        "LUCIOLE_INGEST_MQTT_HOST": str(s.mqtt_host), "LUCIOLE_INGEST_MQTT_PORT": str(s.mqtt_port),
        "LUCIOLE_INGEST_MQTT_USERNAME": str(s.mqtt_username),
        "LUCIOLE_INGEST_MQTT_PASSWORD": s.mqtt_password.get_secret_value(),
        "LUCIOLE_INGEST_DSN": s.dsn.get_secret_value(), "LUCIOLE_INGEST_CLIENT_ID": s.client_id,
        "LUCIOLE_INGEST_METRICS_PORT": "0", "LUCIOLE_INGEST_BATCH_MAX_WAIT_S": "0.05",
        "LUCIOLE_INGEST_PROGRESS_EVERY_S": "1", "LUCIOLE_INGEST_RETRY_MAX_S": "1",
        "LUCIOLE_INGEST_ROLLUP_INTERVAL_S": "0.5", "LUCIOLE_INGEST_IDLE_RECONNECT_S": "0",
    })
    env.update(extra)
    return env


class LinkController:
    """A controller's outbox and link (the agent's own classes) with synthetic readings."""

    def __init__(self, root: Path, stack: Stack, endpoints: object, name: str, luminaires: int,
                 boot: int) -> None:
        password = device_account(stack, TENANT, name)
        self.settings = settings_for(root, endpoints, TENANT, name, password, **FAST)
        self.name, self.luminaires, self.boot = name, luminaires, boot
        self.outbox = Outbox(self.settings.data_dir / "outbox.sqlite", max_bytes=1 << 30)
        self.seq, self.messages = SeqCounter(), SeqCounter()
        self.link = Link(self.settings, self.outbox, RealClock(), self._state, lambda t, p: None)
        self.topic = topic(TENANT, name, Kind.TELEMETRY)
        self.rounds = 0

    def _state(self, online: bool, reason: str | None) -> bytes:
        return dumps(State(controller=self.name, boot_id=self.boot, seq=self.messages.take(),
                           online=online, firmware="durability-test", time=datetime.now(UTC),
                           reason=None if online else OfflineReason(reason)))

    def take(self) -> None:
        records = luminaire_records(self.luminaires, T0_US + self.rounds * 60_000_000, 100.0 + self.rounds)
        self.rounds += 1
        self.outbox.put(self.topic, encode_luminaire(self.boot, self.seq.take(self.luminaires), records))
        self.link.wake()

    @property
    def taken(self) -> int:
        return self.seq.next

    def held(self) -> int:
        return self.outbox.stats().messages


@dataclass
class DurableFleet:
    """Link controllers and complete agents in one event loop on a thread; `produce_until(n)`
    takes rounds of readings until n were taken in all, then they only drain."""

    controllers: list[LinkController]
    agents: list[Agent] = field(default_factory=list)
    round_s: float = 0.2

    def __post_init__(self) -> None:
        self._target = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)
        self.error: BaseException | None = None
        self.started = threading.Event()

    @property
    def taken(self) -> int:
        return (sum(c.taken for c in self.controllers)
                + sum(a.seq["luminaire"].next for a in self.agents))

    def held(self) -> int:
        """Messages still in the outboxes (not yet confirmed)."""
        return (sum(c.held() for c in self.controllers)
                + sum(a.outbox.stats().messages for a in self.agents))

    def start(self, target: int) -> None:
        self._target = target
        self._thread.start()
        if not self.started.wait(60):
            raise TimeoutError("the controllers did not start in 60 s")

    async def _main(self) -> None:
        try:
            async with contextlib.AsyncExitStack() as stack, asyncio.TaskGroup() as tg:
                links = [tg.create_task(c.link.run()) for c in self.controllers]
                for agent in self.agents:
                    await stack.enter_async_context(agent)
                deadline = time.monotonic() + 30
                while not all(p.latest for a in self.agents for p in a.dali):
                    if time.monotonic() > deadline:
                        raise TimeoutError("an agent never polled its gear")
                    await asyncio.sleep(0.05)
                self.started.set()
                while not self._stop.is_set():
                    if self.taken < self._target:
                        for c in self.controllers:
                            c.take()
                        for agent in self.agents:
                            agent.take_telemetry()
                    await asyncio.sleep(self.round_s)
                for c in self.controllers:
                    await c.link.goodbye("shutdown")
                for task in links:
                    task.cancel()
        except BaseException as exc:  # reported by the test thread
            self.error = exc
            self.started.set()
            raise
        finally:
            for c in self.controllers:
                c.outbox.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(60)


def make_agent(root: Path, stack: Stack, endpoints: object, name: str, gear: int, seed: int) -> Agent:
    """A complete agent on a simulated DALI bus; its telemetry is taken by the fleet's rounds."""
    password = device_account(stack, TENANT, name)
    clock = ScaledClock(10.0, WINTER_NIGHT)
    settings = settings_for(root, endpoints, TENANT, name, password, **FAST,
                            config=dict(telemetry_interval_s=3600, dali_poll_interval_s=5),
                            discovery_wait_s=2.0)
    sink = ClockedSink(SimulatedDaliBus.with_gear(gear, seed=seed), clock)
    return Agent(settings, clock=clock, hardware=Hardware([InProcessBus(sink)], []))


def stored(dsn: str, names: list[str]) -> tuple[int, int]:
    """(luminaire readings stored, distinct (controller, boot, seq)) of these controllers."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT count(*), count(DISTINCT (t.controller_key, t.boot_id, t.seq))"
            " FROM luminaire_telemetry t JOIN controllers c ON c.key = t.controller_key"
            " WHERE c.id = ANY(%s)", (names,)).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


__all__ = ["DurableFleet", "LinkController", "make_agent", "register", "ingest_env", "stored"]
