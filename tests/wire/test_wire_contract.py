"""The contract refuses what the database cannot store faithfully: strings with NUL or unpaired
surrogates, times outside the calendar or the telemetry window, unbounded numbers, record fields
outside the column they land in."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import pytest

from wire.codec import SENSOR_DTYPE, Quantity, decode_batch, encode_sensor
from wire.messages import Ack, Event, MessageError, State, loads
from wire.records import TIME_MAX_AHEAD_US, TIME_MIN_US
from wire.rejects import RejectReason

NOW_US = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z
EVENT = {"v": 1, "id": "e1", "controller": "C", "boot_id": 1, "seq": 1, "kind": "boot",
         "severity": "info", "time": "2026-01-01T00:00:00Z"}
ACK = {"v": 1, "id": "a1", "controller": "C", "boot_id": 1, "seq": 2, "command_id": "cmd-1",
       "status": "failed", "reason": "no answer", "time": "2026-01-01T00:00:00Z"}
STATE = {"v": 1, "id": "s1", "controller": "C", "boot_id": 1, "seq": 3, "online": True,
         "firmware": "1.2.0", "time": "2026-01-01T00:00:00Z"}


def refusal(cls: type, fields: dict, now_us: int | None = None) -> str:
    with pytest.raises(MessageError) as info:
        if now_us is None:
            loads(cls, json.dumps(fields))
        else:
            loads(cls, json.dumps(fields), now_us=now_us)
    return str(info.value)


# --- finding 1: a NUL character in an event's detail -------------------------------------


@pytest.mark.parametrize("detail", [{"note": "a\u0000b"}, {"a\u0000b": 1}, {"\u0000": "x"}])
def test_event_detail_refuses_nul(detail: dict) -> None:
    assert "NUL" in refusal(Event, EVENT | {"detail": detail})


@pytest.mark.parametrize(
    ("cls", "fields"),
    [(Ack, ACK | {"reason": "bad\u0000"}), (State, STATE | {"firmware": "1.0\u0000"})],
)
def test_free_text_of_acks_and_states_refuses_nul(cls: type, fields: dict) -> None:
    assert "NUL" in refusal(cls, fields)


@pytest.mark.parametrize("text", ["\ud800", "a\udfffb", "\udc00\ud800"])
def test_strings_refuse_unpaired_surrogates_built_in_python(text: str) -> None:
    with pytest.raises(ValueError, match="surrogate"):
        Event(controller="C", boot_id=1, seq=1, kind="boot", severity="info",
              time=datetime(2026, 1, 1, tzinfo=UTC), detail={"note": text})
    with pytest.raises(ValueError, match="surrogate"):
        State(controller="C", boot_id=1, seq=1, online=True, firmware=text,
              time=datetime(2026, 1, 1, tzinfo=UTC))


def test_strings_refuse_unpaired_surrogates_in_json() -> None:
    # JSON escapes of a lone surrogate, and the same as raw (invalid UTF-8) bytes
    escaped = json.dumps(EVENT | {"detail": {"note": "\ud800"}})
    assert "\\ud800" in escaped
    with pytest.raises(MessageError):
        loads(Event, escaped)
    raw = json.dumps(EVENT | {"detail": {"note": "\ud800"}}, ensure_ascii=False).encode(
        "utf-8", "surrogatepass")
    with pytest.raises(MessageError):
        loads(Event, raw)


def test_a_surrogate_pair_is_a_character_and_welcome() -> None:
    event = loads(Event, json.dumps(EVENT | {"detail": {"note": "\U0001f4a1"}}))
    assert event.detail["note"] == "\U0001f4a1"


# --- finding 2: an event time at the edge of the calendar ---------------------------------


@pytest.mark.parametrize("when", ["9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00"])
@pytest.mark.parametrize(("cls", "fields"), [(Event, EVENT), (Ack, ACK), (State, STATE)])
def test_time_outside_the_utc_calendar_is_a_message_error(cls: type, fields: dict,
                                                           when: str) -> None:
    assert "time" in refusal(cls, fields | {"time": when})


# --- finding 4: event times have the telemetry window -------------------------------------


def _iso(us: int) -> str:
    return datetime.fromtimestamp(us / 1e6, UTC).isoformat()


@pytest.mark.parametrize(("cls", "fields"), [(Event, EVENT), (Ack, ACK), (State, STATE)])
def test_reported_times_use_the_telemetry_window(cls: type, fields: dict) -> None:
    for inside in (TIME_MIN_US, NOW_US, NOW_US + TIME_MAX_AHEAD_US):
        assert loads(cls, json.dumps(fields | {"time": _iso(inside)}), now_us=NOW_US)
    for outside in (TIME_MIN_US - 1_000_000, NOW_US + TIME_MAX_AHEAD_US + 1_000_000):
        assert "time" in refusal(cls, fields | {"time": _iso(outside)}, now_us=NOW_US)
    for year in ("0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"):
        assert "time" in refusal(cls, fields | {"time": year}, now_us=NOW_US)


# --- JSON numbers are bounded ---------------------------------------------------------------


@pytest.mark.parametrize("value", [2**53, -(2**53), 10**30, -(10**400)])
def test_detail_integers_are_bounded(value: int) -> None:
    refusal(Event, EVENT | {"detail": {"n": value}})


@pytest.mark.parametrize("token", ["Infinity", "-Infinity", "NaN", "1e999"])
def test_detail_numbers_are_finite(token: str) -> None:
    text = json.dumps(EVENT | {"detail": {"x": 0}}).replace('"x": 0', f'"x": {token}')
    with pytest.raises(MessageError):
        loads(Event, text)


@pytest.mark.parametrize("value", [2.0**53, -1e16, 1.5e308, -1e300])
def test_detail_floats_are_bounded(value: float) -> None:
    refusal(Event, EVENT | {"detail": {"x": value}})


def test_detail_numbers_at_the_bounds_are_kept() -> None:
    detail = {"a": 2**53 - 1, "b": -(2**53) + 1, "c": 9007199254740991.0, "d": 5e-324, "e": -0.5}
    event = loads(Event, json.dumps(EVENT | {"detail": detail}))
    assert event.detail == detail
    assert [type(v) for v in event.detail.values()] == [int, int, float, float, float]


def test_huge_json_is_refused_before_parsing() -> None:
    text = json.dumps(EVENT | {"detail": {"note": "x"}}) + " " * (1 << 20)
    assert "bytes" in str(pytest.raises(MessageError, loads, Event, text).value)


# --- finding 3: a sensor index above 32,767 ---------------------------------------------------


def test_sensor_index_beyond_its_smallint_column_is_rejected() -> None:
    records = np.zeros(3, dtype=SENSOR_DTYPE)
    records["time_us"] = NOW_US
    records["sensor"] = [32767, 32768, 40000]
    records["quantity"] = Quantity.NOISE_DBA
    records["value"] = 50.0
    batch = decode_batch([encode_sensor(1, 0, records)], NOW_US)
    assert batch.sensor["sensor"].tolist() == [32767]
    assert [(r.record, r.reason) for r in batch.rejects] == [
        (1, RejectReason("out_of_range:sensor")), (2, RejectReason("out_of_range:sensor"))]


# --- JSON types are not converted -----------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "fields"),
    [(Event, EVENT | {"boot_id": False}), (Event, EVENT | {"seq": "5"}),
     (Event, EVENT | {"seq": 5.0}), (Event, EVENT | {"luminaire": True}),
     (State, STATE | {"luminaires": True}), (State, STATE | {"online": 1}),
     (Ack, ACK | {"boot_id": "1"})],
)
def test_a_json_value_of_another_type_is_refused_not_converted(cls: type, fields: dict) -> None:
    refusal(cls, fields)
