"""Binary telemetry codec: layout, round trips, and every way a payload is refused."""

import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wire.codec import (
    HEADER_DTYPE,
    LUMINAIRE_DTYPE,
    MAX_PAYLOAD_BYTES,
    MAX_RECORDS_PER_MESSAGE,
    SENSOR_DTYPE,
    CodecError,
    LuminaireFailure,
    Quantity,
    RecordType,
    RejectReason,
    decode,
    decode_batch,
    encode_luminaire,
    encode_sensor,
)
from wire.records import LUMINAIRE_RANGES, TIME_MAX_AHEAD_US, TIME_MIN_US

NOW = 1_764_000_000_000_000  # 2025-11-24T16:00:00Z, in µs
LATEST = NOW + TIME_MAX_AHEAD_US
U64 = st.integers(0, 2**64 - 1)
RANGES = {field: (low, high) for field, low, high in LUMINAIRE_RANGES}


def _float(low, high, width):
    return st.floats(low, high, width=width, allow_nan=False, allow_infinity=False)


LUMINAIRE_FIELDS = {
    "time_us": st.integers(TIME_MIN_US, LATEST),
    "luminaire": st.integers(0, 1023),
    "level": st.integers(0, 255),
    "status": st.integers(0, 255),
    "power_w": _float(*RANGES["power_w"], 32),
    "energy_wh": _float(*RANGES["energy_wh"], 64),
    "voltage_v": _float(*RANGES["voltage_v"], 32),
    "current_a": _float(*RANGES["current_a"], 32),
    "power_factor": _float(*RANGES["power_factor"], 32),
    "driver_temp_c": _float(*RANGES["driver_temp_c"], 32),
    "ambient_lux": _float(*RANGES["ambient_lux"], 32),
    "presence": st.integers(0, 65535),
    "failure": st.integers(0, 65535),
}
assert tuple(LUMINAIRE_FIELDS) == LUMINAIRE_DTYPE.names
LUMINAIRE_ROW = st.tuples(*LUMINAIRE_FIELDS.values())
SENSOR_ROW = st.sampled_from(Quantity).flatmap(
    lambda q: st.tuples(
        st.integers(TIME_MIN_US, LATEST),
        st.integers(0, 32767),  # the sensor column is a smallint
        st.just(int(q)),
        _float(q.low, q.high, 32),
    )
)


def luminaires(rows=LUMINAIRE_ROW, min_size=1, max_size=60):
    return st.lists(rows, min_size=min_size, max_size=max_size).map(
        lambda r: np.array(r, dtype=LUMINAIRE_DTYPE)
    )


def sensors(min_size=1, max_size=60):
    return st.lists(SENSOR_ROW, min_size=min_size, max_size=max_size).map(
        lambda r: np.array(r, dtype=SENSOR_DTYPE)
    )


def valid_luminaires(n, seed=0):
    rng = np.random.default_rng(seed)
    r = np.zeros(n, dtype=LUMINAIRE_DTYPE)
    r["time_us"] = NOW - rng.integers(0, 3_600_000_000, n)
    r["luminaire"] = rng.integers(0, 1024, n)
    r["level"] = rng.integers(0, 256, n)
    r["power_w"] = rng.uniform(0, 2000, n)
    r["energy_wh"] = rng.uniform(0, 1e9, n)
    r["voltage_v"] = rng.uniform(220, 240, n)
    r["current_a"] = rng.uniform(0, 1, n)
    r["power_factor"] = rng.uniform(0.9, 1, n)
    r["driver_temp_c"] = rng.uniform(20, 60, n)
    r["ambient_lux"] = rng.uniform(0, 1000, n)
    return r


def valid_sensors(n):
    r = np.zeros(n, dtype=SENSOR_DTYPE)
    r["time_us"] = NOW
    r["sensor"] = np.arange(n)
    r["quantity"] = Quantity.TEMPERATURE_C
    r["value"] = 12.5
    return r


def reasons(batch):
    return [(r.payload, r.record, r.reason) for r in batch.rejects]


def check_accounting(batch, n_payloads):
    """Every payload is either ok or has one whole-payload reject; every record of an ok
    payload is either kept or rejected, exactly once."""
    assert len(batch) == n_payloads
    rejects = list(batch.rejects)
    whole = {r.payload for r in rejects if r.record == -1}
    assert whole == set(np.flatnonzero(~batch.msg_ok).tolist())
    assert len(whole) == sum(r.record == -1 for r in rejects)
    assert all(isinstance(r.reason, RejectReason) for r in rejects)
    assert all(r.reason.whole_payload == (r.record == -1) for r in rejects)
    assert rejects == sorted(rejects, key=lambda r: (r.payload, r.record))
    for p in np.flatnonzero(batch.msg_ok):
        kept = int((batch.lum_msg == p).sum() + (batch.sensor_msg == p).sum())
        bad = [r.record for r in rejects if r.payload == p]
        assert kept + len(bad) == int(batch.msg_count[p])
        assert len(set(bad)) == len(bad)
        assert all(0 <= i < batch.msg_count[p] for i in bad)
    assert batch.luminaire.dtype == LUMINAIRE_DTYPE and batch.sensor.dtype == SENSOR_DTYPE
    assert batch.lum_msg.shape == batch.lum_seq.shape == batch.lum_boot.shape
    assert batch.lum_msg.shape[0] == batch.luminaire.shape[0]
    assert batch.sensor_msg.shape[0] == batch.sensor.shape[0]


# --- layout --------------------------------------------------------------------------------


def test_layout_sizes_and_offsets():
    assert HEADER_DTYPE.itemsize == 24
    assert LUMINAIRE_DTYPE.itemsize == 48
    assert SENSOR_DTYPE.itemsize == 16
    assert [LUMINAIRE_DTYPE.fields[n][1] for n in LUMINAIRE_DTYPE.names] == [
        0, 8, 10, 11, 12, 16, 24, 28, 32, 36, 40, 44, 46
    ]
    assert MAX_PAYLOAD_BYTES == 24 + 4096 * 48 and MAX_RECORDS_PER_MESSAGE == 4096


def test_header_bytes_are_the_documented_little_endian_layout():
    records = valid_luminaires(2)
    payload = encode_luminaire(0x0102030405060708, 0x1122334455667788, records)
    assert payload[:24] == struct.pack("<2sBBHHQQ", b"LC", 1, 1, 2, 48, 0x0102030405060708,
                                       0x1122334455667788)
    assert payload[24:] == records.tobytes()
    assert len(payload) == 24 + 2 * 48
    first = records[0]
    assert payload[24:72] == struct.pack(
        "<qHBBfdfffffHH", *(first[n].item() for n in LUMINAIRE_DTYPE.names)
    )
    sensor = valid_sensors(1)
    assert encode_sensor(1, 2, sensor)[:8] == b"LC\x01\x02\x01\x00\x10\x00"


def test_enums():
    assert LuminaireFailure.LAMP | LuminaireFailure.TILT == 65
    assert [f.value for f in LuminaireFailure if f] == [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]
    assert Quantity.NOISE_DBA.unit == "dB(A)" and Quantity.FREQUENCY_HZ.low == 45.0
    assert len({int(q) for q in Quantity}) == 14
    assert RecordType.LUMINAIRE.dtype == LUMINAIRE_DTYPE


def test_reject_reasons_are_stable_label_values():
    values = [r.value for r in RejectReason]
    assert all(v.replace("_", "a").replace(":", "a").isalpha() and v.islower() for v in values)
    assert values[:10] == [
        "empty", "truncated", "oversized", "bad_magic", "bad_version", "bad_record_type",
        "bad_record_size", "no_records", "too_many_records", "length_mismatch",
    ]
    for field in ("power_w", "energy_wh", "voltage_v", "current_a", "power_factor",
                  "driver_temp_c", "ambient_lux", "value"):
        assert f"not_finite:{field}" in values and f"out_of_range:{field}" in values
    for field in ("time_us", "luminaire", "quantity"):
        assert f"out_of_range:{field}" in values


# --- encoder arguments -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: encode_luminaire(1, 0, valid_sensors(2)), "dtype"),
        (lambda: encode_sensor(1, 0, valid_luminaires(2)), "dtype"),
        (lambda: encode_luminaire(1, 0, valid_luminaires(2).tolist()), "numpy array"),
        (lambda: encode_luminaire(1, 0, valid_luminaires(4).reshape(2, 2)), "one-dimensional"),
        (lambda: encode_luminaire(1, 0, valid_luminaires(0)), "no records"),
        (lambda: encode_luminaire(1, 0, valid_luminaires(4097)), "at most 4096"),
        (lambda: encode_luminaire(-1, 0, valid_luminaires(1)), "boot_id"),
        (lambda: encode_luminaire(1, 2**64, valid_luminaires(1)), "first_seq"),
        (lambda: encode_luminaire(1, 2**64 - 1, valid_luminaires(2)), r"2\*\*64"),
        (lambda: encode_luminaire(1.0, 0, valid_luminaires(1)), "boot_id must be an int"),
        (lambda: encode_luminaire(1, 0, valid_luminaires(2).astype(
            LUMINAIRE_DTYPE.newbyteorder(">"))), "dtype"),
    ],
)
def test_encoder_refuses_bad_arguments(call, message):
    with pytest.raises(CodecError, match=message):
        call()


def test_encoder_accepts_max_records_and_strided_input():
    records = valid_luminaires(2 * MAX_RECORDS_PER_MESSAGE)[::2]
    payload = encode_luminaire(1, 0, records)
    assert len(payload) == MAX_PAYLOAD_BYTES
    assert decode(payload, NOW).records.tobytes() == records.tobytes()


# --- round trips ---------------------------------------------------------------------------


@given(U64, U64, luminaires())
def test_luminaire_round_trip(boot_id, first_seq, records):
    first_seq = min(first_seq, 2**64 - len(records))
    decoded = decode(encode_luminaire(boot_id, first_seq, records), NOW)
    assert decoded.records.tobytes() == records.tobytes()
    assert (decoded.boot_id, decoded.first_seq) == (boot_id, first_seq)
    assert decoded.record_type is RecordType.LUMINAIRE
    assert decoded.record_count == len(records) and decoded.record_size == 48


@given(U64, U64, sensors())
def test_sensor_round_trip(boot_id, first_seq, records):
    first_seq = min(first_seq, 2**64 - len(records))
    decoded = decode(encode_sensor(boot_id, first_seq, records), NOW)
    assert decoded.records.tobytes() == records.tobytes()
    assert decoded.record_type is RecordType.SENSOR and decoded.record_size == 16


EDGE_ROWS = st.tuples(*(
    st.sampled_from([TIME_MIN_US, LATEST]) if name == "time_us"
    else st.sampled_from([0, 1023]) if name == "luminaire"
    else st.sampled_from([0, 254, 255]) if name in ("level", "status")
    else st.sampled_from([0, 65535]) if name in ("presence", "failure")
    else st.sampled_from([RANGES[name][0], RANGES[name][1], -0.0 if RANGES[name][0] == 0 else 0.0])
    for name in LUMINAIRE_DTYPE.names
))


@given(luminaires(EDGE_ROWS, max_size=10))
def test_edge_values_are_valid(records):
    batch = decode_batch([encode_luminaire(1, 0, records)], NOW)
    assert len(batch.rejects) == 0
    assert batch.luminaire.tobytes() == records.tobytes()


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=60)
@given(st.lists(st.tuples(st.booleans(), U64, st.integers(0, 2**63)), min_size=0, max_size=8),
       st.data())
def test_batch_round_trip(specs, data):
    payloads, expected_lum, expected_sen = [], [], []
    for index, (is_lum, boot_id, first_seq) in enumerate(specs):
        records = data.draw(luminaires(max_size=20) if is_lum else sensors(max_size=20))
        encode = encode_luminaire if is_lum else encode_sensor
        payloads.append(encode(boot_id, first_seq, records))
        target = expected_lum if is_lum else expected_sen
        target.extend((index, boot_id, first_seq + i, records[i : i + 1].tobytes())
                      for i in range(len(records)))
    batch = decode_batch(payloads, NOW)
    check_accounting(batch, len(payloads))
    assert len(batch.rejects) == 0 and batch.msg_ok.all()
    for records, msg, seq, boot, expected in (
        (batch.luminaire, batch.lum_msg, batch.lum_seq, batch.lum_boot, expected_lum),
        (batch.sensor, batch.sensor_msg, batch.sensor_seq, batch.sensor_boot, expected_sen),
    ):
        assert msg.tolist() == [e[0] for e in expected]
        assert boot.tolist() == [e[1] for e in expected]
        assert seq.tolist() == [e[2] for e in expected]
        assert records.tobytes() == b"".join(e[3] for e in expected)
    assert batch.msg_type.tolist() == [1 if s[0] else 2 for s in specs]
    assert batch.msg_boot.tolist() == [s[1] for s in specs]
    assert batch.msg_first_seq.tolist() == [s[2] for s in specs]


def test_empty_batch():
    batch = decode_batch([], NOW)
    assert len(batch) == 0 and len(batch.rejects) == 0 and batch.luminaire.shape == (0,)


def test_batch_accepts_bytearray_and_memoryview_payloads():
    payload = encode_luminaire(1, 5, valid_luminaires(3))
    wide = memoryview(bytearray(payload)).cast("I")  # 4-byte items: len() is not nbytes
    batch = decode_batch([bytearray(payload), memoryview(payload), wide], NOW)
    assert batch.msg_ok.all() and batch.luminaire.shape == (9,)


@pytest.mark.parametrize("bad", [b"LC", "text", bytearray(b"x")])
def test_batch_refuses_a_single_payload_in_place_of_a_sequence(bad):
    with pytest.raises(TypeError):
        decode_batch(bad, NOW)


@pytest.mark.parametrize("bad", [["text"], [1], [None]])
def test_batch_refuses_non_bytes_items(bad):
    with pytest.raises(TypeError, match="bytes-like"):
        decode_batch(bad, NOW)


def test_batch_refuses_non_int_now():
    with pytest.raises(TypeError, match="now_us"):
        decode_batch([], 1.5)
