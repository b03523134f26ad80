"""JSON messages of the edge-cloud contract: events, commands, acks, birth/death, config.

What a controller reports (events, acks, states) is checked so that it can be stored as sent:
strings hold no NUL and no unpaired surrogate, integers stay within what a JSON reader keeps
exactly (|n| < 2**53), floats are finite, times exist in UTC and, when parsed with `now_us`, lie
in the telemetry window [2015-01-01, now + 1 day].
"""

from __future__ import annotations

import json
import math
import numbers
import re
import uuid
import zoneinfo
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal, TypeVar

import numpy as np
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    model_validator,
)

from wire.records import TIME_MAX_AHEAD_US, TIME_MIN_US
from wire.topics import Kind, validate_identifier

U64_MAX = (1 << 64) - 1
MAX_DETAIL_ITEMS = 32
DALI_MAX_FADE_S = 90.5  # longest DALI fade time
JSON_INT_MAX = (1 << 53) - 1
"""Largest magnitude of a number in a detail: every JSON reader (a browser's too) keeps integers
up to here exactly, and a float up to here is written without an exponent, so PostgreSQL's jsonb
gives it back as the same float (1e300 would come back as a 301-digit integer)."""
MAX_JSON_BYTES = 64 * 1024
"""Longest JSON message accepted (bytes, or characters of a str); longer ones are not parsed."""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class MessageError(ValueError):
    """A JSON message that does not follow the contract; the text says why."""


def text_problem(value: str) -> str | None:
    """Why `value` cannot be stored as text (PostgreSQL and UTF-8 refuse it), or None."""
    if "\x00" in value:
        return "contains a NUL character"
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "contains an unpaired surrogate"
    return None


def _text(value: str) -> str:
    problem = text_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


def _utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00, 9999-12-31T23:59-01:00
        raise ValueError("is outside the calendar once converted to UTC") from None


def epoch_us(value: datetime) -> int:
    """An aware datetime as µs since the Unix epoch (the unit of telemetry record times)."""
    return (value - _EPOCH) // _MICROSECOND


def _in_window(value: datetime, info: ValidationInfo) -> datetime:
    """Reported times lie in the telemetry window when the message is parsed with `now_us`."""
    now_us = info.context.get("now_us") if isinstance(info.context, dict) else None
    if now_us is None:
        return value
    at = epoch_us(value)
    if at < TIME_MIN_US:
        raise ValueError("is before 2015-01-01T00:00:00Z")
    if at > now_us + TIME_MAX_AHEAD_US:
        raise ValueError("is more than one day ahead of the receiver's clock")
    return value


def _controller(value: str) -> str:
    return validate_identifier(value, "controller")


def _timezone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown IANA time zone {value!r}") from None
    return value


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be finite")
    return value


def _new_id() -> str:
    return uuid.uuid4().hex


UtcTime = Annotated[AwareDatetime, AfterValidator(_utc)]
"""An aware datetime (naive ones are refused), stored in UTC."""
ReportedTime = Annotated[AwareDatetime, AfterValidator(_utc), AfterValidator(_in_window)]
"""A time a controller reports: UTC, and inside the telemetry window on receipt."""
Text = Annotated[str, AfterValidator(_text)]
"""A string that can be stored as text: no NUL, no unpaired surrogate."""
ControllerId = Annotated[str, AfterValidator(_controller)]
_MESSAGE_ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"
_MESSAGE_ID = re.compile(_MESSAGE_ID_PATTERN)
MessageId = Annotated[str, Field(min_length=1, max_length=64, pattern=_MESSAGE_ID_PATTERN)]
BootId = Annotated[int, Field(ge=0, le=U64_MAX)]
Seq = Annotated[int, Field(ge=0, le=U64_MAX)]
LuminaireIndex = Annotated[int, Field(ge=0, le=1023)]
ArcLevel = Annotated[int, Field(ge=0, le=254)]
"""DALI arc power level: 0 off, 1..254 on the gear's logarithmic dimming curve."""
FadeSeconds = Annotated[float, Field(ge=0, le=DALI_MAX_FADE_S)]
DetailKey = Annotated[Text, Field(min_length=1, max_length=64)]
MAX_DETAIL_TEXT = 256


def _detail_value(value: object) -> bool | int | float | str:
    """One check per JSON type: an integer out of bounds must not turn into a float."""
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, numbers.Integral):  # numpy integers too, when built in Python
        if not -JSON_INT_MAX <= int(value) <= JSON_INT_MAX:
            raise ValueError(f"integer beyond ±{JSON_INT_MAX}")
        return int(value)
    if isinstance(value, numbers.Real):
        if not -JSON_INT_MAX <= _finite(float(value)) <= JSON_INT_MAX:
            raise ValueError(f"number beyond ±{JSON_INT_MAX}")
        return float(value)
    if isinstance(value, str):
        if len(value) > MAX_DETAIL_TEXT:
            raise ValueError(f"text of {len(value)} characters; at most {MAX_DETAIL_TEXT}")
        return _text(value)
    raise ValueError("must be a boolean, a number or a string")


DetailValue = Annotated[bool | int | float | str, PlainValidator(_detail_value)]
"""A detail's value: boolean, number (|x| <= JSON_INT_MAX; floats finite), or text."""


class _Message(BaseModel):
    """Fields every JSON message has: a version and an id."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    v: Literal[1] = 1
    id: MessageId = Field(default_factory=_new_id)


class _FromController(_Message):
    """A message sent up by a controller: (controller, boot_id, seq) identify it for dedup."""

    controller: ControllerId
    boot_id: BootId
    seq: Seq


# --- events ------------------------------------------------------------------------------


class EventKind(StrEnum):
    """What happened on a controller."""

    FAULT_RAISED = "fault_raised"
    FAULT_CLEARED = "fault_cleared"
    LAMP_FAILURE = "lamp_failure"
    DRIVER_FAILURE = "driver_failure"
    COMM_LOSS = "comm_loss"
    POWER_RESTORED = "power_restored"
    TAMPER = "tamper"
    TILT = "tilt"
    CONFIG_APPLIED = "config_applied"
    SCHEDULE_APPLIED = "schedule_applied"
    BOOT = "boot"
    MODBUS_ERROR = "modbus_error"
    DALI_ERROR = "dali_error"
    BUFFER_DROPPED = "buffer_dropped"
    DIAGNOSTICS = "diagnostics"  # a D4i diagnostics/energy report, answering read_diagnostics
    INVENTORY = "inventory"  # gear found at commissioning: GTIN, serial, model per luminaire


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class Event(_FromController):
    """Something a controller noticed, about itself or one luminaire."""

    kind: EventKind
    severity: Severity
    time: ReportedTime
    luminaire: LuminaireIndex | None = None
    detail: Annotated[dict[DetailKey, DetailValue], Field(max_length=MAX_DETAIL_ITEMS)] = Field(
        default_factory=dict
    )


# --- commands ----------------------------------------------------------------------------


class LuminaireTarget(BaseModel):
    """One luminaire of the controller, by index (bus * 64 + DALI short address)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    luminaire: LuminaireIndex


class GroupTarget(BaseModel):
    """A DALI group, 0..15."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    group: Annotated[int, Field(ge=0, le=15)]


Target = LuminaireTarget | GroupTarget | Literal["all"]
"""`{"luminaire": n}`, `{"group": g}` or `"all"`."""


class _Command(_Message):
    """Fields of every command: when it was issued and when it stops being worth obeying."""

    issued_at: UtcTime
    expires_at: UtcTime

    @model_validator(mode="after")
    def _expiry_after_issue(self) -> _Command:
        if self.expires_at <= self.issued_at:
            raise ValueError("expires_at must be after issued_at")
        return self

    def is_expired(self, now: datetime) -> bool:
        """True when `now` (an aware datetime) is at or past expires_at."""
        if now.tzinfo is None:
            raise ValueError("now must be an aware datetime")
        return now >= self.expires_at


class SetLevel(_Command):
    """Set an arc level now; after duration_s (if given) the schedule takes over again."""

    type: Literal["set_level"] = "set_level"
    target: Target
    level: ArcLevel
    duration_s: Annotated[int, Field(ge=1, le=7 * 86_400)] | None = None
    fade_s: FadeSeconds = 0.0


class Identify(_Command):
    """Make the target blink so a field technician can find it."""

    type: Literal["identify"] = "identify"
    target: Target
    duration_s: Annotated[int, Field(ge=1, le=3600)] = 30


class Anchor(StrEnum):
    SUNSET = "sunset"
    SUNRISE = "sunrise"
    CLOCK = "clock"


class ScheduleStep(BaseModel):
    """From this moment on, dim to `level`: sunset/sunrise + offset_min, or local clock time."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    anchor: Anchor
    offset_min: Annotated[int, Field(ge=-720, le=720)] = 0
    at: time | None = None  # local wall-clock time, for clock anchors only
    level: ArcLevel

    @model_validator(mode="after")
    def _clock_has_time(self) -> ScheduleStep:
        if self.anchor is Anchor.CLOCK and self.at is None:
            raise ValueError("a clock step needs `at`, its local time")
        if self.anchor is not Anchor.CLOCK and self.at is not None:
            raise ValueError(f"a {self.anchor} step takes offset_min, not `at`")
        if self.at is not None and self.at.tzinfo is not None:
            raise ValueError("`at` is a local time in the schedule's timezone, without offset")
        return self


class PresenceBoost(BaseModel):
    """On presence, raise to `level`, hold for hold_s, then fade back in fade_s."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    level: ArcLevel
    hold_s: Annotated[int, Field(ge=1, le=3600)] = 60
    fade_s: FadeSeconds = 2.0


class Schedule(BaseModel):
    """A nightly dimming profile in local time, following sunset and sunrise."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: Annotated[str, AfterValidator(_timezone)] = "Europe/Brussels"
    steps: Annotated[tuple[ScheduleStep, ...], Field(min_length=1, max_length=48)]
    presence: PresenceBoost | None = None
    clo: bool = False  # constant light output: the driver compensates lumen depreciation


class ScheduleCommand(_Command):
    type: Literal["schedule"] = "schedule"
    target: Target = "all"
    schedule: Schedule


# --- the schedule calendar -----------------------------------------------------------------
# One nightly profile (`Schedule`) was enough for a street that burns the same every night. A
# calendar says which program runs on which night: a program per weekday, special days and
# holidays (dated, or yearly on the same month and day), between validity dates, in one local
# time zone. The optimiser proposes calendars, the API's schedule editor stores them (the
# `schedules` table's body), and the agent runs them offline; `Schedule` still decodes and runs
# as a calendar of one program every night.

MAX_PROGRAMS = 32
MAX_SPECIAL_DAYS = 366
MAX_SPECIAL_DAY_SPAN = 366
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_PROGRAM_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,31}$"
ProgramName = Annotated[str, Field(min_length=1, max_length=32, pattern=_PROGRAM_NAME_PATTERN)]
Timezone = Annotated[str, AfterValidator(_timezone)]


class Program(BaseModel):
    """The steps of one night, with its presence boost (the same shape as a `Schedule`'s)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    steps: Annotated[tuple[ScheduleStep, ...], Field(min_length=1, max_length=48)]
    presence: PresenceBoost | None = None


class SpecialDay(BaseModel):
    """Nights `first`..`last` (local evening dates, inclusive) run `program` instead of the
    weekday's; `yearly` repeats the same months and days every year (fixed holidays)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[Text, Field(min_length=1, max_length=64)]
    first: date
    last: date | None = None
    yearly: bool = False
    program: ProgramName

    @model_validator(mode="after")
    def _ordered(self) -> SpecialDay:
        if self.last is not None:
            if self.last < self.first:
                raise ValueError(f"special day {self.name!r}: last ({self.last}) is before "
                                 f"first ({self.first})")
            if (self.last - self.first).days >= MAX_SPECIAL_DAY_SPAN:
                raise ValueError(f"special day {self.name!r} spans more than "
                                 f"{MAX_SPECIAL_DAY_SPAN} nights")
        return self

    @property
    def end(self) -> date:
        return self.last if self.last is not None else self.first

    def days(self) -> list[date]:
        """Every night it covers, as dates (for a yearly one, in the year of `first`)."""
        return [self.first + timedelta(days=i) for i in range((self.end - self.first).days + 1)]

    def covers(self, day: date) -> bool:
        if not self.yearly:
            return self.first <= day <= self.end
        return (day.month, day.day) in {(d.month, d.day) for d in self.days()}


def _first_overlap(specials: tuple[SpecialDay, ...]) -> str | None:
    """Why two special days claim the same night, or None; linear in the nights they cover."""
    dated: dict[date, str] = {}
    yearly: dict[tuple[int, int], str] = {}
    for special in specials:
        for day in special.days():
            if special.yearly:
                key = (day.month, day.day)
                if key in yearly and yearly[key] != special.name:
                    return f"special days {yearly[key]!r} and {special.name!r} overlap on {day:%m-%d}"
                yearly[key] = special.name
            else:
                if day in dated and dated[day] != special.name:
                    return f"special days {dated[day]!r} and {special.name!r} overlap on {day}"
                dated[day] = special.name
    for day, name in dated.items():
        other = yearly.get((day.month, day.day))
        if other is not None:
            return f"special days {other!r} and {name!r} overlap on {day}"
    return None


class Calendar(BaseModel):
    """A versioned dimming calendar: which program runs on the night that starts on each local
    evening, from `valid_from` to `valid_until` (inclusive; open when absent). Outside its
    validity the controller burns at full level from dusk to dawn."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    v: Literal[1] = 1
    revision: Annotated[int, Field(ge=1, le=JSON_INT_MAX)] = 1
    timezone: Timezone = "Europe/Brussels"
    valid_from: date | None = None
    valid_until: date | None = None
    programs: Annotated[dict[ProgramName, Program], Field(min_length=1, max_length=MAX_PROGRAMS)]
    week: Annotated[tuple[ProgramName, ...], Field(min_length=7, max_length=7)]
    """The program of each weekday's evening, Monday first."""
    special_days: Annotated[tuple[SpecialDay, ...], Field(max_length=MAX_SPECIAL_DAYS)] = ()
    clo: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> Calendar:
        if (self.valid_from is not None and self.valid_until is not None
                and self.valid_until < self.valid_from):
            raise ValueError(f"valid_until ({self.valid_until}) is before valid_from "
                             f"({self.valid_from})")
        for weekday, name in zip(WEEKDAYS, self.week, strict=True):
            if name not in self.programs:
                raise ValueError(f"week: {weekday} runs program {name!r}, which is not defined")
        for special in self.special_days:
            if special.program not in self.programs:
                raise ValueError(f"special day {special.name!r} runs program "
                                 f"{special.program!r}, which is not defined")
        names = [special.name for special in self.special_days]
        if len(set(names)) != len(names):
            raise ValueError("special days need distinct names")
        clash = _first_overlap(self.special_days)
        if clash is not None:
            raise ValueError(clash)
        return self

    def valid_on(self, day: date) -> bool:
        return ((self.valid_from is None or day >= self.valid_from)
                and (self.valid_until is None or day <= self.valid_until))

    def program_name(self, day: date) -> str | None:
        """The program of the night that starts on the local evening of `day`; None outside the
        calendar's validity. A special day wins over the weekday."""
        if not self.valid_on(day):
            return None
        for special in self.special_days:
            if special.covers(day):
                return special.program
        return self.week[day.weekday()]

    def program_for(self, day: date) -> Program | None:
        name = self.program_name(day)
        return None if name is None else self.programs[name]

    @classmethod
    def of_schedule(cls, schedule: Schedule) -> Calendar:
        """The calendar a one-profile `Schedule` means: its program every night, always valid."""
        program = Program(steps=schedule.steps, presence=schedule.presence)
        return cls(timezone=schedule.timezone, programs={"nightly": program},
                   week=("nightly",) * 7, clo=schedule.clo)


class CalendarCommand(_Command):
    """Run this calendar from now on; it replaces the controller's schedule or calendar."""

    type: Literal["calendar"] = "calendar"
    target: Target = "all"
    calendar: Calendar


class ControllerConfig(_Message):
    """Controller settings; also published retained on the `config` topic."""

    telemetry_interval_s: Annotated[int, Field(ge=5, le=3600)] = 60
    dali_poll_interval_s: Annotated[int, Field(ge=1, le=3600)] = 10
    meter_poll_interval_s: Annotated[int, Field(ge=1, le=3600)] = 15
    sensor_poll_interval_s: Annotated[int, Field(ge=1, le=3600)] = 30
    records_per_message: Annotated[int, Field(ge=1, le=4096)] = 50
    buffer_max_bytes: Annotated[int, Field(ge=1 << 16, le=1 << 32)] = 64 << 20
    buffer_max_age_s: Annotated[int, Field(ge=60, le=90 * 86_400)] = 7 * 86_400
    mqtt_keepalive_s: Annotated[int, Field(ge=5, le=3600)] = 60


class ConfigCommand(_Command):
    type: Literal["config"] = "config"
    config: ControllerConfig


class ReadDiagnostics(_Command):
    """Read D4i diagnostics and energy banks of the target and report them as events."""

    type: Literal["read_diagnostics"] = "read_diagnostics"
    target: Target = "all"


class Reboot(_Command):
    type: Literal["reboot"] = "reboot"
    delay_s: Annotated[int, Field(ge=0, le=3600)] = 0


Command = Annotated[
    SetLevel | Identify | ScheduleCommand | CalendarCommand | ConfigCommand | ReadDiagnostics
    | Reboot,
    Field(discriminator="type"),
]
COMMAND_TYPES = (SetLevel, Identify, ScheduleCommand, CalendarCommand, ConfigCommand,
                 ReadDiagnostics, Reboot)


# --- acks and state ----------------------------------------------------------------------


class AckStatus(StrEnum):
    ACCEPTED = "accepted"
    DONE = "done"
    FAILED = "failed"
    REFUSED = "refused"


class Ack(_FromController):
    """A controller's answer to a command; failed and refused need a reason."""

    command_id: MessageId
    status: AckStatus
    reason: Annotated[Text, Field(min_length=1, max_length=256)] | None = None
    time: ReportedTime

    @model_validator(mode="after")
    def _reason_when_not_ok(self) -> Ack:
        if self.status in (AckStatus.FAILED, AckStatus.REFUSED) and self.reason is None:
            raise ValueError(f"a {self.status} ack needs a reason")
        return self


class OfflineReason(StrEnum):
    CONNECTION_LOST = "connection_lost"  # the broker published the last will
    SHUTDOWN = "shutdown"
    REBOOT = "reboot"
    FIRMWARE_UPDATE = "firmware_update"


class State(_FromController):
    """Birth (online) or death (offline, also the last will), published retained."""

    online: bool
    firmware: Annotated[Text, Field(min_length=1, max_length=64)]
    time: ReportedTime
    luminaires: Annotated[int, Field(ge=0, le=1024)] = 0
    reason: OfflineReason | None = None

    @model_validator(mode="after")
    def _reason_only_offline(self) -> State:
        if self.online and self.reason is not None:
            raise ValueError("an online state has no offline reason")
        return self


# --- receipts: end-to-end confirmation -------------------------------------------------


class Stream(StrEnum):
    """A controller's numbered streams within one boot: each numbers its items from 0."""

    LUMINAIRE = "luminaire"  # luminaire telemetry records
    SENSOR = "sensor"  # sensor telemetry records
    MESSAGE = "message"  # JSON messages sent up (events and acks): one number each


MAX_RECEIPT_RANGES = 200  # with the longest numbers and reasons a receipt stays under MAX_JSON_BYTES
REASON_PATTERN = r"^[a-z0-9_.:-]+$"
ReasonText = Annotated[str, Field(min_length=1, max_length=64, pattern=REASON_PATTERN)]


class SeqRange(BaseModel):
    """Items `first_seq`..`last_seq` (inclusive) of one stream of one boot of a controller."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    stream: Stream
    boot_id: BootId
    first_seq: Seq
    last_seq: Seq

    @model_validator(mode="after")
    def _ordered(self) -> SeqRange:
        if self.last_seq < self.first_seq:
            raise ValueError("last_seq must be at least first_seq")
        return self


class RejectedRange(SeqRange):
    """Items the centre refused and kept as dead letters, with the reason."""

    reason: ReasonText


class Receipt(_Message):
    """Published by ingest on a controller's `receipt` topic after the transaction that stored its
    messages committed: `stored` names what is in the database (a duplicate included: it was
    stored before), `rejected` what was dead-lettered. A message covered by either may leave the
    controller's outbox."""

    controller: ControllerId
    time: UtcTime
    stored: Annotated[tuple[SeqRange, ...], Field(max_length=MAX_RECEIPT_RANGES)] = ()
    rejected: Annotated[tuple[RejectedRange, ...], Field(max_length=MAX_RECEIPT_RANGES)] = ()


# --- JSON in and out ---------------------------------------------------------------------

M = TypeVar("M")


def dumps(model: BaseModel) -> bytes:
    """Serialise a message as compact UTF-8 JSON."""
    return model.model_dump_json().encode()


_ADAPTERS: dict[Any, TypeAdapter[Any]] = {}


def _adapter(cls: Any) -> TypeAdapter[Any]:
    """One pydantic adapter per message type, built once."""
    adapter = _ADAPTERS.get(cls)
    if adapter is None:
        adapter = _ADAPTERS[cls] = TypeAdapter(cls)
    return adapter


def _readable(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors(include_url=False, include_input=False):
        where = ".".join(str(p) for p in error["loc"]) or "message"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)


def loads(cls: type[M] | Any, data: bytes | str, now_us: int | None = None) -> M:
    """Parse JSON into `cls` (a model or the Command union), raising MessageError. JSON types
    must match the fields' (an integer field takes no boolean, string or float).

    With `now_us` (the receiver's clock, µs since the Unix epoch) the times a controller reports
    must lie in the telemetry window [2015-01-01, now_us + 1 day].
    """
    if not isinstance(data, bytes | bytearray | str):
        raise MessageError(f"expected JSON bytes or str, not {type(data).__name__}")
    if len(data) > MAX_JSON_BYTES:
        raise MessageError(f"message: {len(data)} bytes long; at most {MAX_JSON_BYTES} bytes")
    try:
        # strict: a JSON value of another type is refused, never converted (false is no boot
        # id, "5" no count, 2.0 no sequence number)
        return _adapter(cls).validate_json(data, strict=True, context={"now_us": now_us})
    except ValidationError as exc:
        raise MessageError(_readable(exc)) from None


REPORTS: dict[Kind, type[Event] | type[Ack] | type[State]] = {
    Kind.EVENT: Event, Kind.ACK: Ack, Kind.STATE: State,
}
"""The JSON messages a controller sends up, by topic kind."""


def command_id_of(payload: bytes | str) -> str | None:
    """The id of a command that failed validation, when it has a usable one: the controller then
    refuses it by that id (an ack); without one, nobody could match the answer, so none is sent."""
    try:
        doc = json.loads(payload)
    except (ValueError, TypeError):
        return None
    value = doc.get("id") if isinstance(doc, dict) else None
    if isinstance(value, str) and _MESSAGE_ID.fullmatch(value):
        return value
    return None


def parse_command(data: bytes | str) -> Any:
    """Parse any command by its `type`, raising MessageError with a readable reason."""
    return loads(Command, data)

