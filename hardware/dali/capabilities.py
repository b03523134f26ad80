"""What one DALI gear implements, found once when it is commissioned or discovered: its device
types (IEC 62386-2xx), its DT8 colour types, and which memory banks (0, 1, D4i 202-207) it has.

Most installed DALI gear is plain device type 6 with bank 0 only; D4i gear adds bank 1 (Part 251),
202-204 (Part 252 energy) and 205-207 (Part 253 diagnostics), often not all of them. A bank the
gear lacks is a capability, found here once, so that pollers read only what the gear has and
never take "not implemented" for a gear that does not answer.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from dali.address import GearShort
from dali.gear import colour
from dali.gear import general as g
from dali.memory import diagnostics, energy, info, maintenance, oem
from dali.memory.location import MemoryBank

from hardware.dali.commands import query, read_with_retry
from hardware.dali.errors import DaliNoAnswer, DaliNotImplemented
from hardware.dali.transport import DaliBus
from wire.retry import RetryPolicy

DEFAULT_RETRY = RetryPolicy()

PROBED_BANKS: dict[int, MemoryBank] = {
    0: info.BANK_0,
    1: oem.BANK_1,
    202: energy.BANK_202,
    203: energy.BANK_203,
    204: energy.BANK_204,
    205: diagnostics.BANK_205,
    206: diagnostics.BANK_206,
    207: maintenance.BANK_207,
}
"""The memory banks a probe asks for, by number."""

D4I_PARTS: dict[int, tuple[int, ...]] = {251: (1,), 252: (202,), 253: (205, 206)}
"""DiiA D4i parts and the banks that must all be there for the gear to implement the part
(203, 204 and 207 are optional within their parts)."""

DEVICE_TYPE_NONE = 254  # QUERY DEVICE TYPE: no IEC 62386-2xx device type
DEVICE_TYPE_MULTIPLE = 255  # QUERY DEVICE TYPE: several; QUERY NEXT DEVICE TYPE lists them
MAX_DEVICE_TYPES = 16

COLOUR_TYPES = (("xy capable", "xy"), ("Tc capable", "tc"))
"""DT8 QUERY COLOUR TYPE FEATURES bits (python-dali's names) and the colour types they mean."""


def _numbers(values: Iterable[int]) -> str:
    return ",".join(str(v) for v in sorted(values))


@dataclass(frozen=True)
class GearCapabilities:
    """What a gear implements. A bank neither in `banks` nor in `missing` is not known yet (the
    gear fell silent while it was probed)."""

    device_types: tuple[int, ...] = ()
    banks: frozenset[int] = field(default_factory=frozenset)
    missing: frozenset[int] = field(default_factory=frozenset)
    colour_types: frozenset[str] = field(default_factory=frozenset)

    @property
    def complete(self) -> bool:
        """Every probed bank is known to be there or not."""
        return self.banks | self.missing >= set(PROBED_BANKS)

    @property
    def d4i_parts(self) -> tuple[int, ...]:
        return tuple(part for part, banks in D4I_PARTS.items() if self.banks >= set(banks))

    @property
    def energy(self) -> bool:
        """D4i Part 252 active energy and power (bank 202)."""
        return 202 in self.banks

    @property
    def diagnostics(self) -> bool:
        """Part 253 control gear (205) or light source (206) diagnostics, at least one."""
        return bool(self.banks & {205, 206})

    def detail(self) -> dict[str, str]:
        """As the values of an event's detail (numbers as comma-separated lists)."""
        return {"device_types": _numbers(self.device_types), "banks": _numbers(self.banks),
                "banks_missing": _numbers(self.missing), "d4i_parts": _numbers(self.d4i_parts),
                "colour_types": ",".join(sorted(self.colour_types))}


async def device_types(bus: DaliBus, short_address: int,
                       retry: RetryPolicy = DEFAULT_RETRY) -> tuple[int, ...]:
    """QUERY DEVICE TYPE, then QUERY NEXT DEVICE TYPE while the gear has several."""
    address = GearShort(short_address)
    first = (await query(bus, g.QueryDeviceType(address), retry)).raw_value.as_integer
    if first == DEVICE_TYPE_NONE:
        return ()
    if first != DEVICE_TYPE_MULTIPLE:
        return (first,)
    found: set[int] = set()
    for _ in range(MAX_DEVICE_TYPES):  # each must follow the previous query directly: no retry;
        response = await bus.send(g.QueryNextDeviceType(address))  # bounded, should it never end
        raw = response.raw_value if response is not None else None
        if raw is None or raw.error:
            raise DaliNoAnswer(f"no clean answer to QUERY NEXT DEVICE TYPE of {short_address}")
        if raw.as_integer == DEVICE_TYPE_NONE:
            break
        found.add(raw.as_integer)
    return tuple(sorted(found))


async def colour_types(bus: DaliBus, short_address: int,
                       retry: RetryPolicy = DEFAULT_RETRY) -> frozenset[str]:
    """The colour types a DT8 gear can be driven in (QUERY COLOUR TYPE FEATURES)."""
    response = await query(bus, colour.QueryColourTypeFeatures(GearShort(short_address)), retry)
    features = set(response.status)
    found = {name for bit, name in COLOUR_TYPES if bit in features}
    if response.primary_n:
        found.add("primary_n")
    if response.RGBWAF_channels:
        found.add("rgbwaf")
    return frozenset(found)


async def has_bank(bus: DaliBus, short_address: int, bank: MemoryBank,
                   retry: RetryPolicy = DEFAULT_RETRY) -> bool:
    """Whether the gear implements `bank` (its location 0, the bank's last address, answers).
    Raises `DaliNoAnswer` when the gear itself is silent."""
    try:
        await read_with_retry(bus, lambda: bank.LastAddress.read(GearShort(short_address)),
                              retry, gear=short_address)
    except DaliNotImplemented:
        return False
    return True


async def probe(bus: DaliBus, short_address: int,
                retry: RetryPolicy = DEFAULT_RETRY) -> GearCapabilities:
    """Find what the gear at `short_address` implements. Raises `DaliNoAnswer` when it does not
    answer its device type query; a gear that falls silent later gets the banks found so far
    (`complete` is False) and should be probed again."""
    types = await device_types(bus, short_address, retry)
    colours = await colour_types(bus, short_address, retry) if 8 in types else frozenset()
    banks: set[int] = set()
    missing: set[int] = set()
    for number, bank in PROBED_BANKS.items():
        try:
            (banks if await has_bank(bus, short_address, bank, retry) else missing).add(number)
        except DaliNoAnswer:
            break
    return GearCapabilities(types, frozenset(banks), frozenset(missing), colours)
