"""The DALI poller against gear the project did not write (python-dali's fake gear): what a gear
does not implement is a capability, never a communication fault; only unanswered level and status
queries make a gear "not answering"."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from controller_fw_sim.dali import MIXED_BUS, SimulatedDaliBus
from edge_agent.clock import ScaledClock
from edge_agent.poller import DaliPoller
from edge_agent.telemetry import LuminaireReading, luminaire_records
from hardware.dali import InProcessBus
from tests.hardware_dali import python_dali_gear as fake
from wire.messages import EventKind
from wire.records import ABSENT_FIELDS, LEVEL_UNKNOWN, LuminaireFailure

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
    def luminaires(found: Events) -> list[int]:
        return sorted(-1 if lum is None else lum for _, lum, _ in found)  # -1: the whole bus

    assert luminaires(errors) == [0, 1], "one fault per silent gear, raised once"
    assert luminaires(cleared) == [0, 1], "and cleared once"


def test_simulated_mixed_bus_keeps_each_gears_capabilities_and_reports_every_level() -> None:
    sim = SimulatedDaliBus.with_gear(4, seed=3, profiles=MIXED_BUS)
    events: Events = []

    def emit(kind: EventKind, severity: object, luminaire: int | None = None,
             **detail: Any) -> None:
        events.append((kind, luminaire, detail))

    poller = DaliPoller(InProcessBus(sim), 0, ScaledClock(1000.0), emit, interval_s=1.0)
    asyncio.run(_until(poller, lambda: poller.polls >= 2))
    caps = {i: (c.device_types, c.d4i_parts) for i, c in poller.capabilities.items()}
    assert caps == {0: ((6,), ()), 1: ((6,), (252,)), 2: ((6,), (251, 252, 253)),
                    3: ((8,), (251, 252))}
    inventory = {lum: d for kind, lum, d in events if kind is EventKind.INVENTORY}
    assert inventory[0]["banks"] == "0" and inventory[3]["colour_types"] == "tc"
    assert [e for e in events if e[0] is EventKind.DALI_ERROR] == []
    readings = poller.latest
    assert all(r.level == 254 and r.status & 0x04 and not r.failure for r in readings.values())
    absent = {i: r.absent() for i, r in readings.items()}
    assert absent == {0: LuminaireFailure.ABSENT_POWER | LuminaireFailure.ABSENT_DIAGNOSTICS,
                      1: LuminaireFailure.ABSENT_DIAGNOSTICS,
                      2: LuminaireFailure.NONE,
                      3: LuminaireFailure.ABSENT_DIAGNOSTICS}
    assert readings[1].power_w == pytest.approx(float(sim.state.power_w[1]), abs=0.1)
    assert readings[2].voltage_v == pytest.approx(230, abs=1)


def test_absent_values_go_on_the_wire_as_zero_with_their_bit() -> None:
    plain = LuminaireReading(1_736_539_200_000_000, 0, level=180, status=4)
    metered = LuminaireReading(1_736_539_200_000_000, 1, level=180, power_w=41.5,
                               energy_wh=1234.5, voltage_v=231.0, current_a=0.19,
                               power_factor=0.95, driver_temp_c=38.0)
    records = luminaire_records([plain, metered])
    assert records["level"].tolist() == [180, 180]
    assert records["failure"][0] == (LuminaireFailure.ABSENT_POWER
                                     | LuminaireFailure.ABSENT_DIAGNOSTICS)
    assert all(records[f][0] == 0 for bit in ABSENT_FIELDS.values() for f in bit)
    assert records["failure"][1] == 0 and records["energy_wh"][1] == 1234.5
    zero_power = LuminaireReading(1, 2, level=0, power_w=0.0, energy_wh=10.0)
    assert not zero_power.absent() & LuminaireFailure.ABSENT_POWER, "a gear off reads 0 W"
    assert LuminaireReading(1, 3, power_w=float("nan"), energy_wh=1.0).absent() & (
        LuminaireFailure.ABSENT_POWER)


def test_two_gear_on_one_address_are_that_address_fault_not_the_bus() -> None:
    """A commissioning mistake: two drivers answer short address 1 (framing errors). The gear at
    address 0 keeps reporting; address 1 is one fault; the poller never stops."""
    units = [fake.gear(0, fake.D4I_252_ONLY), fake.gear(1, fake.D4I_FULL),
             fake.gear(1, fake.PLAIN_DT6)]
    poller, events = _run(units, polls=4)
    assert poller.latest[0].level == 200 and not poller.latest[0].failure & LuminaireFailure.COMM
    assert poller.latest[1].failure & LuminaireFailure.COMM
    errors = [e for e in events if e[0] is EventKind.DALI_ERROR]
    assert [(lum, d["error"]) for _, lum, d in errors] == [(1, "DaliFramingError")]


def test_a_level_change_rereads_the_diagnostics_instead_of_reporting_stale_ones() -> None:
    """Power factor and supply voltage come from banks 205/206, read every few polls; power comes
    fresh every poll. Reporting the power factor read at the old level with the power of the new
    one (and the current computed from both) made a luminaire just switched up from standby look
    like powerFactorTooLow and currentTooHigh at the centre. A poll that finds the level changed
    reads the diagnostics again."""
    from dali.address import GearShort
    from dali.gear.general import DAPC

    from controller_fw_sim.dali import SimulatedDaliBus

    bus = SimulatedDaliBus.with_gear(1)
    poller = DaliPoller(InProcessBus(bus), 0, ScaledClock(1000.0), lambda *a, **k: None,
                        interval_s=1.0, diagnostics_every=6)

    async def scenario() -> tuple[LuminaireReading, LuminaireReading]:
        await poller.discover()
        bus.send_command(DAPC(GearShort(0), 30))
        bus.advance(5.0)
        await poller.poll_once()  # diagnostics due: read at the low level
        dim = poller.latest[0]
        bus.send_command(DAPC(GearShort(0), 254))
        bus.advance(5.0)
        await poller.poll_once()  # not due by count, but the level changed
        return dim, poller.latest[0]

    dim, full = asyncio.run(scenario())
    assert full.level == 254 and dim.level < 254
    truth = float(bus.state.power_factor[0])
    assert dim.power_factor is not None and abs(dim.power_factor - truth) > 0.05, \
        "the scenario must change the power factor, or it shows nothing"
    assert full.power_factor == pytest.approx(truth, abs=0.01)
    assert full.current_a == pytest.approx(float(bus.state.current_a[0]), rel=0.05)
