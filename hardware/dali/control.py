"""Everyday gear control over a `DaliBus`: levels, status, failures."""

from __future__ import annotations

from dataclasses import dataclass

from dali.address import GearShort
from dali.gear import general as g
from dali.gear import led

from hardware.dali.commands import query
from hardware.dali.transport import DaliBus
from wire.retry import RetryPolicy


@dataclass(frozen=True)
class GearStatus:
    """QUERY STATUS, decoded."""

    gear_failure: bool
    lamp_failure: bool
    lamp_on: bool
    limit_error: bool
    fade_running: bool
    reset_state: bool
    missing_short_address: bool
    power_cycle_seen: bool

    @classmethod
    def from_byte(cls, b: int) -> GearStatus:
        return cls(*(bool(b >> i & 1) for i in range(8)))


async def set_level(bus: DaliBus, destination, level: int) -> None:
    """DIRECT ARC POWER CONTROL (fades with the gear's fade time); ``destination`` is a
    python-dali address (Short, Group, Broadcast) or a short address int."""
    await bus.send(g.DAPC(destination, level))


async def actual_level(bus: DaliBus, short_address: int,
                       retry: RetryPolicy = RetryPolicy()) -> int:
    r = await query(bus, g.QueryActualLevel(GearShort(short_address)), retry)
    return r.raw_value.as_integer


async def status(bus: DaliBus, short_address: int,
                 retry: RetryPolicy = RetryPolicy()) -> GearStatus:
    r = await query(bus, g.QueryStatus(GearShort(short_address)), retry)
    return GearStatus.from_byte(r.raw_value.as_integer)


async def led_failures(bus: DaliBus, short_address: int,
                       retry: RetryPolicy = RetryPolicy()) -> list[str]:
    """Device type 6 QUERY FAILURE STATUS as python-dali's bit names."""
    r = await query(bus, led.QueryFailureStatus(GearShort(short_address)), retry)
    return r.status
