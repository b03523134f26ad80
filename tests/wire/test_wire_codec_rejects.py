"""Binary telemetry codec: every malformed payload and invalid record gets its reason."""

import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_wire_codec import LATEST, NOW, check_accounting, reasons, valid_luminaires, valid_sensors

from wire.codec import (
    MAX_PAYLOAD_BYTES,
    CodecError,
    Quantity,
    decode,
    decode_batch,
    encode_luminaire,
    encode_sensor,
)
from wire.codec import (
    RejectReason as R,
)
from wire.records import LUMINAIRE_RANGES, TIME_MIN_US

GOOD = encode_luminaire(7, 100, valid_luminaires(3))
GOOD_SENSOR = encode_sensor(7, 100, valid_sensors(3))


def patched(payload, fmt, offset, value):
    data = bytearray(payload)
    struct.pack_into(fmt, data, offset, value)
    return bytes(data)


def whole_reason(payload):
    batch = decode_batch([payload], NOW)
    assert not batch.msg_ok[0]
    assert batch.luminaire.shape == (0,) and batch.sensor.shape == (0,)
    [(index, record, reason)] = reasons(batch)
    assert (index, record) == (0, -1)
    with pytest.raises(CodecError) as info:
        decode(payload, NOW)
    assert info.value.reason == reason and info.value.record == -1
    return reason


@pytest.mark.parametrize("payload", [GOOD, GOOD_SENSOR])
def test_truncated_at_every_length(payload):
    for length in range(len(payload)):
        expected = R.EMPTY if length == 0 else R.TRUNCATED if length < 24 else R.LENGTH_MISMATCH
        assert whole_reason(payload[:length]) == expected, length
    assert whole_reason(payload + b"\x00") == R.LENGTH_MISMATCH


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"XC" + GOOD[2:], R.BAD_MAGIC),
        (b"lc" + GOOD[2:], R.BAD_MAGIC),
        (patched(GOOD, "<B", 2, 0), R.BAD_VERSION),
        (patched(GOOD, "<B", 2, 2), R.BAD_VERSION),
        (patched(GOOD, "<B", 3, 0), R.BAD_RECORD_TYPE),
        (patched(GOOD, "<B", 3, 3), R.BAD_RECORD_TYPE),
        (patched(GOOD, "<B", 3, 255), R.BAD_RECORD_TYPE),
        (patched(GOOD, "<B", 3, 2), R.BAD_RECORD_SIZE),  # sensor type, luminaire size
        (patched(GOOD_SENSOR, "<B", 3, 1), R.BAD_RECORD_SIZE),
        (patched(GOOD, "<H", 6, 47), R.BAD_RECORD_SIZE),
        (patched(GOOD, "<H", 6, 16), R.BAD_RECORD_SIZE),
        (patched(GOOD, "<H", 4, 0), R.NO_RECORDS),
        (patched(GOOD, "<H", 4, 2), R.LENGTH_MISMATCH),
        (patched(GOOD, "<H", 4, 4), R.LENGTH_MISMATCH),
        (patched(GOOD, "<H", 4, 65535), R.TOO_MANY_RECORDS),
        (encode_sensor(1, 0, valid_sensors(4097 - 1)) + bytes(16), R.LENGTH_MISMATCH),
        (patched(encode_sensor(1, 0, valid_sensors(4096)) + bytes(16), "<H", 4, 4097),
         R.TOO_MANY_RECORDS),
        (encode_luminaire(1, 0, valid_luminaires(4096)) + b"\x00", R.OVERSIZED),
        (bytes(MAX_PAYLOAD_BYTES + 1), R.OVERSIZED),
        (bytes(24), R.BAD_MAGIC),
        (b"LC" + bytes(22), R.BAD_VERSION),
    ],
)
def test_corrupted_headers(payload, expected):
    assert whole_reason(payload) == expected


def test_the_largest_payload_is_accepted():
    payload = encode_luminaire(1, 0, valid_luminaires(4096))
    assert len(payload) == MAX_PAYLOAD_BYTES
    assert decode_batch([payload], NOW).luminaire.shape == (4096,)


FLOAT_FIELDS = [f for f, *_ in LUMINAIRE_RANGES if f != "luminaire"]


def one_bad(field, value, now=NOW):
    """Encode 3 valid records with record 1's `field` set to `value`; return its reason."""
    records = valid_luminaires(3)
    records[1][field] = value
    batch = decode_batch([encode_luminaire(9, 1000, records)], now)
    assert batch.msg_ok[0]
    assert batch.lum_seq.tolist() == [1000, 1002]  # the valid neighbours are kept
    assert batch.luminaire.tobytes() == records[[0, 2]].tobytes()
    [(payload, record, reason)] = reasons(batch)
    assert (payload, record) == (0, 1)
    with pytest.raises(CodecError) as info:
        decode(encode_luminaire(9, 1000, records), now)
    assert (info.value.reason, info.value.record) == (reason, 1)
    return reason


@pytest.mark.parametrize("field", FLOAT_FIELDS)
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_floats(field, value):
    assert one_bad(field, value) == f"not_finite:{field}"


@pytest.mark.parametrize(("field", "low", "high"), LUMINAIRE_RANGES)
def test_out_of_range_luminaire_fields(field, low, high):
    if low > 0 or field != "luminaire":
        below = np.nextafter(np.float32(low), np.float32(-np.inf)) if field != "energy_wh" \
            else np.nextafter(low, -np.inf)
        assert one_bad(field, below) == f"out_of_range:{field}"
    above = high + 1 if field == "luminaire" else (
        np.nextafter(np.float32(high), np.float32(np.inf)) if field != "energy_wh"
        else np.nextafter(high, np.inf))
    assert one_bad(field, above) == f"out_of_range:{field}"
    if field == "luminaire":
        assert one_bad(field, 65535) == "out_of_range:luminaire"


@pytest.mark.parametrize("time_us", [0, -1, TIME_MIN_US - 1, LATEST + 1, 2**63 - 1, -(2**63)])
def test_time_out_of_window(time_us):
    assert one_bad("time_us", time_us) == "out_of_range:time_us"


def test_time_window_follows_now():
    records = valid_luminaires(1)
    records["time_us"] = LATEST
    payload = encode_luminaire(1, 0, records)
    assert decode_batch([payload], NOW).msg_ok[0] and len(decode_batch([payload], NOW).rejects) == 0
    assert reasons(decode_batch([payload], NOW - 1)) == [(0, 0, R.OUT_OF_RANGE_TIME_US)]
    assert decode(payload).records.shape == (1,)  # no upper bound without now
    assert len(decode_batch([payload], 2**63 - 1).rejects) == 0  # no overflow
    assert reasons(decode_batch([payload], -(2**63)))[0][2] == R.OUT_OF_RANGE_TIME_US


def test_first_failing_field_wins():
    records = valid_luminaires(1)
    records["power_w"] = np.nan
    records["voltage_v"] = -5
    assert reasons(decode_batch([encode_luminaire(1, 0, records)], NOW))[0][2] == R.NOT_FINITE_POWER_W
    records["time_us"] = 0
    assert reasons(decode_batch([encode_luminaire(1, 0, records)], NOW))[0][2] == R.OUT_OF_RANGE_TIME_US


def sensor_reason(quantity, value, time_us=NOW):
    records = valid_sensors(2)
    records[0] = (time_us, 3, quantity, value)
    batch = decode_batch([encode_sensor(1, 50, records)], NOW)
    assert batch.sensor_seq.tolist() == ([50, 51] if not batch.rejects.payload.size else [51])
    found = reasons(batch)
    return found[0][2] if found else None


@pytest.mark.parametrize("q", list(Quantity))
def test_sensor_ranges_per_quantity(q):
    assert sensor_reason(q, q.low) is None
    assert sensor_reason(q, q.high) is None
    below = np.nextafter(np.float32(q.low), np.float32(-np.inf))
    above = np.nextafter(np.float32(q.high), np.float32(np.inf))
    assert sensor_reason(q, below) == R.OUT_OF_RANGE_VALUE
    assert sensor_reason(q, above) == R.OUT_OF_RANGE_VALUE
    for value in (np.nan, np.inf, -np.inf):
        assert sensor_reason(q, value) == R.NOT_FINITE_VALUE


@pytest.mark.parametrize("quantity", [0, 15, 16, 1000, 65535])
def test_unknown_quantity(quantity):
    assert sensor_reason(quantity, 1.0) == R.OUT_OF_RANGE_QUANTITY


def test_sensor_time_window():
    assert sensor_reason(Quantity.NOISE_DBA, 50.0, time_us=TIME_MIN_US - 1) == R.OUT_OF_RANGE_TIME_US
    assert sensor_reason(Quantity.NOISE_DBA, 50.0, time_us=LATEST + 1) == R.OUT_OF_RANGE_TIME_US


def test_mixed_batch_keeps_valid_records_of_a_partly_bad_payload():
    partly = valid_luminaires(5, seed=1)
    partly[1]["power_w"] = np.nan
    partly[3]["luminaire"] = 2000
    good = valid_luminaires(4, seed=2)
    sensors = valid_sensors(2)
    sensors[1]["value"] = 1000.0  # too hot
    payloads = [
        encode_luminaire(11, 0, good),
        b"garbage",
        encode_luminaire(22, 500, partly),
        GOOD[:-1],
        encode_sensor(33, 7, sensors),
    ]
    batch = decode_batch(payloads, NOW)
    check_accounting(batch, len(payloads))
    assert batch.msg_ok.tolist() == [True, False, True, False, True]
    assert reasons(batch) == [
        (1, -1, R.TRUNCATED),
        (2, 1, R.NOT_FINITE_POWER_W),
        (2, 3, R.OUT_OF_RANGE_LUMINAIRE),
        (3, -1, R.LENGTH_MISMATCH),
        (4, 1, R.OUT_OF_RANGE_VALUE),
    ]
    assert batch.luminaire.tobytes() == good.tobytes() + partly[[0, 2, 4]].tobytes()
    assert batch.lum_msg.tolist() == [0, 0, 0, 0, 2, 2, 2]
    assert batch.lum_seq.tolist() == [0, 1, 2, 3, 500, 502, 504]
    assert batch.lum_boot.tolist() == [11] * 4 + [22] * 3
    assert batch.sensor.tobytes() == sensors[:1].tobytes()
    assert (batch.sensor_msg.tolist(), batch.sensor_seq.tolist()) == ([4], [7])
    assert batch.msg_count.tolist()[0::2] == [4, 5, 2]
    assert batch.rejects.counts() == {
        R.TRUNCATED: 1, R.NOT_FINITE_POWER_W: 1, R.OUT_OF_RANGE_LUMINAIRE: 1,
        R.LENGTH_MISMATCH: 1, R.OUT_OF_RANGE_VALUE: 1,
    }


def test_decode_refuses_non_bytes():
    with pytest.raises(TypeError):
        decode("LC")


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.binary(max_size=200), max_size=12), st.integers(-(2**63), 2**63 - 1))
def test_batch_never_raises_on_arbitrary_bytes(payloads, now_us):
    batch = decode_batch(payloads, now_us)
    check_accounting(batch, len(payloads))


@st.composite
def mutated(draw):
    """A valid payload with a few bytes overwritten, cut, or extended."""
    is_lum = draw(st.booleans())
    n = draw(st.integers(1, 6))
    payload = bytearray(encode_luminaire(3, 9, valid_luminaires(n, seed=n)) if is_lum
                        else encode_sensor(3, 9, valid_sensors(n)))
    for _ in range(draw(st.integers(0, 4))):
        at = draw(st.integers(0, len(payload) - 1))
        payload[at] = draw(st.integers(0, 255))
    cut = draw(st.sampled_from(["none", "cut", "grow"]))
    if cut == "cut":
        payload = payload[: draw(st.integers(0, len(payload)))]
    elif cut == "grow":
        payload += draw(st.binary(min_size=1, max_size=60))
    return bytes(payload)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(mutated(), max_size=8))
def test_batch_never_raises_on_mutated_payloads(payloads):
    batch = decode_batch(payloads, NOW)
    check_accounting(batch, len(payloads))
    for i, payload in enumerate(payloads):  # one at a time agrees with the batch
        single = decode_batch([payload], NOW)
        assert single.msg_ok[0] == batch.msg_ok[i]
        assert [(r, why) for _, r, why in reasons(single)] == [
            (r, why) for p, r, why in reasons(batch) if p == i
        ]
