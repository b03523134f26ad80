"""The nights a schedule runs in Brussels (the controller's, the API's and the optimiser's):
sun-anchored and clock steps, DST nights."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from astral import LocationInfo
from astral.sun import sunrise, sunset
from hypothesis import given, settings
from hypothesis import strategies as st

from wire.messages import Anchor, Schedule, ScheduleStep
from wire.nights import FALLBACK, Position, level_at, local_to_utc, next_transition, night

BRUSSELS = Position(50.8503, 4.3517)
TZ = ZoneInfo("Europe/Brussels")
OBSERVER = LocationInfo(latitude=BRUSSELS.lat, longitude=BRUSSELS.lon).observer

# A typical residential profile: on 10 min after sunset, dim at 23:00 and 01:00, up for the
# morning commute at 05:30, off 10 min before sunrise.
PROFILE = Schedule(
    steps=(
        ScheduleStep(anchor=Anchor.SUNSET, offset_min=10, level=254),
        ScheduleStep(anchor=Anchor.CLOCK, at=time(23, 0), level=200),
        ScheduleStep(anchor=Anchor.CLOCK, at=time(1, 0), level=150),
        ScheduleStep(anchor=Anchor.CLOCK, at=time(5, 30), level=220),
        ScheduleStep(anchor=Anchor.SUNRISE, offset_min=-10, level=0),
    )
)


def astral_sunset(day: date) -> datetime:
    return sunset(OBSERVER, date=day, tzinfo=TZ).astimezone(UTC)


def astral_sunrise(day: date) -> datetime:
    return sunrise(OBSERVER, date=day, tzinfo=TZ).astimezone(UTC)


NIGHTS = {
    "longest night (winter solstice)": date(2026, 12, 21),
    "shortest night (summer solstice)": date(2026, 6, 21),
    "clocks go forward (CET -> CEST)": date(2026, 3, 28),
    "clocks go back (CEST -> CET)": date(2026, 10, 24),
}


@pytest.mark.parametrize("day", NIGHTS.values(), ids=NIGHTS.keys())
def test_switches_at_the_right_instants(day: date) -> None:
    n = night(PROFILE, BRUSSELS, day)
    on = astral_sunset(day) + timedelta(minutes=10)
    off = astral_sunrise(day + timedelta(days=1)) - timedelta(minutes=10)
    eleven = datetime.combine(day, time(23, 0), TZ).astimezone(UTC)
    one = datetime.combine(day + timedelta(days=1), time(1, 0), TZ).astimezone(UTC)
    half_five = datetime.combine(day + timedelta(days=1), time(5, 30), TZ).astimezone(UTC)
    expected = [(on, 254), (eleven, 200), (one, 150), (half_five, 220), (off, 0)]
    assert [(t.at, t.level) for t in n.transitions] == sorted(e for e in expected if e[0] <= off)
    second = timedelta(seconds=1)
    lit = sorted(e for e in expected if e[0] <= off)
    before = 0
    for instant, after in lit:
        assert level_at(PROFILE, BRUSSELS, instant - second) == before, instant
        assert level_at(PROFILE, BRUSSELS, instant) == after, instant
        before = after


def test_shortest_night_ends_before_the_morning_step() -> None:
    day = NIGHTS["shortest night (summer solstice)"]
    off = astral_sunrise(day + timedelta(days=1)) - timedelta(minutes=10)
    assert off.astimezone(TZ).time() < time(5, 30)
    assert level_at(PROFILE, BRUSSELS, off + timedelta(minutes=30)) == 0


def test_longest_night_is_longer_than_the_shortest() -> None:
    winter = night(FALLBACK, BRUSSELS, NIGHTS["longest night (winter solstice)"])
    summer = night(FALLBACK, BRUSSELS, NIGHTS["shortest night (summer solstice)"])
    assert winter.end - winter.start > timedelta(hours=15, minutes=50)
    assert summer.end - summer.start < timedelta(hours=8, minutes=20)


def test_clock_steps_follow_local_time_across_dst() -> None:
    # 23:00 local is 22:00 UTC in winter and 21:00 UTC in summer
    assert local_to_utc(date(2026, 3, 28), time(23, 0), TZ) == datetime(2026, 3, 28, 22, tzinfo=UTC)
    assert local_to_utc(date(2026, 3, 29), time(23, 0), TZ) == datetime(2026, 3, 29, 21, tzinfo=UTC)
    # 01:00 on the night clocks go forward is still CET; on the night they go back, still CEST
    assert local_to_utc(date(2026, 3, 29), time(1, 0), TZ) == datetime(2026, 3, 29, 0, tzinfo=UTC)
    assert local_to_utc(date(2026, 10, 25), time(1, 0), TZ) == datetime(2026, 10, 24, 23, tzinfo=UTC)


def test_skipped_and_repeated_local_times() -> None:
    # 02:30 does not exist on 29 March 2026: the step happens at 03:30 CEST, after the gap
    assert local_to_utc(date(2026, 3, 29), time(2, 30), TZ) == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    # 02:30 happens twice on 25 October 2026: the step happens the first time (CEST)
    assert local_to_utc(date(2026, 10, 25), time(2, 30), TZ) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)


def test_fallback_is_full_from_dusk_to_dawn() -> None:
    day = date(2026, 1, 10)
    dusk, dawn = astral_sunset(day), astral_sunrise(day + timedelta(days=1))
    assert level_at(FALLBACK, BRUSSELS, dusk - timedelta(seconds=1)) == 0
    assert level_at(FALLBACK, BRUSSELS, dusk) == 254
    assert level_at(FALLBACK, BRUSSELS, dawn - timedelta(seconds=1)) == 254
    assert level_at(FALLBACK, BRUSSELS, dawn) == 0
    assert level_at(FALLBACK, BRUSSELS, datetime(2026, 1, 11, 12, tzinfo=UTC)) == 0


def test_a_schedule_without_an_off_step_still_goes_off_at_sunrise() -> None:
    always_on = Schedule(steps=(ScheduleStep(anchor=Anchor.SUNSET, level=180),))
    day = date(2026, 2, 2)
    dawn = astral_sunrise(day + timedelta(days=1))
    assert level_at(always_on, BRUSSELS, dawn - timedelta(minutes=1)) == 180
    assert level_at(always_on, BRUSSELS, dawn + timedelta(minutes=1)) == 0


def test_next_transition_walks_the_night_in_order() -> None:
    instant = datetime(2026, 12, 21, 12, tzinfo=UTC)
    seen = []
    for _ in range(6):
        transition = next_transition(PROFILE, BRUSSELS, instant)
        seen.append(transition.level)
        instant = transition.at
    assert seen == [254, 200, 150, 220, 0, 254]


def test_naive_instants_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        level_at(PROFILE, BRUSSELS, datetime(2026, 1, 1, 20))


@settings(max_examples=200, deadline=None)
@given(st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2030, 12, 31),
                    timezones=st.just(UTC)))
def test_level_is_always_a_scheduled_level_and_off_at_midday(instant: datetime) -> None:
    level = level_at(PROFILE, BRUSSELS, instant)
    assert level in {0, 254, 200, 150, 220}
    if time(11, 0) <= instant.astimezone(TZ).time() <= time(15, 0):
        assert level == 0
