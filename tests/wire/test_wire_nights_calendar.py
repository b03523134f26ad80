"""A calendar's nights, as the agent runs them offline: the program of each night (weekday, special
day, validity), across the nights the clocks change, and an old one-profile schedule the same as
before."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from wire.messages import (
    Anchor,
    Calendar,
    PresenceBoost,
    Program,
    Schedule,
    ScheduleStep,
    SpecialDay,
    loads,
)
from wire.nights import (
    FALLBACK,
    FALLBACK_NAME,
    Position,
    level_at,
    night,
    night_at,
    presence_at,
)

BRUSSELS = Position(50.8503, 4.3517)
TZ = ZoneInfo("Europe/Brussels")

WORKDAY = Program(steps=(
    ScheduleStep(anchor=Anchor.SUNSET, level=254),
    ScheduleStep(anchor=Anchor.CLOCK, at=time(22, 0), level=200),
    ScheduleStep(anchor=Anchor.CLOCK, at=time(2, 30), level=150),  # missing on the spring night
    ScheduleStep(anchor=Anchor.CLOCK, at=time(5, 30), level=220),
    ScheduleStep(anchor=Anchor.SUNRISE, level=0),
), presence=PresenceBoost(level=254, hold_s=60))
WEEKEND = Program(steps=(
    ScheduleStep(anchor=Anchor.SUNSET, level=254),
    ScheduleStep(anchor=Anchor.CLOCK, at=time(1, 0), level=170),
    ScheduleStep(anchor=Anchor.SUNRISE, level=0),
))
HOLIDAY = Program(steps=(ScheduleStep(anchor=Anchor.SUNSET, level=254),
                         ScheduleStep(anchor=Anchor.SUNRISE, level=0)))
CALENDAR = Calendar(
    programs={"workday": WORKDAY, "weekend": WEEKEND, "holiday": HOLIDAY},
    week=("workday",) * 5 + ("weekend",) * 2,
    special_days=(SpecialDay(name="national day", first=date(2026, 7, 21), yearly=True,
                             program="holiday"),),
    valid_from=date(2026, 1, 1), valid_until=date(2026, 12, 31),
)


def local(day: date, at: time, fold: int = 0) -> datetime:
    return datetime.combine(day, at).replace(tzinfo=TZ, fold=fold).astimezone(UTC)


@pytest.mark.parametrize(("day", "program"), [
    (date(2026, 3, 27), "workday"),  # Friday
    (date(2026, 3, 28), "weekend"),  # Saturday: clocks go forward at 02:00 that night
    (date(2026, 7, 21), "holiday"),
    (date(2027, 1, 4), FALLBACK_NAME),  # past valid_until: full from dusk to dawn
])
def test_each_night_runs_its_program(day: date, program: str) -> None:
    n = night(CALENDAR, BRUSSELS, day)
    assert n.program == program
    if program == FALLBACK_NAME:
        assert [t.level for t in n.transitions] == [254, 0]


def test_the_spring_night_runs_a_missing_clock_time_when_the_clocks_have_gone_forward() -> None:
    """On 2026-03-29 02:30 does not exist in Brussels: the 02:30 step moves forward by the hour
    skipped, to 03:30 CEST, and runs once."""
    cal = Calendar(programs={"p": WORKDAY}, week=("p",) * 7)
    day = date(2026, 3, 28)
    at = {t.level: t.at for t in night(cal, BRUSSELS, day).transitions}
    assert at[150] == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)  # 03:30 CEST
    assert at[220] == local(day + timedelta(days=1), time(5, 30))
    assert level_at(cal, BRUSSELS, datetime(2026, 3, 29, 1, 29, tzinfo=UTC)) == 200
    assert level_at(cal, BRUSSELS, datetime(2026, 3, 29, 1, 30, tzinfo=UTC)) == 150


def test_the_autumn_night_runs_a_twice_occurring_clock_time_once_at_its_first_occurrence() -> None:
    cal = Calendar(programs={"p": WORKDAY}, week=("p",) * 7)
    day = date(2026, 10, 24)
    first = local(day + timedelta(days=1), time(2, 30), fold=0)  # 00:30 UTC, CEST
    assert first == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    levels = [t.level for t in night(cal, BRUSSELS, day).transitions]
    assert levels == [254, 200, 150, 220, 0]
    assert level_at(cal, BRUSSELS, first - timedelta(minutes=1)) == 200
    assert level_at(cal, BRUSSELS, first + timedelta(hours=1, minutes=1)) == 150  # 02:31 CET


def test_a_night_that_crosses_midnight_keeps_the_program_of_its_evening() -> None:
    """Friday evening's workday program runs until Saturday's sunrise."""
    saturday_3am = local(date(2026, 3, 7), time(3, 0))
    n = night_at(CALENDAR, BRUSSELS, saturday_3am)
    assert n is not None and n.day == date(2026, 3, 6) and n.program == "workday"
    assert level_at(CALENDAR, BRUSSELS, saturday_3am) == 150
    assert presence_at(CALENDAR, BRUSSELS, saturday_3am) == WORKDAY.presence
    sunday_3am = local(date(2026, 3, 8), time(3, 0))
    assert level_at(CALENDAR, BRUSSELS, sunday_3am) == 170
    assert presence_at(CALENDAR, BRUSSELS, sunday_3am) is None
    assert presence_at(CALENDAR, BRUSSELS, local(date(2026, 3, 8), time(13, 0))) is None


@pytest.mark.parametrize("day", [date(2026, 1, 5), date(2026, 3, 28), date(2026, 10, 24),
                                 date(2026, 6, 21)])
def test_an_old_schedule_runs_exactly_as_its_calendar(day: date) -> None:
    schedule = Schedule(steps=WORKDAY.steps, presence=WORKDAY.presence)
    old, new = night(schedule, BRUSSELS, day), night(Calendar.of_schedule(schedule), BRUSSELS, day)
    assert old.transitions == new.transitions and old.presence == new.presence
    assert night(FALLBACK, BRUSSELS, day).transitions[0].level == 254


def test_a_calendar_round_trips_through_its_json_and_runs_the_same() -> None:
    again = loads(Calendar, CALENDAR.model_dump_json())
    for offset in range(0, 365, 17):
        day = date(2026, 1, 1) + timedelta(days=offset)
        assert night(again, BRUSSELS, day) == night(CALENDAR, BRUSSELS, day)
