"""Command round trip on the real broker with simulated DALI gear: command -> gear level ->
ack -> telemetry; an expired command is refused with a reason; a duplicate is not re-run."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from agent_harness import WINTER_NIGHT, ClockedSink, Watcher, device_account, settings_for, wait_until

from controller_fw_sim.dali import SimulatedDaliBus
from edge_agent.agent import Agent, Hardware
from edge_agent.clock import ScaledClock, utc_now
from hardware.dali import InProcessBus
from wire.messages import Ack, AckStatus, LuminaireTarget, SetLevel, State, dumps, loads
from wire.topics import Kind, topic

pytestmark = pytest.mark.integration
TENANT = "uccle"


def _acks(watcher: Watcher, command_id: str) -> list[AckStatus]:
    return [a.status for a in (loads(Ack, m.payload) for m in watcher.of(Kind.ACK))
            if a.command_id == command_id]


def test_set_level_round_trip_then_expired_refused_and_duplicate_not_rerun(stack, tmp_path):
    controller = "ctl-cmd-1"
    password = device_account(stack.stack, TENANT, controller)
    e = stack.endpoints
    clock = ScaledClock(10.0, WINTER_NIGHT)
    sim = SimulatedDaliBus.with_gear(4, seed=3)
    sink = ClockedSink(sim, clock)
    settings = settings_for(tmp_path, e, TENANT, controller, password,
                            config=dict(telemetry_interval_s=5, dali_poll_interval_s=1))

    async def scenario(watcher: Watcher) -> None:
        async with Agent(settings, clock=clock, hardware=Hardware([InProcessBus(sink)], [])) as agent:
            await wait_until(lambda: agent.link.connected.is_set(), 10, "agent to connect")
            await wait_until(lambda: agent.dali[0].discovered.is_set(), 10, "gear discovery")
            # night: the fallback schedule drives everything to full
            await wait_until(lambda: sim.gear[2].actual_level == 254, 10, "scheduled full level")
            now = utc_now(clock)
            command = SetLevel(target=LuminaireTarget(luminaire=2), level=100, duration_s=600,
                               issued_at=now, expires_at=now + timedelta(minutes=5))
            watcher.publish(topic(TENANT, controller, Kind.CMD), dumps(command))
            await wait_until(lambda: sim.gear[2].actual_level == 100, 10, "gear 2 at level 100")
            assert sim.gear[1].actual_level == 254, "other luminaires stay on the schedule"
            await wait_until(lambda: _acks(watcher, command.id) == [AckStatus.ACCEPTED, AckStatus.DONE],
                             10, "accepted then done acks")
            await wait_until(lambda: any(r["luminaire"] == 2 and r["level"] == 100
                                         for _, _, r in watcher.records()), 20,
                             "telemetry showing level 100")

            # the same command again (a redelivery): answered as before, not executed again
            sim.gear[2]._set_arc_now(50)  # noqa: SLF001 - a change the duplicate must not undo
            watcher.publish(topic(TENANT, controller, Kind.CMD), dumps(command))
            await wait_until(lambda: len(_acks(watcher, command.id)) == 3, 10, "duplicate's ack")
            assert _acks(watcher, command.id)[2] == AckStatus.DONE

            past = utc_now(clock) - timedelta(hours=2)
            stale = SetLevel(target="all", level=0, issued_at=past, expires_at=past + timedelta(minutes=1))
            watcher.publish(topic(TENANT, controller, Kind.CMD), dumps(stale))
            await wait_until(lambda: _acks(watcher, stale.id), 10, "refusal of the expired command")
            refusal = next(a for a in (loads(Ack, m.payload) for m in watcher.of(Kind.ACK))
                           if a.command_id == stale.id)
            assert refusal.status is AckStatus.REFUSED and "expired" in refusal.reason
            assert sim.gear[0].actual_level == 254, "an expired command changes nothing"

    with Watcher(e.mqtt_host, e.mqtt_port, e.mqtt_username, e.mqtt_password) as watcher:
        watcher.subscribe(f"luciole/v1/{TENANT}/{controller}/#")
        asyncio.run(asyncio.wait_for(scenario(watcher), 90))
        states = [loads(State, m.payload) for m in watcher.of(Kind.STATE)]
        assert states[0].online and not states[-1].online and states[-1].reason == "shutdown"
