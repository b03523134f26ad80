"""The grid operator's settlement day: the 15-minute intervals of a local day (92, 96 or 100 on
DST days) and each one's energy and quality, pure."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

INTERVAL = timedelta(minutes=15)


def day_bounds(day: date, timezone: str) -> tuple[datetime, datetime]:
    """The UTC instants of local midnight at the start and end of `day`."""
    zone = ZoneInfo(timezone)
    start = datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)
    following = day + timedelta(days=1)
    end = datetime(following.year, following.month, following.day, tzinfo=zone).astimezone(UTC)
    return start, end


def intervals(day: date, timezone: str) -> list[datetime]:
    start, end = day_bounds(day, timezone)
    count = int((end - start) / INTERVAL)
    return [start + i * INTERVAL for i in range(count)]


def settlement_rows(day: date, timezone: str,
                    stored: dict[datetime, tuple[float, bool]]) -> list[dict[str, object]]:
    """One row per interval: energy in Wh and quality measured, estimated or missing."""
    rows: list[dict[str, object]] = []
    for start in intervals(day, timezone):
        found = stored.get(start)
        if found is None:
            rows.append({"start": start, "energy_wh": None, "quality": "missing"})
        else:
            rows.append({"start": start, "energy_wh": found[0],
                         "quality": "estimated" if found[1] else "measured"})
    return rows
