"""Gear the project did not write: python-dali's own fake control gear (`dali.tests.fakes`) as a
`DaliBus`, extended with QUERY STATUS and D4i memory banks whose bytes are laid out by hand from
the DiiA Part 252/253 tables (not by our simulator's encoder)."""

from __future__ import annotations

import asyncio

from dali.command import Command, Response
from dali.gear import general as g
from dali.memory import diagnostics, energy
from dali.tests import fakes

ENERGY_WH = 12_345  # bank 202 ActiveEnergy, scale 10^0
POWER_W = 42  # bank 202 ActivePower, scale 10^0
SUPPLY_V = 231  # bank 205 ControlGearExternalSupplyVoltage (0.1 V steps)
GEAR_TEMP_C = 41  # bank 205 ControlGearTemperature (offset 60)
POWER_FACTOR_PCT = 95  # bank 205 ControlGearPowerFactor (0.01 steps)


class Bank202(fakes.FakeMemoryBank):
    bank = energy.BANK_202
    initial_contents = [0x0F, None, 0xFF, 0x01,
                        0x00, *ENERGY_WH.to_bytes(6, "big"),  # scale 0, active energy
                        0x00, *POWER_W.to_bytes(4, "big")]  # scale 0, active power


class Bank205(fakes.FakeMemoryBank):
    bank = diagnostics.BANK_205
    initial_contents = [0x1C, None, 0xFF, 0x01,
                        *(0).to_bytes(4, "big"),  # 0x04 operating time
                        *(3).to_bytes(3, "big"),  # 0x08 start counter
                        *(SUPPLY_V * 10).to_bytes(2, "big"),  # 0x0b supply voltage
                        50,  # 0x0d frequency
                        POWER_FACTOR_PCT,  # 0x0e power factor
                        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  # 0x0f..0x1a failure flags/counters
                        GEAR_TEMP_C + 60,  # 0x1b control gear temperature
                        100]  # 0x1c output current percent


class Bank206(fakes.FakeMemoryBank):
    bank = diagnostics.BANK_206
    initial_contents = [0x20, None, 0xFF, 0x01]


class StatusGear(fakes.Gear):
    """python-dali's fake gear, answering QUERY STATUS as IEC 62386-102 says (lamp on bit)."""

    def send(self, cmd: Command) -> int | None:
        if isinstance(cmd, g.QueryStatus) and self.valid_address(cmd):
            return 0x04 if self.level else 0x00
        return super().send(cmd)


PLAIN_DT6 = (fakes.FakeBank0,)
D4I_252_ONLY = (fakes.FakeBank0, fakes.FakeBank1, Bank202)
D4I_FULL = (fakes.FakeBank0, fakes.FakeBank1, Bank202, Bank205, Bank206)


def gear(short: int, banks: tuple[type[fakes.FakeMemoryBank], ...],
         devicetypes: tuple[int, ...] = (6,), level: int = 200) -> StatusGear:
    unit = StatusGear(shortaddr=short, devicetypes=list(devicetypes), memory_banks=banks)
    unit.level = level
    return unit


class FakeGearBus:
    """A `DaliBus` over python-dali's fake bus; `mute` silences every gear (a cut bus)."""

    def __init__(self, units: list[StatusGear]) -> None:
        self.bus = fakes.Bus(units)
        self.mute = False
        self.sent = 0

    async def send(self, command: Command) -> Response | None:
        self.sent += 1
        response = self.bus.send(command)
        if self.mute and command.response is not None:
            return command.response(None)
        return response

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(0)

    async def close(self) -> None:
        return None
