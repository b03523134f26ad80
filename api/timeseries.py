"""Time ranges of series requests: checked, and the time_bucket width chosen from their length."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from api.problems import Problem

MAX_POINTS = 2000
BUCKETS = (
    timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=15), timedelta(hours=1),
    timedelta(hours=6), timedelta(days=1), timedelta(days=7),
)
MAX_RANGE = timedelta(days=400)
OLDEST = datetime(2015, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class TimeRange:
    start: datetime
    end: datetime
    bucket: timedelta


def choose_bucket(span: timedelta, max_points: int = MAX_POINTS) -> timedelta:
    """The finest bucket that keeps the series within max_points."""
    for bucket in BUCKETS:
        if span / bucket <= max_points:
            return bucket
    return BUCKETS[-1]


def time_range(start: datetime | None, end: datetime | None, now: datetime,
               default: timedelta = timedelta(days=1), bucket: timedelta | None = None) -> TimeRange:
    """A checked [start, end) in UTC; naive times are refused, the span is bounded."""
    for name, value in (("from", start), ("to", end)):
        if value is not None and value.tzinfo is None:
            raise Problem(422, f"`{name}` needs a time zone offset (e.g. 2026-01-01T00:00:00Z)")
    try:
        end = (end or now).astimezone(UTC)
        start = (start or end - default).astimezone(UTC)
    except OverflowError:  # year 1 minus a day, 9999-12-31T23:59-01:00 in UTC
        raise Problem(422, "`from` or `to` is outside the calendar") from None
    if start >= end:
        raise Problem(422, "`from` must be before `to`")
    if start < OLDEST:
        start = OLDEST
        if start >= end:
            raise Problem(422, "the range ends before 2015, when no reading exists")
    if end - start > MAX_RANGE:
        raise Problem(422, f"at most {MAX_RANGE.days} days per request")
    return TimeRange(start, end, bucket or choose_bucket(end - start))
