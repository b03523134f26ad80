"""The agent over TLS, against a Stack of its own with the TLS listener: trusting the stack's CA
it connects and its telemetry arrives; trusting another CA the link fails with a clear logged
error while the agent keeps polling and buffering, and never crashes."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from agent_harness import WINTER_NIGHT, ClockedSink, Watcher, device_account, settings_for, wait_until

from controller_fw_sim.dali import SimulatedDaliBus
from edge_agent.agent import Agent, Hardware
from edge_agent.clock import ScaledClock
from hardware.dali import InProcessBus
from luciole.tls import ensure_server_certificate
from tests.conftest import throwaway_stack
from wire.messages import State, loads
from wire.topics import Kind

pytestmark = pytest.mark.integration
TENANT = "anderlecht"


@pytest.fixture(scope="module")
def tls_stack(tmp_path_factory: pytest.TempPathFactory):
    stack = throwaway_stack(tmp_path_factory.mktemp("tls-stack"), mqtt_tls_port=0,
                            pg_shared_buffers="32MB")
    endpoints = stack.up()
    try:
        yield stack, endpoints
    finally:
        stack.down()


def _tls_settings(tmp_path: Path, stack, endpoints, controller: str, ca: Path):
    password = device_account(stack, TENANT, controller)
    return settings_for(tmp_path, endpoints, TENANT, controller, password,
                        broker=dict(host=endpoints.mqtt_host, port=endpoints.mqtt_tls_port,
                                    username=controller, password=password, tls=dict(ca=ca)),
                        reconnect_min_s=0.2, reconnect_max_s=1.0,
                        config=dict(telemetry_interval_s=5, dali_poll_interval_s=1))


def test_agent_publishes_telemetry_over_tls_trusting_the_stack_ca(tls_stack, tmp_path):
    stack, e = tls_stack
    controller = "ctl-tls-1"
    settings = _tls_settings(tmp_path, stack, e, controller, Path(e.mqtt_ca_file))
    assert settings.broker.tls is not None and settings.broker.port != e.mqtt_port
    clock = ScaledClock(10.0, WINTER_NIGHT)
    sink = ClockedSink(SimulatedDaliBus.with_gear(2, seed=5), clock)

    async def scenario(watcher: Watcher) -> None:
        async with Agent(settings, clock=clock, hardware=Hardware([InProcessBus(sink)], [])) as agent:
            await wait_until(lambda: agent.link.connected.is_set(), 15, "a TLS connection")
            await wait_until(lambda: {int(r["luminaire"]) for _, _, r in watcher.records()} == {0, 1},
                             20, "telemetry of both luminaires over TLS")
            assert agent.link.connections == 1

    # the subscriber listens on the plain listener: the same broker, another door
    with Watcher(e.mqtt_host, e.mqtt_port, e.mqtt_username, e.mqtt_password) as watcher:
        watcher.subscribe(f"luciole/v1/{TENANT}/{controller}/#")
        asyncio.run(asyncio.wait_for(scenario(watcher), 60))
        states = [loads(State, m.payload) for m in watcher.of(Kind.STATE)]
        assert states[0].online and states[-1].reason == "shutdown"


def test_a_wrong_ca_fails_the_link_clearly_and_the_agent_keeps_buffering(tls_stack, tmp_path, caplog):
    stack, e = tls_stack
    controller = "ctl-tls-2"
    other_ca = ensure_server_certificate(tmp_path / "other-pki", ["127.0.0.1"]).cafile
    settings = _tls_settings(tmp_path, stack, e, controller, other_ca)
    clock = ScaledClock(10.0, WINTER_NIGHT)
    sink = ClockedSink(SimulatedDaliBus.with_gear(2, seed=6), clock)

    async def scenario() -> None:
        async with Agent(settings, clock=clock, hardware=Hardware([InProcessBus(sink)], [])) as agent:
            await wait_until(lambda: "certificate" in caplog.text and "broker.tls.ca" in caplog.text,
                             15, "a logged certificate verification error")
            await wait_until(lambda: agent.outbox.stats().messages >= 4, 20,
                             "telemetry buffered while the link fails")
            await wait_until(lambda: agent.link.failures >= 2, 15, "further connection attempts")
            assert not agent.link.connected.is_set() and agent.link.connections == 0
            assert agent._task is not None and not agent._task.done(), "the agent still runs"

    with caplog.at_level(logging.INFO, logger="edge_agent"):
        asyncio.run(asyncio.wait_for(scenario(), 60))
    errors = [r for r in caplog.records if r.name == "edge_agent.link" and r.levelno >= logging.ERROR]
    assert errors, "a TLS trust failure is logged as an error, not only as a retry"
    assert "ctl-tls-2" in errors[0].getMessage()
    assert len(errors) == 1, "the same failure is not logged again on every retry"
