"""Shutdown holds even when a library swallows a cancellation, as `asyncio.wait_for` (awaited by
pymodbus and aiomqtt) does before Python 3.12 when the answer and the cancellation arrive in
the same loop iteration: the pollers stop, and `cancel_and_wait` cancels a stubborn task again."""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace

import pytest

from edge_agent.cancellation import cancel_and_wait
from edge_agent.clock import ScaledClock
from edge_agent.poller import ModbusPoller
from edge_agent.sensors import SensorPoller


class SwallowingRead:
    """A read that, cancelled while waiting for its answer, returns the answer anyway."""

    def __init__(self, values: dict[str, float]) -> None:
        self.values = values
        self.reading = asyncio.Event()
        self.swallowed = 0

    async def read(self, names=None) -> dict[str, float]:
        self.reading.set()
        try:
            await asyncio.sleep(0.05)
        except asyncio.CancelledError:
            self.swallowed += 1  # the answer came in the same iteration as the cancellation
        return self.values


def _sensor_poller(source: SwallowingRead) -> SensorPoller:
    source.name, source.counter_modulus = "swallowing", 1 << 16
    return SensorPoller(source, 0, ScaledClock(), lambda *a, **k: None, lambda covers: None,
                        interval_s=0.01)


def _meter_poller(device: SwallowingRead) -> ModbusPoller:
    device.profile = SimpleNamespace(id="swallowing")
    return ModbusPoller(device, 0, ScaledClock(), lambda *a, **k: None, interval_s=0.01)


@pytest.mark.parametrize("make_poller, values", [
    (_sensor_poller, {"presence_count": 3.0, "ambient_lux": 1.0}),
    (_meter_poller, {"power_total": 180.0}),
])
def test_a_poller_stops_when_its_read_swallows_the_cancellation(make_poller, values):
    async def scenario() -> None:
        source = SwallowingRead(values)
        task = asyncio.create_task(make_poller(source).run())
        await source.reading.wait()
        task.cancel()
        async with asyncio.timeout(2):
            await asyncio.wait({task})
        assert source.swallowed == 1
        assert task.cancelled()

    asyncio.run(scenario())


def test_cancel_and_wait_cancels_again_a_task_that_ignored_the_first_cancellation(caplog):
    async def stubborn() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            pass  # swallowed
        await asyncio.Event().wait()

    async def scenario() -> asyncio.Task:
        tasks = [asyncio.create_task(stubborn(), name="stubborn"),
                 asyncio.create_task(asyncio.Event().wait(), name="plain")]
        await asyncio.sleep(0)
        async with asyncio.timeout(2):
            await cancel_and_wait(tasks, grace_s=0.05)
        assert all(t.cancelled() for t in tasks)
        return tasks

    with caplog.at_level(logging.ERROR, logger="edge_agent.cancellation"):
        asyncio.run(scenario())
    assert [r for r in caplog.records if "task=stubborn" in r.getMessage()]
    assert not [r for r in caplog.records if "task=plain" in r.getMessage()]
