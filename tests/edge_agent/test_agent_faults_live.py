"""Hardware faults on the real broker: a Modbus timeout and a DALI no-answer become fault events
(raised once, cleared once) and the agent keeps polling and publishing; many agents share a process."""

from __future__ import annotations

import asyncio

import pytest
from agent_harness import WINTER_NIGHT, ClockedSink, Watcher, device_account, settings_for, wait_until

from controller_fw_sim.dali import SimulatedDaliBus
from controller_fw_sim.modbus_meter import MeterServer
from edge_agent.agent import Agent, Hardware
from edge_agent.clock import ScaledClock
from edge_agent.host import Host
from hardware.dali import InProcessBus
from hardware.modbus import ModbusDevice, load_profile, tcp_client
from wire.messages import Event, EventKind, State, loads
from wire.records import LuminaireFailure
from wire.retry import NO_RETRY
from wire.topics import Kind

pytestmark = pytest.mark.integration
TENANT = "forest"


def _events(watcher: Watcher) -> list[Event]:
    return [loads(Event, m.payload) for m in watcher.of(Kind.EVENT)]


def _kinds(watcher: Watcher, kind: EventKind) -> list[Event]:
    return [e for e in _events(watcher) if e.kind is kind]


def test_modbus_timeout_and_dali_no_answer_become_fault_events(stack, tmp_path):
    controller = "ctl-fault-1"
    password = device_account(stack.stack, TENANT, controller)
    e = stack.endpoints
    clock = ScaledClock(20.0, WINTER_NIGHT)
    sink = ClockedSink(SimulatedDaliBus.with_gear(2, seed=7), clock)
    settings = settings_for(tmp_path, e, TENANT, controller, password,
                            config=dict(telemetry_interval_s=5, dali_poll_interval_s=1,
                                        meter_poll_interval_s=1))

    async def scenario(watcher: Watcher) -> None:
        meter = MeterServer()
        port = await meter.start()
        meter.publish({"energy_import_kwh": 1234.5, "power_total": 180.0, "frequency": 50.0,
                       "voltage_ln_avg": 231.0})
        device = ModbusDevice(load_profile("eastron_sdm630"), tcp_client("127.0.0.1", port, timeout_s=0.2),
                              timeout_s=0.2, retry=NO_RETRY)
        try:
            hardware = Hardware([InProcessBus(sink)], [device])
            async with Agent(settings, clock=clock, hardware=hardware) as agent:
                await wait_until(lambda: agent.meters[0].latest is not None, 10, "a meter reading")
                meter.set_timeout_mode()
                sink.mute = True
                await wait_until(lambda: _kinds(watcher, EventKind.MODBUS_ERROR), 15, "modbus fault event")
                await wait_until(lambda: len(_kinds(watcher, EventKind.DALI_ERROR)) >= 2, 15,
                                 "a DALI fault event per silent gear")
                polls = agent.meters[0].polls
                await wait_until(lambda: agent.meters[0].polls >= polls + 2, 15, "polling to go on")
                assert len(_kinds(watcher, EventKind.MODBUS_ERROR)) == 1, "a stuck fault is one event"
                modbus = _kinds(watcher, EventKind.MODBUS_ERROR)[0]
                assert modbus.detail["error"] == "ModbusTimeout"
                assert {ev.luminaire for ev in _kinds(watcher, EventKind.DALI_ERROR)} == {0, 1}
                await wait_until(lambda: any(r["failure"] & LuminaireFailure.COMM
                                             for _, _, r in watcher.records()), 15,
                                 "telemetry flagged with the communication failure")
                meter.clear_fault()
                sink.mute = False
                await wait_until(lambda: len(_kinds(watcher, EventKind.FAULT_CLEARED)) >= 3, 15,
                                 "faults cleared after recovery")
                assert not agent._task.done()  # noqa: SLF001 - the agent never stopped
        finally:
            device.close()
            await meter.stop()

    with Watcher(e.mqtt_host, e.mqtt_port, e.mqtt_username, e.mqtt_password) as watcher:
        watcher.subscribe(f"luciole/v1/{TENANT}/{controller}/#")
        asyncio.run(asyncio.wait_for(scenario(watcher), 90))


def test_many_agents_in_one_process(stack, tmp_path):
    e = stack.endpoints
    names = [f"ctl-host-{i}" for i in range(6)]
    clock = ScaledClock(20.0, WINTER_NIGHT)
    factories = []
    for i, name in enumerate(names):
        password = device_account(stack.stack, TENANT, name)
        settings = settings_for(tmp_path, e, TENANT, name, password,
                                config=dict(telemetry_interval_s=5, dali_poll_interval_s=1))
        sink = ClockedSink(SimulatedDaliBus.with_gear(2, seed=i), clock)
        factories.append(lambda s=settings, k=sink: Agent(s, clock=clock,
                                                          hardware=Hardware([InProcessBus(k)], [])))

    def telemetry_from_all(watcher: Watcher) -> bool:
        seen = {m.topic.split("/")[3] for m in watcher.of(Kind.TELEMETRY)}
        return seen >= set(names)

    async def scenario(watcher: Watcher) -> None:
        host = Host(factories)
        async with asyncio.TaskGroup() as tg:
            tg.create_task(host.run())
            await wait_until(lambda: telemetry_from_all(watcher), 30, "telemetry from every agent")
            host.stop()

    with Watcher(e.mqtt_host, e.mqtt_port, e.mqtt_username, e.mqtt_password) as watcher:
        watcher.subscribe(f"luciole/v1/{TENANT}/+/#")
        asyncio.run(asyncio.wait_for(scenario(watcher), 60))
        last = {}
        for m in watcher.of(Kind.STATE):
            last[m.topic.split("/")[3]] = loads(State, m.payload)
        assert {n for n in names if last[n].online is False and last[n].reason == "shutdown"} == set(names)
