"""The agent runs a calendar sent over the real broker, across the night the clocks go forward;
a malicious calendar is refused with a reason and the last good calendar keeps running, also
after a restart."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime, time, timedelta

import pytest
from agent_harness import ClockedSink, Watcher, device_account, settings_for, wait_until

from controller_fw_sim.dali import SimulatedDaliBus
from edge_agent.agent import Agent, Hardware
from edge_agent.clock import ScaledClock, utc_now
from hardware.dali import InProcessBus
from wire.messages import (
    Ack,
    AckStatus,
    Anchor,
    Calendar,
    CalendarCommand,
    Program,
    ScheduleStep,
    dumps,
    loads,
)
from wire.topics import Kind, topic

pytestmark = pytest.mark.integration
TENANT = "ixelles"
# 2026-03-29 01:20 UTC is 03:20 CEST, twenty minutes after the clocks went forward
SPRING_NIGHT = datetime(2026, 3, 29, 1, 20, tzinfo=UTC).timestamp()

PROGRAM = Program(steps=(
    ScheduleStep(anchor=Anchor.SUNSET, level=254),
    ScheduleStep(anchor=Anchor.CLOCK, at=time(22, 0), level=200),
    ScheduleStep(anchor=Anchor.CLOCK, at=time(2, 30), level=150),  # does not exist: 03:30 CEST
    ScheduleStep(anchor=Anchor.SUNRISE, level=0),
))
CALENDAR = Calendar(programs={"night": PROGRAM}, week=("night",) * 7,
                    valid_from=date(2026, 3, 1), valid_until=date(2026, 4, 30))


def _ack(watcher: Watcher, command_id: str) -> Ack | None:
    acks = [a for a in (loads(Ack, m.payload) for m in watcher.of(Kind.ACK))
            if a.command_id == command_id]
    return acks[-1] if acks else None


def test_agent_runs_a_calendar_over_the_spring_dst_night_and_keeps_it_against_a_bad_one(
        stack, tmp_path):
    controller = "ctl-cal-1"
    password = device_account(stack.stack, TENANT, controller)
    e = stack.endpoints
    clock = ScaledClock(60.0, SPRING_NIGHT)
    sim = SimulatedDaliBus.with_gear(2, seed=5)
    sink = ClockedSink(sim, clock)
    settings = settings_for(tmp_path, e, TENANT, controller, password,
                            config=dict(telemetry_interval_s=60, dali_poll_interval_s=5))
    cmd_topic = topic(TENANT, controller, Kind.CMD)

    async def scenario(watcher: Watcher) -> None:
        async with Agent(settings, clock=clock, hardware=Hardware([InProcessBus(sink)], [])) as agent:
            await wait_until(lambda: agent.link.connected.is_set(), 10, "agent to connect")
            await wait_until(lambda: agent.dali[0].discovered.is_set(), 10, "gear discovery")
            now = utc_now(clock)
            command = CalendarCommand(calendar=CALENDAR, issued_at=now,
                                      expires_at=now + timedelta(hours=6))
            watcher.publish(cmd_topic, dumps(command))
            await wait_until(lambda: sim.gear[0].actual_level == 200, 10, "the 22:00 level")
            assert utc_now(clock) < datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
            # 03:30 CEST: the step written for 02:30, an hour that did not exist tonight
            await wait_until(lambda: sim.gear[0].actual_level == 150, 30, "the 02:30 step")
            assert utc_now(clock) >= datetime(2026, 3, 29, 1, 30, tzinfo=UTC)

            bad = json.loads(dumps(CalendarCommand(calendar=CALENDAR, issued_at=utc_now(clock),
                                                   expires_at=utc_now(clock) + timedelta(hours=1))))
            bad["calendar"]["programs"]["night"]["steps"][2]["level"] = 762  # "300 %"
            bad["calendar"]["timezone"] = "Europe/Atlantis"
            watcher.publish(cmd_topic, json.dumps(bad).encode())
            await wait_until(lambda: _ack(watcher, bad["id"]) is not None, 10, "the refusal")
            refusal = _ack(watcher, bad["id"])
            assert refusal is not None and refusal.status is AckStatus.REFUSED
            assert refusal.reason is not None and "Europe/Atlantis" in refusal.reason
            assert agent.schedule == CALENDAR
            assert sim.gear[0].actual_level == 150 and sim.gear[1].actual_level == 150

        # a restart (the morning power cut) comes back with the calendar, not the fallback
        async with Agent(settings, clock=clock, hardware=Hardware([InProcessBus(sink)], [])) as agent:
            assert agent.schedule == CALENDAR

    with Watcher(e.mqtt_host, e.mqtt_port, e.mqtt_username, e.mqtt_password) as watcher:
        watcher.subscribe(f"luciole/v1/{TENANT}/{controller}/#")
        asyncio.run(asyncio.wait_for(scenario(watcher), 90))
