"""The nights a calendar runs: astronomical clock and local-time steps, evaluated the same wherever
they are needed (the edge agent drives its luminaires by them, the API draws and the optimiser's
tests check the same nights).

Pure functions of (calendar, position, instant), so a controller keeps its street lit correctly
with no network. A calendar (`wire.messages.Calendar`) picks the program of each night (weekday, special day,
validity); a one-profile `Schedule` runs as the same program every night. A night runs from the
sunset of one local day to the sunrise of the next; each step resolves to one UTC instant of that
night; outside the night's window the lights are off. Outside the calendar's validity the night
burns at full level from dusk to dawn.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from astral import LocationInfo
from astral.sun import sunrise, sunset

from wire.messages import Anchor, Calendar, PresenceBoost, Program, Schedule, ScheduleStep

FULL = 254

# With no valid schedule the controller burns at full level from dusk to dawn: a lit street is
# safe, a dark one is not.
FALLBACK = Schedule(
    steps=(
        ScheduleStep(anchor=Anchor.SUNSET, offset_min=0, level=FULL),
        ScheduleStep(anchor=Anchor.SUNRISE, offset_min=0, level=0),
    )
)

FALLBACK_PROGRAM = Program(steps=FALLBACK.steps)
FALLBACK_NAME = "fallback"

Plan = Schedule | Calendar
"""What a controller runs: a calendar, or an old one-profile schedule."""

# Clock steps at or after noon belong to the evening of the night's first day, earlier ones to
# the morning after midnight.
_NOON = time(12, 0)


@dataclass(frozen=True)
class Position:
    lat: float
    lon: float

    def __post_init__(self) -> None:
        if not (-90 <= self.lat <= 90 and -180 <= self.lon <= 180):
            raise ValueError(f"position {self.lat}, {self.lon} is not on Earth")


@dataclass(frozen=True)
class Transition:
    at: datetime  # UTC
    level: int
    step: ScheduleStep | None  # None for the implicit end of the night


@dataclass(frozen=True)
class Night:
    """One night of a schedule: its sun times and its transitions in time order (UTC)."""

    day: date  # the local date of the evening
    sunset: datetime
    sunrise: datetime
    transitions: tuple[Transition, ...]
    program: str = FALLBACK_NAME  # the calendar's program that runs this night
    presence: PresenceBoost | None = None

    @property
    def start(self) -> datetime:
        return self.transitions[0].at

    @property
    def end(self) -> datetime:
        return self.transitions[-1].at


def local_to_utc(day: date, at: time, tz: ZoneInfo) -> datetime:
    """A local wall-clock time as UTC, across daylight-saving changes.

    A time that does not exist (skipped when clocks go forward) moves forward by the gap; a time
    that happens twice (clocks go back) is its first occurrence.
    """
    naive = datetime.combine(day, at)
    first = naive.replace(tzinfo=tz, fold=0)
    as_utc = first.astimezone(UTC)
    if as_utc.astimezone(tz).replace(tzinfo=None) != naive:  # did not exist: in the gap
        later = naive.replace(tzinfo=tz, fold=1).astimezone(UTC)
        return max(as_utc, later)
    return as_utc


def sun_times(day: date, position: Position, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """Sunset of the local `day` and sunrise of the next local day, in UTC (astral)."""
    observer = LocationInfo(latitude=position.lat, longitude=position.lon).observer
    return (
        sunset(observer, date=day, tzinfo=tz).astimezone(UTC),
        sunrise(observer, date=day + timedelta(days=1), tzinfo=tz).astimezone(UTC),
    )


def _step_instant(step: ScheduleStep, day: date, set_at: datetime, rise_at: datetime,
                  tz: ZoneInfo) -> datetime:
    if step.anchor is Anchor.SUNSET:
        return set_at + timedelta(minutes=step.offset_min)
    if step.anchor is Anchor.SUNRISE:
        return rise_at + timedelta(minutes=step.offset_min)
    assert step.at is not None
    on_day = day if step.at >= _NOON else day + timedelta(days=1)
    return local_to_utc(on_day, step.at, tz)


def as_calendar(plan: Plan) -> Calendar:
    """The calendar a plan means (a `Schedule` runs its profile every night)."""
    return plan if isinstance(plan, Calendar) else Calendar.of_schedule(plan)


def program_of(plan: Plan, day: date) -> tuple[str, Program]:
    """The program name and program of the night starting on the local evening of `day`."""
    if isinstance(plan, Schedule):
        return "nightly", Program(steps=plan.steps, presence=plan.presence)
    name = plan.program_name(day)
    if name is None:
        return FALLBACK_NAME, FALLBACK_PROGRAM
    return name, plan.programs[name]


def night(schedule: Plan, position: Position, day: date) -> Night:
    """The transitions of the night that starts on the local evening of `day`.

    The night ends at the last sunrise-anchored step that switches off, or at sunrise when there
    is none, so a schedule cannot leave a street burning all day; later steps do not run.
    """
    tz = ZoneInfo(schedule.timezone)
    set_at, rise_at = sun_times(day, position, tz)
    name, program = program_of(schedule, day)
    steps = sorted(
        ((_step_instant(s, day, set_at, rise_at, tz), s) for s in program.steps),
        key=lambda pair: pair[0],
    )
    offs = [(at, s) for at, s in steps if s.anchor is Anchor.SUNRISE and s.level == 0]
    end, end_step = offs[-1] if offs else (rise_at, None)
    # steps after the end of the night (a 05:30 step in June, after sunrise) do not run
    transitions = [Transition(at, s.level, s) for at, s in steps if at < end]
    transitions.append(Transition(end, 0, end_step))
    return Night(day, set_at, rise_at, tuple(transitions), name, program.presence)


def night_at(schedule: Plan, position: Position, instant: datetime) -> Night | None:
    """The night in force at `instant` (aware), or None by day."""
    if instant.tzinfo is None:
        raise ValueError("instant must be an aware datetime")
    instant = instant.astimezone(UTC)
    local_day = instant.astimezone(ZoneInfo(schedule.timezone)).date()
    # the night that started yesterday evening may still run this morning
    for day in (local_day, local_day - timedelta(days=1)):
        n = night(schedule, position, day)
        if n.start <= instant < n.end:
            return n
    return None


def presence_at(schedule: Plan, position: Position, instant: datetime) -> PresenceBoost | None:
    """The presence boost of the night in force at `instant` (None by day or without one)."""
    n = night_at(schedule, position, instant)
    return None if n is None else n.presence


def level_at(schedule: Plan, position: Position, instant: datetime) -> int:
    """The scheduled arc level at `instant` (aware), 0 outside the night."""
    n = night_at(schedule, position, instant)
    if n is None:
        return 0
    instant = instant.astimezone(UTC)
    level = 0
    for transition in n.transitions:
        if transition.at > instant:
            break
        level = transition.level
    return level


def next_transition(schedule: Plan, position: Position, instant: datetime) -> Transition:
    """The first transition strictly after `instant`: when the agent should act next."""
    instant = instant.astimezone(UTC)
    local_day = instant.astimezone(ZoneInfo(schedule.timezone)).date()
    for offset in (-1, 0, 1, 2):
        for transition in night(schedule, position, local_day + timedelta(days=offset)).transitions:
            if transition.at > instant:
                return transition
    raise RuntimeError("no transition within two days")  # only near the poles
