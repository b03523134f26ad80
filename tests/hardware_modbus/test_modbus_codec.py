"""The pure register codec: table-driven decode per type and word order, round trips, planning."""

from __future__ import annotations

import math
import random
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hardware.modbus import (
    CodecError,
    RegisterFunction,
    RegisterSpec,
    RegisterType,
    available_profiles,
    decode_block,
    decode_raw,
    decode_value,
    encode_image,
    encode_raw,
    encode_value,
    load_profile,
    plan_profile_reads,
    plan_reads,
)

T = RegisterType

# (type, word order, registers as on the wire, raw value) -- registers computed by hand.
DECODE_TABLE = [
    (T.UINT16, "big", [0x0000], 0),
    (T.UINT16, "big", [0xFFFF], 65535),
    (T.UINT16, "little", [0x1234], 0x1234),
    (T.INT16, "big", [0xFFFF], -1),
    (T.INT16, "big", [0x8000], -32768),
    (T.INT16, "little", [0x7FFF], 32767),
    (T.UINT32, "big", [0x0001, 0x0002], 0x0001_0002),
    (T.UINT32, "little", [0x0002, 0x0001], 0x0001_0002),
    (T.UINT32, "big", [0xFFFF, 0xFFFF], 0xFFFF_FFFF),
    (T.INT32, "big", [0xFFFF, 0xFFFE], -2),
    (T.INT32, "little", [0xFFFE, 0xFFFF], -2),
    (T.INT32, "big", [0x8000, 0x0000], -(2**31)),
    (T.INT32, "little", [0x08FC, 0x0000], 2300),  # EM24: 230.0 V x 10, LSW first
    (T.FLOAT32, "big", [0x4366, 0x0000], 230.0),
    (T.FLOAT32, "little", [0x0000, 0x4366], 230.0),
    (T.FLOAT32, "big", [0xBF80, 0x0000], -1.0),
    (T.FLOAT32, "big", [0x4248, 0x0000], 50.0),
    (T.FLOAT64, "big", [0x4059, 0x0000, 0x0000, 0x0000], 100.0),
    (T.FLOAT64, "little", [0x0000, 0x0000, 0x0000, 0x4059], 100.0),
    (T.FLOAT64, "big", [0xC000, 0x0000, 0x0000, 0x0000], -2.0),
]


@pytest.mark.parametrize(("type_", "order", "registers", "raw"), DECODE_TABLE)
def test_decode_raw_table(type_, order, registers, raw):
    assert decode_raw(registers, type_, order) == raw


@pytest.mark.parametrize(("type_", "order", "registers", "raw"), DECODE_TABLE)
def test_encode_raw_table(type_, order, registers, raw):
    assert encode_raw(raw, type_, order) == registers


# (type, word order, scale, registers, engineering value)
SCALED_TABLE = [
    (T.INT32, "little", 0.1, [0x08FC, 0x0000], 230.0),
    (T.INT32, "little", 0.001, [0x04D2, 0x0000], 1.234),
    (T.INT16, "big", 0.001, [0x03B6], 0.95),
    (T.UINT16, "big", 0.1, [0x01F4], 50.0),
    (T.UINT32, "big", 0.01, [0x0001, 0x86A0], 1000.0),
    (T.FLOAT32, "big", 1000.0, [0x3F80, 0x0000], 1000.0),  # a kWh register read as Wh
]


@pytest.mark.parametrize(("type_", "order", "scale", "registers", "value"), SCALED_TABLE)
def test_scaled_values(type_, order, scale, registers, value):
    spec = RegisterSpec(name="x", function="input", address=0, type=type_, scale=scale, word_order=order)
    assert decode_value(registers, spec) == pytest.approx(value)
    assert encode_value(value, spec) == registers


def test_unscaled_integers_stay_int():
    spec = RegisterSpec(name="x", function="holding", address=0, type=T.INT16)
    assert isinstance(decode_value([5], spec), int)


@pytest.mark.parametrize(
    ("type_", "registers"),
    [(T.UINT16, []), (T.INT32, [1]), (T.FLOAT64, [1, 2]), (T.UINT16, [0x10000]), (T.INT16, [-1])],
)
def test_decode_rejects_wrong_register_count_or_range(type_, registers):
    with pytest.raises(CodecError):
        decode_raw(registers, type_)


@pytest.mark.parametrize(
    ("type_", "raw"), [(T.UINT16, -1), (T.INT16, 40000), (T.UINT32, 2**32), (T.INT32, 1.5)]
)
def test_encode_rejects_out_of_range(type_, raw):
    with pytest.raises(CodecError):
        encode_raw(raw, type_)


def test_decode_agrees_with_struct_reference():
    rng = random.Random(7)
    for _ in range(2000):
        words = [rng.randrange(0x10000) for _ in range(2)]
        big = struct.unpack(">i", struct.pack(">HH", *words))[0]
        little = struct.unpack(">i", struct.pack(">HH", *reversed(words)))[0]
        assert decode_raw(words, T.INT32, "big") == big
        assert decode_raw(words, T.INT32, "little") == little


# -- round trips of every shipped profile's registers ------------------------------------
ALL_SPECS = [spec for name in available_profiles() for spec in load_profile(name).registers]


def _values_for(spec: RegisterSpec) -> st.SearchStrategy:
    if spec.type.is_float:
        width = 32 if spec.type is T.FLOAT32 else 64
        return st.floats(
            allow_nan=False,
            allow_infinity=False,
            width=width,
            min_value=-1e30 if width == 64 else -1.0000000150474662e30,
            max_value=1e30 if width == 64 else 1.0000000150474662e30,
        )
    lo, hi = {T.UINT16: (0, 0xFFFF), T.INT16: (-0x8000, 0x7FFF),
              T.UINT32: (0, 0xFFFF_FFFF), T.INT32: (-(2**31), 2**31 - 1)}[spec.type]
    return st.integers(lo, hi).map(lambda raw: raw * spec.scale)


@settings(max_examples=300)
@given(data=st.data(), spec=st.sampled_from(ALL_SPECS))
def test_profile_values_round_trip(data, spec):
    value = data.draw(_values_for(spec))
    decoded = decode_value(encode_value(value, spec), spec)
    if spec.type is T.FLOAT32:
        assert decoded == pytest.approx(value, rel=1e-7, abs=1e-37)
    elif spec.type.is_float:
        assert decoded == value
    else:
        assert decoded == pytest.approx(value, rel=1e-12, abs=abs(spec.scale) / 2)


@given(
    type_=st.sampled_from(list(T)),
    order=st.sampled_from(["big", "little"]),
    words=st.lists(st.integers(0, 0xFFFF), min_size=4, max_size=4),
)
def test_registers_round_trip(type_, order, words):
    registers = words[: type_.word_count]
    raw = decode_raw(registers, type_, order)
    if type_.is_float and math.isnan(raw):
        return  # NaN payloads need not survive
    assert encode_raw(raw, type_, order) == registers


# -- profiles -------------------------------------------------------------------------
def test_sdm630_profile_has_the_real_addresses():
    p = load_profile("eastron_sdm630")
    expected = {"voltage_l1": 0x00, "voltage_l2": 0x02, "voltage_l3": 0x04, "current_l1": 0x06,
                "power_l1": 0x0C, "power_total": 0x34, "power_factor_total": 0x3E,
                "frequency": 0x46, "energy_import_kwh": 0x48}
    for name, address in expected.items():
        reg = p.register(name)
        assert (reg.address, reg.type, reg.function, reg.word_order) == (
            address,
            T.FLOAT32,
            RegisterFunction.INPUT,
            "big",
        )


def test_sdm630_reads_in_one_request():
    blocks = plan_profile_reads(load_profile("eastron_sdm630"))
    assert [(b.function, b.start, b.count) for b in blocks] == [(RegisterFunction.INPUT, 0, 0x4C)]


def test_profile_rejects_overlap_and_duplicates():
    from hardware.modbus import ProfileError, parse_profile

    base = {"id": "x", "manufacturer": "m", "model": "m"}
    overlapping = [{"name": "a", "function": "input", "address": 0, "type": "float32"},
                   {"name": "b", "function": "input", "address": 1, "type": "uint16"}]
    with pytest.raises(ProfileError, match="overlap"):
        parse_profile({**base, "registers": overlapping})
    duplicate = [{"name": "a", "function": "input", "address": 0, "type": "uint16"},
                 {"name": "a", "function": "holding", "address": 0, "type": "uint16"}]
    with pytest.raises(ProfileError, match="duplicate"):
        parse_profile({**base, "registers": duplicate})
    with pytest.raises(ProfileError):
        parse_profile(
            {**base, "registers": [{"name": "a", "function": "coil", "address": 0, "type": "uint16"}]}
        )


def _spec(name, address, type_=T.UINT16, function="input"):
    return RegisterSpec(name=name, function=function, address=address, type=type_)


PLAN_TABLE = [
    # registers, max_gap, max_count, expected (function, start, count)
    ([_spec("a", 0), _spec("b", 1), _spec("c", 2)], 0, 125, [("input", 0, 3)]),
    ([_spec("a", 0), _spec("b", 3)], 0, 125, [("input", 0, 1), ("input", 3, 1)]),
    ([_spec("a", 0), _spec("b", 3)], 2, 125, [("input", 0, 4)]),
    ([_spec("a", 0, T.FLOAT32), _spec("b", 2, T.FLOAT32), _spec("c", 4, T.FLOAT32)], 0, 4,
     [("input", 0, 4), ("input", 4, 2)]),
    ([_spec("h", 10, function="holding"), _spec("i", 10)], 0, 125, [("input", 10, 1), ("holding", 10, 1)]),
    ([_spec("b", 5), _spec("a", 4)], 0, 125, [("input", 4, 2)]),
]


@pytest.mark.parametrize(("registers", "max_gap", "max_count", "expected"), PLAN_TABLE)
def test_plan_reads(registers, max_gap, max_count, expected):
    blocks = plan_reads(registers, max_gap=max_gap, max_count=max_count)
    assert [(b.function.value, b.start, b.count) for b in blocks] == expected
    assert sorted(r.name for b in blocks for r in b.registers) == sorted(r.name for r in registers)


def test_encode_image_then_decode_block_gives_values_back():
    profile = load_profile("carlo_gavazzi_em24")
    values = {"voltage_l1": 231.4, "current_l2": 1.234, "power_total": 1520.5,
              "power_factor_l1": 0.93, "frequency": 50.1, "energy_import_kwh": 12345.6}
    image = encode_image(profile, values)
    for block in plan_profile_reads(profile):
        words = [image[block.function].get(a, 0) for a in range(block.start, block.end)]
        decoded = decode_block(block, words)
        for name, value in values.items():
            if name in decoded:
                assert decoded[name] == pytest.approx(value)
    with pytest.raises(CodecError):
        encode_image(profile, {"no_such_register": 1.0})
