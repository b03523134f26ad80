"""Settlement files for the grid operator: per supply point and local day, CSV (RFC 4180) rows of
an inventory, events, a 15-minute profile and faults, each described by a versioned JSON Schema
in analytics/settlement_schemas/."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo

from analytics.energy_days import local_day

KINDS = ("inventory", "events", "profile", "faults")
SCHEMA_VERSION = 1
#: a profile interval is "estimated" when more than this share of it is not measured
ESTIMATED_SHARE = 0.005


@cache
def schema(kind: str) -> dict[str, Any]:
    """The JSON Schema of one row of a file kind."""
    if kind not in KINDS:
        raise ValueError(f"no settlement file of kind {kind!r}")
    text = resources.files("analytics.settlement_schemas").joinpath(
        f"{kind}.v{SCHEMA_VERSION}.json").read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def columns(kind: str) -> list[str]:
    return list(schema(kind)["x-columns"])


def file_name(kind: str, ean: str, day: date, version: int) -> str:
    """e.g. 541449000000000001_2026-03-29_profile_v2.csv"""
    return f"{ean}_{day.isoformat()}_{kind}_v{version}.csv"


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(round(value, 6))
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if (
            value.utcoffset() == timedelta(0)) else value.isoformat()
    return str(value)


def to_csv(kind: str, rows: Iterable[Mapping[str, object]]) -> str:
    """RFC 4180 text: a header row, then one row per mapping, CRLF line ends."""
    out = io.StringIO()
    names = columns(kind)
    w = csv.writer(out, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    w.writerow(names)
    for row in rows:
        w.writerow([_cell(row.get(n)) for n in names])
    return out.getvalue()


def parse_csv(kind: str, text: str) -> list[dict[str, Any]]:
    """Rows of a file back as typed values (by the schema's declared types): what a reader of
    the file gets, and what the schema validates."""
    props = schema(kind)["properties"]
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader)
    if header != columns(kind):
        raise ValueError(f"{kind}: header {header} is not {columns(kind)}")
    out = []
    for raw in reader:
        row: dict[str, Any] = {}
        for name, value in zip(header, raw, strict=True):
            row[name] = _typed(props[name], value)
        out.append(row)
    return out


def _typed(prop: Mapping[str, Any], value: str) -> Any:
    types = prop.get("type", [])
    types = [types] if isinstance(types, str) else list(types)
    if "enum" in prop and not types:
        types = sorted({type(v).__name__ for v in prop["enum"] if v is not None})
        types = ["integer" if t == "int" else "string" if t == "str" else t for t in types]
    if value == "" and ("null" in types or None in prop.get("enum", [])):
        return None
    if "boolean" in types and value in ("true", "false"):
        return value == "true"
    if "integer" in types:
        try:
            return int(value)
        except ValueError:
            pass
    if "number" in types:
        try:
            return float(value)
        except ValueError:
            pass
    return value


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def quality(measured: float, estimated: float, default: float) -> str:
    """The least certain source present in an interval."""
    total = measured + estimated + default
    if default > 0:
        return "default"
    if total > 0 and estimated > ESTIMATED_SHARE * total:
        return "estimated"
    return "measured"


@dataclass(frozen=True)
class SupplyInterval:
    """One energy_supply_interval row."""

    bucket: datetime
    energy_wh: float
    measured_wh: float
    estimated_wh: float
    default_wh: float
    uncertainty_wh: float
    expected: int
    reporting: int
    burning_s: float
    mean_level: float | None
    flags: int
    meter_wh: float | None
    difference_wh: float | None


def profile_rows(ean: str, day: date, tz: str,
                 intervals: Sequence[SupplyInterval]) -> list[dict[str, object]]:
    """Every 15-minute interval of the local day (92, 96 or 100), missing ones included."""
    start, _, n = local_day(day, tz)
    zone = ZoneInfo(tz)
    by_start = {i.bucket.astimezone(UTC): i for i in intervals}
    rows: list[dict[str, object]] = []
    for k in range(n):
        t = start + timedelta(minutes=15 * k)
        base: dict[str, object] = {"ean": ean, "day": day.isoformat(), "interval": k + 1,
                                   "start_utc": t, "start_local": t.astimezone(zone)}
        iv = by_start.get(t)
        if iv is None:
            base["quality"] = "missing"
            rows.append(base)
            continue
        base.update({
            "kwh": iv.energy_wh / 1000.0, "kwh_measured": iv.measured_wh / 1000.0,
            "kwh_estimated": iv.estimated_wh / 1000.0, "kwh_default": iv.default_wh / 1000.0,
            "quality": quality(iv.measured_wh, iv.estimated_wh, iv.default_wh),
            "uncertainty_kwh": iv.uncertainty_wh / 1000.0, "luminaires_expected": iv.expected,
            "luminaires_reporting": iv.reporting, "burning_minutes": iv.burning_s / 60.0,
            "mean_level": iv.mean_level,
            "meter_kwh": None if iv.meter_wh is None else iv.meter_wh / 1000.0,
            "difference_kwh": None if iv.difference_wh is None else iv.difference_wh / 1000.0,
            "flags": iv.flags,
        })
        rows.append(base)
    return rows


def level_events(times: Sequence[datetime], levels: Sequence[int],
                 commanded: Sequence[bool], scheduled: Sequence[bool]) -> list[dict[str, object]]:
    """Switching and level changes of one luminaire from its readings in time order: a change
    between two readings is an event at the later one, caused by a command acknowledged
    around it (override), by most of its cabinet changing together (schedule), else unknown."""
    out: list[dict[str, object]] = []
    for i in range(1, len(levels)):
        a, b = levels[i - 1], levels[i]
        if a == b:
            continue
        event = "switch_on" if a == 0 else "switch_off" if b == 0 else "level_change"
        cause = "override" if commanded[i] else "schedule" if scheduled[i] else "unknown"
        out.append({"time_utc": times[i], "event": event, "level_from": a, "level_to": b,
                    "cause": cause, "source": "telemetry"})
    return out


@dataclass(frozen=True)
class Version:
    """Whether to store a new version of a file, and its number."""

    store: bool
    version: int


def next_version(current: tuple[int, str] | None, content_sha: str) -> Version:
    """A file is stored again only when its content changed; the new one supersedes the last."""
    if current is None:
        return Version(True, 1)
    number, sha = current
    return Version(sha != content_sha, number + 1 if sha != content_sha else number)
