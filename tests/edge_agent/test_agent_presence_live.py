"""Presence on the real broker: a simulated Modbus pole sensor (PIR counter and ambient light, the
shipped generic profile) counts three passers-by; the luminaire it watches is boosted, reported
in telemetry with the detections and the ambient light, then fades back to the schedule, while
the luminaire it does not watch stays on the schedule."""

from __future__ import annotations

import asyncio

import pytest
from agent_harness import WINTER_NIGHT, ClockedSink, Watcher, device_account, settings_for, wait_until

from controller_fw_sim.dali import SimulatedDaliBus
from controller_fw_sim.modbus_meter import MeterServer
from edge_agent.agent import Agent, Hardware
from edge_agent.clock import ScaledClock
from edge_agent.sensors import DEFAULT_PROFILE, ModbusSensorSource
from hardware.dali import InProcessBus
from hardware.modbus import ModbusDevice, load_profile, tcp_client
from wire.retry import NO_RETRY

pytestmark = pytest.mark.integration
TENANT = "schaerbeek"
SCHEDULED, BOOSTED = 100, 254


def test_presence_boosts_the_watched_luminaire_in_telemetry_then_fades_back(stack, tmp_path):
    controller = "ctl-pir-1"
    password = device_account(stack.stack, TENANT, controller)
    e = stack.endpoints
    clock = ScaledClock(10.0, WINTER_NIGHT)
    sink = ClockedSink(SimulatedDaliBus.with_gear(2, seed=11), clock)
    schedule = dict(steps=[dict(anchor="sunset", level=SCHEDULED), dict(anchor="sunrise", level=0)],
                    presence=dict(level=BOOSTED, hold_s=20, fade_s=30))
    profile = load_profile(DEFAULT_PROFILE)

    async def scenario(watcher: Watcher) -> None:
        sensor = MeterServer(profile=profile)  # serves any profile's registers from a value map
        port = await sensor.start()
        sensor.publish({"presence_count": 41, "ambient_lux": 0.8})
        settings = settings_for(tmp_path, e, TENANT, controller, password, schedule=schedule,
                                config=dict(telemetry_interval_s=5, dali_poll_interval_s=1),
                                sensors=[dict(host="127.0.0.1", port=port, luminaires=[0],
                                              poll_interval_s=1)])
        device = ModbusDevice(profile, tcp_client("127.0.0.1", port, timeout_s=0.5), timeout_s=0.5,
                              retry=NO_RETRY)
        hardware = Hardware([InProcessBus(sink)], [], [ModbusSensorSource(device)])
        try:
            async with Agent(settings, clock=clock, hardware=hardware) as agent:
                def records(luminaire: int):
                    return [r for _, _, r in watcher.records() if r["luminaire"] == luminaire]

                await wait_until(lambda: any(r["level"] == SCHEDULED for r in records(0)), 20,
                                 "luminaire 0 reported at the scheduled level")
                await wait_until(lambda: agent.sensors[0].counter == 41, 10, "a first sensor reading")
                assert all(r["presence"] == 0 for r in records(0)), "the counter's past is not counted"
                before = len(records(0))

                sensor.publish({"presence_count": 44, "ambient_lux": 0.8})  # three passers-by
                await wait_until(lambda: any(r["level"] == BOOSTED for r in records(0)[before:]), 20,
                                 "luminaire 0 reported at the boosted level")
                boosted_at = next(k for k, r in enumerate(records(0)) if r["level"] == BOOSTED)
                assert sum(int(r["presence"]) for r in records(0)) == 3
                assert max(r["presence"] for r in records(1)) == 0, "luminaire 1 has no sensor"
                assert all(r["ambient_lux"] == pytest.approx(0.8) for r in records(0)[before:])

                await wait_until(lambda: any(r["level"] == SCHEDULED
                                             for r in records(0)[boosted_at:]), 30,
                                 "luminaire 0 faded back to the scheduled level")
                after = records(0)[boosted_at:]
                back = next(k for k, r in enumerate(after) if r["level"] == SCHEDULED)
                fading = [int(r["level"]) for r in after[:back + 1]]
                assert any(SCHEDULED < lv < BOOSTED for lv in fading), f"a fade, not a step: {fading}"
                assert fading == sorted(fading, reverse=True), f"the fade only goes down: {fading}"
                assert {int(r["level"]) for r in records(1)} == {SCHEDULED}
        finally:
            device.close()
            await sensor.stop()

    with Watcher(e.mqtt_host, e.mqtt_port, e.mqtt_username, e.mqtt_password) as watcher:
        watcher.subscribe(f"luciole/v1/{TENANT}/{controller}/telemetry")
        asyncio.run(asyncio.wait_for(scenario(watcher), 90))
