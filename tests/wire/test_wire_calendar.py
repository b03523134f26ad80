"""The schedule calendar: which program runs which night, and what a broken or malicious
integrator's calendar is refused with."""

from __future__ import annotations

import json
from datetime import date, time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wire import messages
from wire.messages import (
    Anchor,
    Calendar,
    CalendarCommand,
    MessageError,
    Program,
    Schedule,
    ScheduleStep,
    SpecialDay,
    loads,
)

FULL = Program(steps=(ScheduleStep(anchor=Anchor.SUNSET, level=254),
                      ScheduleStep(anchor=Anchor.SUNRISE, level=0)))
DIMMED = Program(steps=(ScheduleStep(anchor=Anchor.SUNSET, level=254),
                        ScheduleStep(anchor=Anchor.CLOCK, at=time(23, 0), level=170),
                        ScheduleStep(anchor=Anchor.SUNRISE, offset_min=-10, level=0)))


def calendar(**changes: Any) -> Calendar:
    base: dict[str, Any] = {
        "programs": {"weekday": DIMMED, "weekend": FULL, "holiday": FULL},
        "week": ("weekday",) * 5 + ("weekend",) * 2,
        "special_days": (
            SpecialDay(name="national day", first=date(2026, 7, 21), yearly=True,
                       program="holiday"),
            SpecialDay(name="winter fair", first=date(2026, 11, 27), last=date(2026, 12, 30),
                       program="holiday"),
        ),
        "valid_from": date(2026, 1, 1),
        "valid_until": date(2027, 12, 31),
    }
    base.update(changes)
    return Calendar(**base)


@pytest.mark.parametrize(("day", "program"), [
    (date(2026, 3, 2), "weekday"),          # a Monday
    (date(2026, 3, 6), "weekday"),          # a Friday evening
    (date(2026, 3, 7), "weekend"),          # a Saturday
    (date(2026, 7, 21), "holiday"),         # yearly special day, a Tuesday
    (date(2027, 7, 21), "holiday"),         # ... again the next year
    (date(2026, 11, 27), "holiday"),        # first night of a dated range
    (date(2026, 12, 30), "holiday"),        # last night of the range, inclusive
    (date(2026, 12, 31), "weekday"),        # the night after it
    (date(2025, 12, 31), None),             # before valid_from
    (date(2028, 1, 1), None),               # after valid_until
])
def test_each_night_runs_the_program_of_its_weekday_special_day_or_none(
        day: date, program: str | None) -> None:
    assert calendar().program_name(day) == program


def test_a_one_profile_schedule_is_a_calendar_of_one_program_every_night() -> None:
    schedule = Schedule(steps=DIMMED.steps, clo=True)
    cal = Calendar.of_schedule(schedule)
    assert cal.clo and cal.timezone == schedule.timezone
    assert all(cal.program_for(date(2026, 1, d)) == Program(steps=DIMMED.steps)
               for d in range(1, 15))


@pytest.mark.parametrize(("changes", "says"), [
    ({"valid_from": date(2027, 1, 1), "valid_until": date(2026, 1, 1)},
     "valid_until (2026-01-01) is before valid_from"),
    ({"week": ("weekday",) * 6 + ("sunday",)}, "sunday runs program 'sunday'"),
    ({"week": ("weekday",) * 6}, "week"),
    ({"timezone": "Europe/Atlantis"}, "unknown IANA time zone"),
    ({"timezone": "../../etc/passwd"}, "unknown IANA time zone"),
    ({"programs": {}}, "programs"),
    ({"special_days": (
        SpecialDay(name="fair", first=date(2026, 12, 1), last=date(2026, 12, 10),
                   program="holiday"),
        SpecialDay(name="market", first=date(2026, 12, 10), last=date(2026, 12, 20),
                   program="weekend"))}, "'fair' and 'market' overlap on 2026-12-10"),
    ({"special_days": (
        SpecialDay(name="national day", first=date(2026, 7, 21), yearly=True, program="holiday"),
        SpecialDay(name="fireworks", first=date(2027, 7, 21), program="weekend"))},
     "'national day' and 'fireworks' overlap on 2027-07-21"),
    ({"special_days": (
        SpecialDay(name="a", first=date(2026, 5, 1), yearly=True, program="holiday"),
        SpecialDay(name="b", first=date(2025, 4, 30), last=date(2025, 5, 2), yearly=True,
                   program="weekend"))}, "overlap on 05-01"),
    ({"special_days": (SpecialDay(name="x", first=date(2026, 1, 1), program="ghost"),)},
     "program 'ghost', which is not defined"),
    ({"special_days": (SpecialDay(name="x", first=date(2026, 1, 1), program="holiday"),
                       SpecialDay(name="x", first=date(2026, 2, 1), program="holiday"))},
     "distinct names"),
])
def test_a_broken_calendar_is_refused_with_the_reason(changes: dict[str, Any], says: str) -> None:
    with pytest.raises(ValueError, match=says.replace("(", r"\(").replace(")", r"\)")):
        calendar(**changes)


def _json(cal: dict[str, Any]) -> str:
    return json.dumps(cal)


def _valid_doc() -> dict[str, Any]:
    return json.loads(calendar().model_dump_json())


@pytest.mark.parametrize(("mutate", "says"), [
    (lambda d: d["programs"]["weekday"]["steps"][1].update(level=762), "less than or equal to 254"),
    (lambda d: d["programs"]["weekday"]["steps"][1].update(level=-1), "greater than or equal"),
    (lambda d: d["programs"]["weekday"]["steps"][1].update(level="300%"), "valid integer"),
    (lambda d: d["programs"]["weekday"]["steps"][1].update(at="25:00:00"), "time"),
    (lambda d: d["programs"]["weekday"]["steps"][0].update(offset_min=100_000), "720"),
    (lambda d: d["special_days"][1].update(first="2026-12-30", last="2026-11-27"),
     "is before first"),
    (lambda d: d["special_days"][1].update(first="2026-01-01", last="2030-01-01"),
     "spans more than 366"),
    (lambda d: d.update(valid_from="2026-02-30"), "date"),
    (lambda d: d.update(v=7), "v"),
    (lambda d: d.update(revision=0), "revision"),
    (lambda d: d.update(extra_field=True), "extra"),
    (lambda d: d["programs"].update({"Bad Name!": d["programs"]["weekday"]}), "pattern"),
    (lambda d: d["programs"].update({f"p{i}": d["programs"]["weekday"] for i in range(40)}),
     "at most 32"),
])
def test_a_malicious_calendar_document_is_refused_with_the_reason(mutate: Any, says: str) -> None:
    doc = _valid_doc()
    mutate(doc)
    with pytest.raises(MessageError, match=says):
        loads(Calendar, _json(doc))


def test_a_calendar_of_ten_megabytes_is_refused_before_it_is_parsed() -> None:
    doc = _valid_doc()
    doc["special_days"] = [{"name": f"d{i}", "first": "2026-01-01", "program": "holiday"}
                           for i in range(160_000)]
    raw = _json(doc)
    assert len(raw) > 10_000_000
    with pytest.raises(MessageError, match="bytes long"):
        loads(Calendar, raw)


def test_the_most_special_days_a_message_holds_still_validate_quickly() -> None:
    """366 ranges of 366 nights each is the worst a calendar may claim: the overlap check is
    linear in the nights covered, so the first clash is found without quadratic work."""
    days = tuple(SpecialDay(name=f"d{i}", first=date(2026, 1, 1), last=date(2026, 12, 31),
                            program="holiday") for i in range(messages.MAX_SPECIAL_DAYS))
    with pytest.raises(ValueError, match="'d0' and 'd1' overlap on 2026-01-01"):
        calendar(special_days=days)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.dates(date(2020, 1, 1), date(2030, 12, 31)),
                          st.integers(0, 40), st.booleans()), max_size=8))
def test_accepted_calendars_give_every_night_exactly_one_program_and_round_trip(
        ranges: list[tuple[date, int, bool]]) -> None:
    specials = tuple(SpecialDay(name=f"s{i}", first=first,
                                last=date.fromordinal(first.toordinal() + span), yearly=yearly,
                                program="holiday")
                     for i, (first, span, yearly) in enumerate(ranges))
    try:
        cal = calendar(special_days=specials, valid_from=None, valid_until=None)
    except ValueError:
        return  # overlapping: refused, as it must be
    for special in cal.special_days:
        for day in special.days():
            claims = [s.name for s in cal.special_days if s.covers(day)]
            assert claims == [special.name]
            assert cal.program_name(day) == "holiday"
    again = loads(Calendar, messages.dumps(cal))
    assert again == cal


def test_a_calendar_command_round_trips_and_targets_the_whole_controller() -> None:
    raw = CalendarCommand(issued_at="2026-01-01T12:00:00Z", expires_at="2026-01-08T12:00:00Z",
                          calendar=calendar()).model_dump_json()
    parsed = messages.parse_command(raw)
    assert isinstance(parsed, CalendarCommand) and parsed.calendar == calendar()
