"""Shared pieces of the edge agent's integration tests: accounts, settings, a clocked simulated
DALI bus, and a watcher of a controller's topics that waits on conditions with deadlines."""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

from controller_fw_sim.dali import SimulatedDaliBus
from edge_agent.settings import AgentSettings
from luciole.broker_config import BrokerAccount, Role
from tests.mqtt_probe import Probe
from wire.codec import Decoded, decode
from wire.topics import Kind, parse_topic

WINTER_NIGHT = datetime(2024, 12, 16, 21, 0, tzinfo=UTC).timestamp()
"""A Brussels winter evening: the fallback schedule burns at full level."""


def device_account(stack, tenant: str, controller: str) -> str:
    password = secrets.token_urlsafe(12)
    stack.add_broker_account(BrokerAccount(controller, Role.DEVICE, tenant, controller), password)
    return password


def settings_for(tmp_path: Path, endpoints, tenant: str, controller: str, password: str,
                 **overrides) -> AgentSettings:
    data = dict(
        controller_id=controller, tenant=tenant, data_dir=tmp_path / controller,
        broker=dict(host=endpoints.mqtt_host, port=endpoints.mqtt_port, username=controller,
                    password=password),
        reconnect_min_s=0.2, reconnect_max_s=5.0,
        # no ingest runs in most agent tests: no receipt comes, and a resend would be a
        # duplicate at the broker; tests of confirmation set their own timeouts
        confirm_timeout_s=600.0, confirm_timeout_max_s=600.0,
    )
    data.update(overrides)
    return AgentSettings(**data)


class ClockedSink:
    """A simulated bus whose time follows the agent's clock; `mute` makes every gear silent
    (a DALI no-answer), as a cut bus or dead interface would."""

    def __init__(self, bus: SimulatedDaliBus, clock) -> None:
        self.bus = bus
        self.clock = clock
        self.mute = False
        self._t0 = clock.monotonic()

    def send(self, frame):
        self.bus.advance_to(self.clock.monotonic() - self._t0)
        reply = self.bus.send(frame)
        return None if self.mute else reply

    def advance(self, seconds: float) -> None:
        pass  # time is the agent clock's


async def wait_until(condition, timeout_s: float, what: str, interval_s: float = 0.02):
    """Poll `condition` until it is truthy (returned) or the deadline passes (TimeoutError)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(interval_s)


def sync_wait_until(condition, timeout_s: float, what: str, interval_s: float = 0.02):
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(interval_s)


class Watcher(Probe):
    """A service-account probe that files a controller's messages by kind, in arrival order."""

    def collect(self) -> None:
        while not self.received.empty():
            message = self.received.get_nowait()
            self.by_kind.setdefault(parse_topic(message.topic).kind, []).append(message)

    def of(self, kind: Kind) -> list:
        if not hasattr(self, "by_kind"):
            self.by_kind = {}
        self.collect()
        return self.by_kind.get(kind, [])

    def records(self):
        """Decoded luminaire telemetry as (boot_id, seq, record) in arrival order."""
        out = []
        for message in self.of(Kind.TELEMETRY):
            decoded = decode(message.payload)
            if decoded.record_type.name != "LUMINAIRE":
                continue
            for k, record in enumerate(decoded.records):
                out.append((decoded.boot_id, decoded.first_seq + k, record))
        return out


def outbox_telemetry(db: Path) -> list[Decoded]:
    """The telemetry messages the agent's outbox file holds (none before it exists)."""
    if not db.exists():
        return []
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT payload FROM outbox WHERE topic LIKE '%/telemetry'").fetchall()
    except sqlite3.OperationalError:  # the agent has not created its tables yet
        rows = []
    finally:
        conn.close()
    return [decode(payload) for (payload,) in rows]
