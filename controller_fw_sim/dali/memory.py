"""Memory bank images of simulated gear: bank 0, D4i banks 1 and 202-207.

Addresses, lengths, scales and types come from python-dali's `dali.memory`
declarations, so python-dali's own readers decode what we encode. This module is
pure: values in, a list of byte values (None = location not implemented) out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from dali.memory import diagnostics, energy, info, maintenance, oem
from dali.memory.location import (
    BinaryValue,
    FixedScaleNumericValue,
    MemoryBank,
    MemoryType,
    MemoryValue,
    StringValue,
    TemperatureValue,
    VersionNumberValue,
)

#: banks a simulated gear may implement (its profile says which), by number
BANKS: dict[int, MemoryBank] = {
    0: info.BANK_0,
    1: oem.BANK_1,
    202: energy.BANK_202,
    203: energy.BANK_203,
    204: energy.BANK_204,
    205: diagnostics.BANK_205,
    206: diagnostics.BANK_206,
    207: maintenance.BANK_207,
}

#: the last accessible location of bank 0 we implement (IEC 62386-102 allows >= 0x1a)
BANK_0_LAST_ADDRESS = 0x1A
LATCH = 0xAA
UNLOCK = 0x55
LOCKED = 0xFF

WRITEABLE = (MemoryType.RAM_RW, MemoryType.NVM_RW, MemoryType.NVM_RW_P)


@dataclass(frozen=True)
class Scaled:
    """A Part 252 value with its power-of-ten scale: raw = round(value / 10**exponent)."""

    value: float
    exponent: int


def last_address(bank_number: int) -> int:
    if bank_number == 0:
        return BANK_0_LAST_ADDRESS
    return BANKS[bank_number].LastAddress.locations[0].default


def _int_bytes(value: int, length: int, cap: int | None = None) -> bytes:
    top = (1 << (8 * length)) - 1
    v = max(0, int(value))
    v = min(v, top if cap is None else cap)
    return v.to_bytes(length, "big")


def encode_value(cls: type[MemoryValue], value: Any) -> bytes:
    """Raw bytes for ``value`` of memory value class ``cls`` (inverse of python-dali's decode).

    ``None`` encodes TMASK where the value supports it, else MASK (all ones).
    """
    n = len(cls.locations)
    if value is None:
        if getattr(cls, "tmask_supported", False):
            if issubclass(cls, energy.ScaledNumericValue):
                return bytes([0]) + cls.tmask
            return cls.tmask
        return bytes([0xFF] * n)
    if issubclass(cls, energy.ScaledNumericValue):
        if not isinstance(value, Scaled):
            raise TypeError(f"{cls.__name__} needs a Scaled value")
        mantissa = round(Decimal(repr(value.value)) / (Decimal(10) ** value.exponent))
        return bytes([value.exponent & 0xFF]) + _int_bytes(mantissa, n - 1, cls.max_value)
    if issubclass(cls, BinaryValue):
        return bytes([1 if value else 0])
    if issubclass(cls, TemperatureValue):
        return _int_bytes(round(value) + cls.offset, n, cls.max_value)
    if issubclass(cls, FixedScaleNumericValue):
        raw = round(Decimal(repr(float(value))) / Decimal(cls.scaling_factor))
        return _int_bytes(raw, n, cls.max_value)
    if issubclass(cls, StringValue):
        return cls.value_to_raw(value).ljust(n, b"\x00")
    if issubclass(cls, VersionNumberValue) and isinstance(value, tuple):
        if n == 1:
            major, minor = value
            return bytes([(major << 2) | minor])
        return bytes(value)
    return _int_bytes(value, n, getattr(cls, "max_value", None))


def bank_image(bank_number: int, values: Mapping[type[MemoryValue], Any],
               lock_byte: int | None = None) -> list[int | None]:
    """Contents of locations 0..last of a bank; unspecified locations are not implemented."""
    bank = BANKS[bank_number]
    last = last_address(bank_number)
    image: list[int | None] = [None] * (last + 1)
    image[0] = last
    if bank.LockByte is not None:
        image[0x02] = LOCKED if lock_byte is None else lock_byte
    for cls, value in values.items():
        if cls.bank is not bank:
            raise ValueError(f"{cls.__name__} is not in bank {bank_number}")
        raw = encode_value(cls, value)
        for location, byte in zip(cls.locations, raw, strict=True):
            if location.address <= last:
                image[location.address] = byte
    for cls in bank.values:  # ROM version bytes with a declared default (bank versions)
        for location in cls.locations:
            if (location.address <= last and image[location.address] is None
                    and location.type_ == MemoryType.ROM and location.default is not None
                    and cls is not bank.LastAddress):
                image[location.address] = location.default
    return image


def location_type(bank_number: int, address: int) -> MemoryType | None:
    """Declared type of a location, or None where python-dali declares nothing."""
    entry = BANKS[bank_number].locations.get(address)
    return entry.memory_location.type_ if entry else None


def value_class_at(bank_number: int, address: int) -> type[MemoryValue] | None:
    entry = BANKS[bank_number].locations.get(address)
    return entry.memory_value if entry else None
