"""The controller's own dimming schedule: astronomical clock, local-time steps, presence boost.

Pure functions of (schedule, position, instant) so the street stays lit correctly with no network.
A night runs from the sunset of one local day to the sunrise of the next; each step resolves to
one UTC instant of that night; outside the night's window the lights are off.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from astral import LocationInfo
from astral.sun import sunrise, sunset

from wire.messages import Anchor, PresenceBoost, Schedule, ScheduleStep

UTC = UTC
FULL = 254

# With no valid schedule the controller burns at full level from dusk to dawn: a lit street is
# safe, a dark one is not.
FALLBACK = Schedule(
    steps=(
        ScheduleStep(anchor=Anchor.SUNSET, offset_min=0, level=FULL),
        ScheduleStep(anchor=Anchor.SUNRISE, offset_min=0, level=0),
    )
)

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


def night(schedule: Schedule, position: Position, day: date) -> Night:
    """The transitions of the night that starts on the local evening of `day`.

    The night ends at the last sunrise-anchored step that switches off, or at sunrise when there
    is none, so a schedule cannot leave a street burning all day; later steps do not run.
    """
    tz = ZoneInfo(schedule.timezone)
    set_at, rise_at = sun_times(day, position, tz)
    steps = sorted(
        ((_step_instant(s, day, set_at, rise_at, tz), s) for s in schedule.steps),
        key=lambda pair: pair[0],
    )
    offs = [(at, s) for at, s in steps if s.anchor is Anchor.SUNRISE and s.level == 0]
    end, end_step = offs[-1] if offs else (rise_at, None)
    # steps after the end of the night (a 05:30 step in June, after sunrise) do not run
    transitions = [Transition(at, s.level, s) for at, s in steps if at < end]
    transitions.append(Transition(end, 0, end_step))
    return Night(day, set_at, rise_at, tuple(transitions))


def level_at(schedule: Schedule, position: Position, instant: datetime) -> int:
    """The scheduled arc level at `instant` (aware), 0 outside the night."""
    if instant.tzinfo is None:
        raise ValueError("instant must be an aware datetime")
    instant = instant.astimezone(UTC)
    local_day = instant.astimezone(ZoneInfo(schedule.timezone)).date()
    # the night that started yesterday evening may still run this morning
    for day in (local_day, local_day - timedelta(days=1)):
        n = night(schedule, position, day)
        if n.start <= instant < n.end:
            level = 0
            for transition in n.transitions:
                if transition.at > instant:
                    break
                level = transition.level
            return level
    return 0


def next_transition(schedule: Schedule, position: Position, instant: datetime) -> Transition:
    """The first transition strictly after `instant`: when the agent should act next."""
    instant = instant.astimezone(UTC)
    local_day = instant.astimezone(ZoneInfo(schedule.timezone)).date()
    for offset in (-1, 0, 1, 2):
        for transition in night(schedule, position, local_day + timedelta(days=offset)).transitions:
            if transition.at > instant:
                return transition
    raise RuntimeError("no transition within two days")  # only near the poles


@dataclass(frozen=True)
class Boost:
    """A presence boost in progress: full boost until hold_until, then a linear fade back."""

    level: int
    hold_until: datetime
    fade_s: float


def boost_on_presence(boost: PresenceBoost, detected_at: datetime) -> Boost:
    return Boost(boost.level, detected_at + timedelta(seconds=boost.hold_s), boost.fade_s)


def effective_level(scheduled: int, boost: Boost | None, instant: datetime) -> int:
    """The level to drive: the schedule, raised by a presence boost only while the street is lit.

    During the fade the boost decays linearly in arc steps towards the scheduled level.
    """
    if boost is None or scheduled == 0 or boost.level <= scheduled:
        return scheduled
    if instant <= boost.hold_until:
        return boost.level
    if boost.fade_s <= 0:
        return scheduled
    elapsed = (instant - boost.hold_until).total_seconds()
    if elapsed >= boost.fade_s:
        return scheduled
    return round(boost.level - (boost.level - scheduled) * elapsed / boost.fade_s)
