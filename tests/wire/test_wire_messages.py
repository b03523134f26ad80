"""JSON messages: round trips of every model, and readable refusals."""

import json
from datetime import UTC, datetime, time, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from wire.messages import (
    COMMAND_TYPES,
    Ack,
    AckStatus,
    ConfigCommand,
    ControllerConfig,
    Event,
    EventKind,
    GroupTarget,
    Identify,
    LuminaireTarget,
    MessageError,
    OfflineReason,
    PresenceBoost,
    ReadDiagnostics,
    Reboot,
    Schedule,
    ScheduleCommand,
    ScheduleStep,
    SetLevel,
    Severity,
    State,
    command_id_of,
    dumps,
    loads,
    parse_command,
)

T0 = datetime(2025, 6, 1, 20, 0, tzinfo=UTC)
U64 = st.integers(0, 2**64 - 1)
CONTROLLERS = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")
TIMES = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=2)),
                               timezone(timedelta(hours=-5, minutes=-30))]),
)
TARGETS = st.one_of(
    st.just("all"),
    st.builds(LuminaireTarget, luminaire=st.integers(0, 1023)),
    st.builds(GroupTarget, group=st.integers(0, 15)),
)
TEXT = st.characters(exclude_characters="\x00")  # surrogates are excluded by default
DETAIL = st.dictionaries(
    st.text(TEXT, min_size=1, max_size=64),
    st.one_of(st.booleans(), st.integers(-(2**53) + 1, 2**53 - 1),
              st.floats(-(2**53), 2**53), st.text(TEXT, max_size=256)),
    max_size=32,
)
STEPS = st.one_of(
    st.builds(ScheduleStep, anchor=st.sampled_from(["sunset", "sunrise"]),
              offset_min=st.integers(-720, 720), level=st.integers(0, 254)),
    st.builds(ScheduleStep, anchor=st.just("clock"), at=st.times(), level=st.integers(0, 254)),
)
SCHEDULES = st.builds(
    Schedule,
    timezone=st.sampled_from(["Europe/Brussels", "UTC", "America/New_York", "Asia/Kolkata"]),
    steps=st.lists(STEPS, min_size=1, max_size=48).map(tuple),
    presence=st.none() | st.builds(PresenceBoost, level=st.integers(0, 254),
                                   hold_s=st.integers(1, 3600), fade_s=st.floats(0, 90.5)),
    clo=st.booleans(),
)
CONFIGS = st.builds(
    ControllerConfig,
    telemetry_interval_s=st.integers(5, 3600),
    records_per_message=st.integers(1, 4096),
    buffer_max_bytes=st.integers(1 << 16, 1 << 32),
    buffer_max_age_s=st.integers(60, 90 * 86400),
    mqtt_keepalive_s=st.integers(5, 3600),
)


def command(cls, **fields):
    return st.builds(cls, issued_at=st.just(T0),
                     expires_at=st.integers(1, 10**6).map(lambda s: T0 + timedelta(seconds=s)),
                     **fields)


MESSAGES = st.one_of(
    st.builds(Event, controller=CONTROLLERS, boot_id=U64, seq=U64, kind=st.sampled_from(EventKind),
              severity=st.sampled_from(Severity), time=TIMES,
              luminaire=st.none() | st.integers(0, 1023), detail=DETAIL),
    command(SetLevel, target=TARGETS, level=st.integers(0, 254),
            duration_s=st.none() | st.integers(1, 7 * 86400), fade_s=st.floats(0, 90.5)),
    command(Identify, target=TARGETS, duration_s=st.integers(1, 3600)),
    command(ScheduleCommand, target=TARGETS, schedule=SCHEDULES),
    command(ConfigCommand, config=CONFIGS),
    command(ReadDiagnostics, target=TARGETS),
    command(Reboot, delay_s=st.integers(0, 3600)),
    st.builds(Ack, controller=CONTROLLERS, boot_id=U64, seq=U64, command_id=st.uuids().map(str),
              status=st.sampled_from(AckStatus), reason=st.text(TEXT, min_size=1, max_size=256),
              time=TIMES),
    st.builds(State, controller=CONTROLLERS, boot_id=U64, seq=U64, online=st.just(False),
              firmware=st.text(TEXT, min_size=1, max_size=64), time=TIMES,
              luminaires=st.integers(0, 1024), reason=st.none() | st.sampled_from(OfflineReason)),
    CONFIGS,
)


@given(MESSAGES)
def test_every_message_round_trips(message):
    data = dumps(message)
    assert isinstance(data, bytes) and b"\n" not in data and b'", "' not in data
    assert loads(type(message), data) == message
    assert json.loads(data)["v"] == 1 and json.loads(data)["id"] == message.id
    if type(message) in COMMAND_TYPES:
        assert parse_command(data) == message
        assert parse_command(data.decode()) == message


@given(MESSAGES)
def test_times_are_utc(message):
    for name, value in message:
        if isinstance(value, datetime):
            assert value.utcoffset() == timedelta(0), name


def event(**overrides):
    fields = dict(controller="c-1", boot_id=1, seq=2, kind="boot", severity="info", time=T0)
    return Event(**(fields | overrides))


def test_defaults_and_immutability():
    a, b = event(), event()
    assert a.v == 1 and len(a.id) == 32 and a.id != b.id
    with pytest.raises(ValueError):
        a.seq = 3  # frozen


def reason(cls, payload):
    with pytest.raises(MessageError) as info:
        loads(cls, json.dumps(payload) if not isinstance(payload, (bytes, str)) else payload)
    text = str(info.value)
    assert "pydantic" not in text and "Traceback" not in text and "https://" not in text
    return text


GOOD_EVENT = json.loads(dumps(event(detail={"current_a": 1.5})))
GOOD_SET = json.loads(dumps(SetLevel(issued_at=T0, expires_at=T0 + timedelta(minutes=5),
                                     target="all", level=100)))


@pytest.mark.parametrize(
    ("cls", "payload", "expected"),
    [
        (Event, GOOD_EVENT | {"v": 2}, "v: Input should be 1"),
        (Event, GOOD_EVENT | {"extra": 1}, "extra: Extra inputs are not permitted"),
        (Event, GOOD_EVENT | {"kind": "explosion"}, "kind: Input should be"),
        (Event, GOOD_EVENT | {"severity": "meh"}, "severity"),
        (Event, GOOD_EVENT | {"time": "2025-06-01T20:00:00"}, "time: Input should have timezone"),
        (Event, GOOD_EVENT | {"controller": "a/b"}, "controller 'a/b' contains '/'"),
        (Event, GOOD_EVENT | {"luminaire": 1024}, "luminaire"),
        (Event, GOOD_EVENT | {"seq": -1}, "seq"),
        (Event, GOOD_EVENT | {"boot_id": 2**64}, "boot_id"),
        (Event, GOOD_EVENT | {"detail": {"k": [1]}}, "detail.k"),
        (Event, GOOD_EVENT | {"detail": {str(i): i for i in range(33)}}, "detail"),
        (Event, GOOD_EVENT | {"detail": {"k": "x" * 257}}, "detail.k"),
        (Event, {k: v for k, v in GOOD_EVENT.items() if k != "seq"}, "seq: Field required"),
        (Event, b"{not json", "Invalid JSON"),
        (Event, b"[]", "Input should be an object"),
        (SetLevel, GOOD_SET | {"level": 255}, "level"),
        (SetLevel, GOOD_SET | {"target": {"group": 16}}, "target"),
        (SetLevel, GOOD_SET | {"target": "some"}, "target"),
        (SetLevel, GOOD_SET | {"fade_s": 91}, "fade_s"),
        (SetLevel, GOOD_SET | {"expires_at": GOOD_SET["issued_at"]},
         "expires_at must be after issued_at"),
        (Ack, {"controller": "c", "boot_id": 1, "seq": 1, "command_id": "x", "status": "failed",
               "time": "2025-06-01T20:00:00Z"}, "a failed ack needs a reason"),
        (Ack, {"controller": "c", "boot_id": 1, "seq": 1, "command_id": "x", "status": "refused",
               "time": "2025-06-01T20:00:00Z"}, "a refused ack needs a reason"),
        (State, {"controller": "c", "boot_id": 1, "seq": 1, "online": True, "firmware": "1.0",
                 "time": "2025-06-01T20:00:00Z", "reason": "shutdown"}, "no offline reason"),
        (ControllerConfig, {"telemetry_interval_s": 4}, "telemetry_interval_s"),
        (ControllerConfig, {"telemetry_interval_s": 3601}, "telemetry_interval_s"),
    ],
)
def test_refusals_are_readable(cls, payload, expected):
    assert expected in reason(cls, payload)


def schedule_command(schedule):
    return {"type": "schedule", "issued_at": "2025-06-01T20:00:00Z",
            "expires_at": "2025-06-01T21:00:00Z", "schedule": schedule}


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b'{"type": "dance"}', "type"),
        (b"{}", "discriminator 'type'"),
        (schedule_command({"timezone": "Mars/Olympus", "steps": [
            {"anchor": "sunset", "level": 200}]}), "unknown IANA time zone 'Mars/Olympus'"),
        (schedule_command({"timezone": "../../etc/passwd", "steps": [
            {"anchor": "sunset", "level": 200}]}), "unknown IANA time zone"),
        (schedule_command({"steps": []}), "steps"),
        (schedule_command({"steps": [{"anchor": "clock", "level": 10}]}), "needs `at`"),
        (schedule_command({"steps": [{"anchor": "sunset", "at": "22:00", "level": 10}]}),
         "takes offset_min"),
        (schedule_command({"steps": [{"anchor": "sunset", "offset_min": 721, "level": 10}]}),
         "offset_min"),
        (schedule_command({"steps": [{"anchor": "noon", "level": 10}]}), "anchor"),
    ],
)
def test_parse_command_refusals(data, expected):
    with pytest.raises(MessageError) as info:
        parse_command(json.dumps(data) if isinstance(data, dict) else data)
    assert expected in str(info.value)


def test_parse_command_refuses_non_text():
    with pytest.raises(MessageError, match="expected JSON"):
        parse_command(12)


def test_schedule_command_parses_to_its_model():
    cmd = parse_command(json.dumps(schedule_command({"steps": [
        {"anchor": "sunset", "offset_min": -15, "level": 254},
        {"anchor": "clock", "at": "23:30", "level": 120},
        {"anchor": "sunrise", "offset_min": 10, "level": 0},
    ], "presence": {"level": 254, "hold_s": 90}, "clo": True})))
    assert isinstance(cmd, ScheduleCommand)
    assert cmd.schedule.timezone == "Europe/Brussels" and cmd.target == "all"
    assert cmd.schedule.steps[1].at == time(23, 30)
    assert cmd.schedule.presence.fade_s == 2.0 and cmd.schedule.clo


def test_is_expired():
    cmd = Reboot(issued_at=T0, expires_at=T0 + timedelta(seconds=60))
    assert not cmd.is_expired(T0 + timedelta(seconds=59))
    assert cmd.is_expired(T0 + timedelta(seconds=60))
    assert cmd.is_expired(datetime(2025, 6, 1, 22, 1, tzinfo=timezone(timedelta(hours=2))))
    with pytest.raises(ValueError):
        cmd.is_expired(datetime(2025, 6, 1))


def test_timestamps_are_converted_to_utc():
    cmd = Identify(issued_at="2025-06-01T22:00:00+02:00", expires_at="2025-06-01T20:05:00Z",
                   target={"luminaire": 3})
    assert cmd.issued_at == T0 and cmd.issued_at.tzinfo == UTC
    assert dumps(cmd).count(b"Z\"") == 2


def test_every_model_forbids_extra_fields_and_is_frozen():
    for cls in (Event, Ack, State, ControllerConfig, Schedule, ScheduleStep, PresenceBoost,
                GroupTarget, LuminaireTarget, *COMMAND_TYPES):
        assert issubclass(cls, BaseModel)
        assert cls.model_config["extra"] == "forbid" and cls.model_config["frozen"], cls


@pytest.mark.parametrize(("payload", "expected"), [
    (b'{"id": "cmd-1", "type": "set_level", "level": 999}', "cmd-1"),  # invalid, id usable
    (b'{"id": "a:b.c_d-9"}', "a:b.c_d-9"),
    (b'{"id": "x" }', "x"),
    (b'{"id": ""}', None),
    (b'{"id": "has space"}', None),
    (b'{"id": "' + b"x" * 65 + b'"}', None),
    (b'{"id": 12}', None),
    (b'["id"]', None),
    (b"not json", None),
    (b"\xff\xfe", None),
])
def test_a_refused_command_is_answered_by_its_id_only_when_it_has_a_usable_one(
        payload: bytes, expected: str | None) -> None:
    assert command_id_of(payload) == expected
