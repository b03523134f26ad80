"""Commands on a demo's simulated clock, against the real broker, ingest and database: a real edge
agent whose clock runs 60x and some 44 hours ahead of the wall clock (the demo after an hour)
accepts and does a command issued through the API handed that clock; a command that expires on
the simulated clock before its controller connects is marked expired and dropped by the broker."""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.roles import Role
from controller_fw_sim.dali import SimulatedDaliBus
from edge_agent.agent import Agent, Hardware
from edge_agent.clock import ScaledClock
from edge_agent.host import Host
from edge_agent.settings import AgentSettings
from hardware.dali import InProcessBus
from luciole.broker_config import BrokerAccount
from luciole.broker_config import Role as BrokerRole
from luciole.hosted_agents import ClockedGear
from luciole.stack import wait_for
from tests.api.api_world import World
from tests.api.conftest import api_settings
from tests.conftest import RunningStack
from tests.devices import Device
from tests.ingest.ingest_helpers import ThreadWorker, unique_group, worker_settings
from wire.messages import ControllerConfig
from wire.sim_clock import SimClock

pytestmark = pytest.mark.integration

SPEED = 60.0
AHEAD = timedelta(hours=44)  # the demo's clock an hour in: 60 h past 75 min before last sunset
AGENT, ASLEEP = "ctl-clock-agent", "ctl-clock-asleep"
PASSWORD = "a simulated clock's device password"


def _register(db_dsn: str, tenant: str, cabinet: str) -> dict[str, list[int]]:
    """Two controllers of two luminaires each in the tenant: {controller: luminaire ids}."""
    out: dict[str, list[int]] = {}
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        for ctl in (AGENT, ASLEEP):
            conn.execute("INSERT INTO controllers (id, tenant_id, cabinet_id, lat, lon, status)"
                         " VALUES (%s, %s, %s, 50.8, 4.3, 'active')", (ctl, tenant, cabinet))
            out[ctl] = [int(conn.execute(
                "INSERT INTO luminaires (tenant_id, controller_id, idx, model, rated_power_w)"
                " VALUES (%s, %s, %s, 'LX', 40) RETURNING id", (tenant, ctl, idx)).fetchone()[0])
                for idx in range(2)]
    return out


def test_commands_run_and_expire_on_the_simulated_clock(stack: RunningStack, db_dsn: str,
                                                        world: World, tmp_path: Path) -> None:
    a = world.a
    luminaires = _register(db_dsn, a.tenant, a.cabinet)
    wall0 = time.time()
    sim = SimClock(origin=datetime.fromtimestamp(wall0, UTC) + AHEAD, wall_s=wall0, speed=SPEED)
    ep = stack.endpoints
    stack.stack.add_broker_account(BrokerAccount(AGENT, BrokerRole.DEVICE, a.tenant, AGENT), PASSWORD)
    # the agent's clock is the simulated one (as the demo's hosted agents')
    clock = ScaledClock(SPEED, sim.now(time.time()).timestamp())
    gear = ClockedGear(SimulatedDaliBus.with_gear(2, seed=5), clock)
    settings = AgentSettings.model_validate(dict(
        controller_id=AGENT, tenant=a.tenant, data_dir=tmp_path / AGENT,
        broker=dict(host=ep.mqtt_host, port=ep.mqtt_port, username=AGENT, password=PASSWORD),
        position=dict(lat=50.8, lon=4.3), reconnect_min_s=0.2, reconnect_max_s=2.0,
        config=ControllerConfig(telemetry_interval_s=60, dali_poll_interval_s=30),
        control_tick_s=10.0, confirm_timeout_s=30.0, confirm_timeout_max_s=60.0))
    host = Host([lambda: Agent(settings, clock=clock, hardware=Hardware([InProcessBus(gear)], []))])
    loop = asyncio.new_event_loop()
    agents = threading.Thread(target=loop.run_until_complete, args=(host.run(),), daemon=True)
    worker = ThreadWorker(worker_settings(unique_group(), "clock-ingest", sim_clock=sim), ep, db_dsn)
    asleep = Device(stack, a.tenant, ASLEEP)  # a controller whose supply is off for now
    asleep.connect(first=True)
    asleep.disconnect()
    agents.start()
    try:
        with TestClient(create_app(api_settings(stack, db_dsn, tmp_path / "run", sim_clock=sim)),
                        raise_server_exceptions=False) as client:
            wait_for(lambda: client.get("/healthz").json()["broker"], 15, "the API's broker link")
            wait_for(lambda: host.agents[0] is not None and host.agents[0].link.connected.is_set(),
                     15, "the agent connected")
            headers = world.headers(a, Role.OPERATOR)
            issued = client.post("/api/v1/commands", headers=headers, json={
                "target": {"luminaire": luminaires[AGENT][1]},
                "action": {"type": "set_level", "level": 120, "duration_s": 3600},
                "expires_in_s": 3600})
            assert issued.status_code == 202, issued.text
            body = issued.json()
            # issued on the simulated clock, some 44 hours ahead of the wall clock
            issued_at = datetime.fromisoformat(body["issued_at"])
            assert abs((issued_at - sim.now(time.time())).total_seconds()) < 120
            assert datetime.fromisoformat(body["expires_at"]) - issued_at == timedelta(hours=1)
            path = f"/api/v1/commands/{body['id']}"

            def counts(p: str) -> dict[str, int]:
                return dict(client.get(p, headers=headers).json()["counts"])

            wait_for(lambda: counts(path)["done"] == 1, 30, "the command done by the agent",
                     interval_s=0.3)
            assert gear.levels()[1] == 120

            # ten simulated minutes (ten wall seconds) to live, a controller asleep: it expires
            # on the simulated clock, the broker drops it after a wall second
            late = client.post("/api/v1/commands", headers=headers, json={
                "target": {"luminaire": luminaires[ASLEEP][0]}, "action": {"type": "identify"},
                "expires_in_s": 60})
            sent = time.monotonic()
            assert late.status_code == 202 and late.json()["sent"] == 1, late.text
            expired_path = f"/api/v1/commands/{late.json()['id']}"
            wait_for(lambda: counts(expired_path)["expired"] == 1, 15,
                     "the command expired on the simulated clock", interval_s=0.3)
            # Mosquitto counts a message's expiry in whole seconds: gone within 2 s of a 1 s one
            # (with the wall clock's expiry it would wait 59 s for this controller)
            time.sleep(max(0.0, sent + 2.5 - time.monotonic()))
            asleep.connect()
            try:
                with pytest.raises(queue.Empty):
                    asleep.expect(timeout_s=1.5)
            finally:
                asleep.disconnect()
    finally:
        loop.call_soon_threadsafe(host.stop)
        agents.join(30)
        worker.stop()
