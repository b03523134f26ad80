"""Pure register codec: registers <-> engineering values, and read planning. No I/O."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from pymodbus.client.mixin import ModbusClientMixin

from .errors import CodecError
from .profile import DeviceProfile, RegisterFunction, RegisterSpec, RegisterType, WordOrder

_DATATYPE = ModbusClientMixin.DATATYPE
_PYMODBUS_TYPE = {
    RegisterType.UINT16: _DATATYPE.UINT16,
    RegisterType.INT16: _DATATYPE.INT16,
    RegisterType.UINT32: _DATATYPE.UINT32,
    RegisterType.INT32: _DATATYPE.INT32,
    RegisterType.FLOAT32: _DATATYPE.FLOAT32,
    RegisterType.FLOAT64: _DATATYPE.FLOAT64,
}
_INT_RANGE = {
    RegisterType.UINT16: (0, 0xFFFF),
    RegisterType.INT16: (-0x8000, 0x7FFF),
    RegisterType.UINT32: (0, 0xFFFF_FFFF),
    RegisterType.INT32: (-0x8000_0000, 0x7FFF_FFFF),
}

Value = int | float


def decode_raw(registers: Sequence[int], type_: RegisterType, word_order: WordOrder = "big") -> Value:
    """Registers (16-bit words, as read) -> the raw value of ``type_``, unscaled."""
    if len(registers) != type_.word_count:
        raise CodecError(f"{type_.value} needs {type_.word_count} registers, got {len(registers)}")
    if any(not 0 <= r <= 0xFFFF for r in registers):
        raise CodecError(f"registers out of 16-bit range: {list(registers)}")
    value = ModbusClientMixin.convert_from_registers(list(registers), _PYMODBUS_TYPE[type_], word_order)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CodecError(f"{type_.value} decoded to {type(value).__name__}, not a number")
    return value


def encode_raw(raw: Value, type_: RegisterType, word_order: WordOrder = "big") -> list[int]:
    """The raw value of ``type_`` -> registers in wire order."""
    if type_.is_float:
        raw = float(raw)
        if type_ is RegisterType.FLOAT32 and math.isfinite(raw) and abs(raw) > 3.4028234663852886e38:
            raise CodecError(f"{raw} overflows float32")
    else:
        if isinstance(raw, float) and not raw.is_integer():
            raise CodecError(f"{type_.value} needs an integer, got {raw}")
        raw = int(raw)
        low, high = _INT_RANGE[type_]
        if not low <= raw <= high:
            raise CodecError(f"{raw} out of {type_.value} range [{low}, {high}]")
    return ModbusClientMixin.convert_to_registers(raw, _PYMODBUS_TYPE[type_], word_order)


def decode_value(registers: Sequence[int], spec: RegisterSpec) -> Value:
    """Registers of one profile entry -> its engineering value (raw * scale).

    Integer types with scale 1 stay ``int``; anything scaled or floating is ``float``.
    """
    raw = decode_raw(registers, spec.type, spec.word_order)
    if spec.scale == 1 and not spec.type.is_float:
        return raw
    return float(raw) * spec.scale


def encode_value(value: Value, spec: RegisterSpec) -> list[int]:
    """Engineering value of one profile entry -> registers (integer types are rounded)."""
    if spec.type.is_float:
        return encode_raw(float(value) / spec.scale, spec.type, spec.word_order)
    if not math.isfinite(value):
        raise CodecError(f"{spec.name}: {value} cannot be stored in {spec.type.value}")
    return encode_raw(round(value / spec.scale), spec.type, spec.word_order)


@dataclass(frozen=True)
class ReadBlock:
    """One read request: ``count`` registers of ``function`` from ``start``."""

    function: RegisterFunction
    start: int
    count: int
    registers: tuple[RegisterSpec, ...]

    @property
    def end(self) -> int:
        return self.start + self.count


def plan_reads(
    registers: Iterable[RegisterSpec], *, max_gap: int = 0, max_count: int = 125
) -> list[ReadBlock]:
    """Group registers into as few read requests as possible.

    Registers of the same function join one request while the run stays within
    ``max_count`` words and the unmapped hole between neighbours is at most ``max_gap``.
    Blocks come out ordered by function (input, holding) then address.
    """
    blocks: list[ReadBlock] = []
    for function in RegisterFunction:
        regs = sorted((r for r in registers if r.function is function), key=lambda r: r.address)
        current: list[RegisterSpec] = []
        start = end = 0
        for reg in regs:
            if current and reg.address - end <= max_gap and reg.end - start <= max_count:
                current.append(reg)
                end = max(end, reg.end)
                continue
            if current:
                blocks.append(ReadBlock(function, start, end - start, tuple(current)))
            current, start, end = [reg], reg.address, reg.end
        if current:
            blocks.append(ReadBlock(function, start, end - start, tuple(current)))
    return blocks


def plan_profile_reads(profile: DeviceProfile, names: Iterable[str] | None = None) -> list[ReadBlock]:
    """`plan_reads` over a profile (or the named subset of it), with the profile's limits."""
    regs = profile.registers if names is None else [profile.register(n) for n in names]
    return plan_reads(regs, max_gap=profile.max_read_gap, max_count=profile.max_registers_per_read)


def decode_block(block: ReadBlock, registers: Sequence[int]) -> dict[str, Value]:
    """The answer to one read request -> {register name: engineering value}."""
    if len(registers) != block.count:
        raise CodecError(f"block @{block.start} expects {block.count} registers, got {len(registers)}")
    return {
        spec.name: decode_value(
            registers[spec.address - block.start : spec.end - block.start], spec
        )
        for spec in block.registers
    }


def encode_image(
    profile: DeviceProfile, values: Mapping[str, Value]
) -> dict[RegisterFunction, dict[int, int]]:
    """{register name: value} -> {function: {address: 16-bit word}}, the device's memory.

    Registers of the profile missing from ``values`` read as 0; names not in the
    profile are an error (a typo must not silently publish nothing).
    """
    unknown = set(values) - set(profile.names)
    if unknown:
        raise CodecError(f"not in profile {profile.id}: {sorted(unknown)}")
    image: dict[RegisterFunction, dict[int, int]] = {f: {} for f in RegisterFunction}
    for spec in profile.registers:
        words = encode_value(values.get(spec.name, 0), spec)
        for offset, word in enumerate(words):
            image[spec.function][spec.address + offset] = word
    return image
