"""Capabilities of gear the project did not write (python-dali's fake gear): device types, DT8
colour types and memory banks found once; a missing bank is "not implemented", never "no answer"."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest
from dali.gear import general as g
from dali.tests import fakes
from python_dali_gear import (
    D4I_252_ONLY,
    D4I_FULL,
    ENERGY_WH,
    PLAIN_DT6,
    POWER_W,
    Bank206,
    FakeGearBus,
    gear,
)

import hardware.dali as hd

T = TypeVar("T")
ALL_BANKS = frozenset(hd.PROBED_BANKS)


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


@pytest.mark.parametrize("banks, device_types, found, parts", [
    (PLAIN_DT6, (6,), {0}, ()),
    (D4I_252_ONLY, (6,), {0, 1, 202}, (251, 252)),
    (D4I_FULL, (6,), {0, 1, 202, 205, 206}, (251, 252, 253)),
    ((), (), set(), ()),  # DALI-1 gear: no bank 0, no 2xx device type
])
def test_probe_finds_device_types_and_banks(banks, device_types, found, parts) -> None:
    caps = run(hd.probe(FakeGearBus([gear(5, banks, devicetypes=device_types)]), 5))
    assert caps.device_types == device_types
    assert caps.banks == found and caps.missing == ALL_BANKS - found
    assert caps.complete
    assert caps.d4i_parts == parts
    assert caps.energy is (202 in found) and caps.diagnostics is bool(found & {205, 206})


def test_probe_lists_several_device_types_and_dt8_colour_types() -> None:
    caps = run(hd.probe(FakeGearBus([gear(2, D4I_FULL, devicetypes=(6, 8))]), 2))
    assert caps.device_types == (6, 8)
    assert caps.colour_types == {"tc"}
    assert caps.detail()["device_types"] == "6,8" and caps.detail()["d4i_parts"] == "251,252,253"


def test_a_silent_gear_is_no_answer_not_a_capability() -> None:
    bus = FakeGearBus([gear(0, D4I_FULL)])
    bus.mute = True
    with pytest.raises(hd.DaliNoAnswer):
        run(hd.probe(bus, 0, hd.NO_RETRY))
    with pytest.raises(hd.DaliNoAnswer):
        run(hd.read_energy(bus, 0, retry=hd.NO_RETRY))


def test_energy_of_a_plain_dt6_gear_is_not_implemented_not_no_answer() -> None:
    bus = FakeGearBus([gear(0, PLAIN_DT6)])
    with pytest.raises(hd.DaliError) as caught:
        run(hd.read_energy(bus, 0))
    assert not isinstance(caught.value, hd.DaliNoAnswer), "the gear answers: it lacks bank 202"
    assert isinstance(caught.value, hd.DaliNotImplemented)


def test_diagnostics_read_the_banks_the_gear_has() -> None:
    bus = FakeGearBus([gear(0, D4I_252_ONLY), gear(1, (fakes.FakeBank0, Bank206)),
                       gear(2, D4I_FULL)])
    with pytest.raises(hd.DaliNotImplemented):
        run(hd.read_diagnostics(bus, 0))
    light_source_only = run(hd.read_diagnostics(bus, 1))  # bank 205 is optional too
    assert light_source_only.supply_voltage_v is None
    full = run(hd.read_diagnostics(bus, 2))
    assert full.supply_voltage_v == 231 and full.gear_temperature_c == 41
    energy = run(hd.read_energy(bus, 2, all_banks=True))  # 203 and 204 are optional
    assert (energy.active_energy_wh, energy.active_power_w) == (ENERGY_WH, POWER_W)
    assert energy.apparent_energy_vah is None


def test_known_banks_are_not_asked_for_again() -> None:
    bus = FakeGearBus([gear(0, D4I_FULL)])
    caps = run(hd.probe(bus, 0))
    sent = bus.sent
    run(hd.read_diagnostics(bus, 0, banks={205}))
    only_205 = bus.sent - sent
    sent = bus.sent
    run(hd.read_diagnostics(bus, 0, banks=caps.banks))
    assert bus.sent - sent > only_205, "bank 206 read only when the gear has it"


class EndlessTypes(fakes.Gear):
    """A hostile gear: several device types, and QUERY NEXT DEVICE TYPE never says "no more"."""

    def send(self, cmd):  # type: ignore[no-untyped-def]
        if self.valid_address(cmd) and isinstance(cmd, g.QueryDeviceType):
            return 0xFF
        if self.valid_address(cmd) and isinstance(cmd, g.QueryNextDeviceType):
            return 6
        return super().send(cmd)


def test_a_gear_that_never_ends_its_device_type_list_is_cut_short() -> None:
    bus = FakeGearBus([EndlessTypes(shortaddr=4, memory_banks=PLAIN_DT6)])  # type: ignore[list-item]
    caps = run(hd.probe(bus, 4))
    assert caps.device_types == (6,) and caps.banks == {0}
    assert bus.sent < 200, "bounded"
