"""The DALI poller against gear the project did not write (python-dali's fake gear): what a gear
does not implement is a capability, never a communication fault; only unanswered level and status
queries make a gear "not answering"."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from edge_agent.clock import ScaledClock
from edge_agent.poller import DaliPoller
from tests.hardware_dali import python_dali_gear as fake
from wire.messages import EventKind
from wire.records import LEVEL_UNKNOWN, LuminaireFailure

Events = list[tuple[EventKind, int | None, dict[str, Any]]]


def _poller(bus: fake.FakeGearBus, events: Events) -> DaliPoller:
    def emit(kind: EventKind, severity: object, luminaire: int | None = None,
             **detail: Any) -> None:
        events.append((kind, luminaire, detail))

    return DaliPoller(bus, 0, ScaledClock(1000.0), emit, interval_s=1.0, diagnostics_every=1)


async def _until(poller: DaliPoller, condition: Any, timeout_s: float = 10.0) -> None:
    """Run the poller until `condition()` holds (TimeoutError after `timeout_s`)."""
    async def watch() -> None:
        while not condition():
            await asyncio.sleep(0.005)

    task = asyncio.create_task(poller.run())
    try:
        async with asyncio.timeout(timeout_s):
            await watch()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def _run(units: Sequence[fake.StatusGear], polls: int = 3) -> tuple[DaliPoller, Events]:
    events: Events = []
    poller = _poller(fake.FakeGearBus(list(units)), events)
    asyncio.run(_until(poller, lambda: poller.polls >= polls))
    return poller, events


def test_plain_dt6_gear_reports_level_and_status_with_power_and_energy_absent() -> None:
    poller, events = _run([fake.gear(0, fake.PLAIN_DT6, level=180)])
    reading = poller.latest[0]
    assert not reading.failure & LuminaireFailure.COMM, "a plain DT6 gear is not a dead gear"
    assert reading.level == 180
    assert reading.status & 0x04, "lamp on, from QUERY STATUS"
    assert reading.power_w is None and reading.energy_wh is None, "absent, not zero"
    assert reading.voltage_v is None and reading.driver_temp_c is None
    assert [e for e in events if e[0] is EventKind.DALI_ERROR] == []


def test_d4i_gear_without_diagnostics_banks_is_not_a_comm_fault() -> None:
    poller, events = _run([fake.gear(1, fake.D4I_252_ONLY, level=200)])
    reading = poller.latest[1]
    assert not reading.failure & LuminaireFailure.COMM
    assert reading.level == 200
    assert reading.energy_wh == fake.ENERGY_WH and reading.power_w == fake.POWER_W
    assert reading.voltage_v is None and reading.power_factor is None
    assert [e for e in events if e[0] in (EventKind.DALI_ERROR, EventKind.FAULT_CLEARED)] == []


def test_mixed_bus_reads_each_gear_for_what_it_has() -> None:
    units = [fake.gear(0, fake.PLAIN_DT6), fake.gear(1, fake.D4I_252_ONLY),
             fake.gear(2, fake.D4I_FULL), fake.gear(3, fake.D4I_FULL, devicetypes=(6, 8))]
    poller, events = _run(units)
    assert sorted(poller.latest) == [0, 1, 2, 3]
    assert all(r.level == 200 and not r.failure & LuminaireFailure.COMM
               for r in poller.latest.values())
    full = poller.latest[2]
    assert full.energy_wh == fake.ENERGY_WH
    assert full.voltage_v == fake.SUPPLY_V and full.driver_temp_c == fake.GEAR_TEMP_C
    assert full.power_factor == fake.POWER_FACTOR_PCT / 100
    assert [e for e in events if e[0] is EventKind.DALI_ERROR] == []


def test_only_unanswered_level_and_status_make_a_gear_not_answering() -> None:
    events: Events = []
    bus = fake.FakeGearBus([fake.gear(0, fake.PLAIN_DT6), fake.gear(1, fake.D4I_FULL)])
    poller = _poller(bus, events)

    async def scenario() -> None:
        await _until(poller, lambda: poller.polls >= 2)
        bus.mute = True
        await _until(poller, lambda: all(r.failure & LuminaireFailure.COMM
                                         for r in poller.latest.values()))
        assert {r.level for r in poller.latest.values()} == {LEVEL_UNKNOWN}
        bus.mute = False
        await _until(poller, lambda: not any(r.failure & LuminaireFailure.COMM
                                             for r in poller.latest.values()))

    asyncio.run(scenario())
    errors = [e for e in events if e[0] is EventKind.DALI_ERROR]
    cleared = [e for e in events if e[0] is EventKind.FAULT_CLEARED]
    assert sorted(e[1] for e in errors) == [0, 1], "one fault per silent gear, raised once"
    assert sorted(e[1] for e in cleared) == [0, 1], "and cleared once"
