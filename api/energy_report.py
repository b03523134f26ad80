"""Energy reports, pure: the buckets of a period (15 min, hour, local day, local month), their
bound, the baseline of a bucket from the astronomical night, and each bucket's savings, euros
and CO2 from the factors in force."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

import numpy as np

from analytics.sun import transitions
from api.problems import Problem

BucketName = Literal["15min", "hour", "day", "month"]
ORDER: tuple[BucketName, ...] = ("15min", "hour", "day", "month")
FIXED = {"15min": timedelta(minutes=15), "hour": timedelta(hours=1)}
INTERVAL = FIXED["15min"]  # the energy job's interval
AUTO_BUCKETS = 400
"""A bucket chosen from the range: the finest that gives at most this many."""
MAX_BUCKETS = 3000
"""A range that would give more buckets than this is refused (422)."""
DRIVER_EFFICIENCY = 0.92  # as the energy job (analytics/energy_intervals.py)
STANDBY_W = 0.5


@dataclass(frozen=True)
class Period:
    """What a report covers: [start, end) in UTC, cut into `bucket`s in the time zone `tz`.
    Day and month buckets cover whole local days: those the requested range touches."""

    start: datetime
    end: datetime
    bucket: BucketName
    tz: str

    @property
    def width_s(self) -> int | None:
        """Seconds per bucket; None for months (they differ)."""
        if self.bucket == "day":
            return 86_400
        return None if self.bucket == "month" else int(FIXED[self.bucket].total_seconds())

    @property
    def days(self) -> tuple[date, date]:
        """The first and last local day of the period."""
        zone = ZoneInfo(self.tz)
        return (self.start.astimezone(zone).date(),
                (self.end - timedelta(microseconds=1)).astimezone(zone).date())


def _midnight(day: date, tz: str) -> datetime:
    return datetime.combine(day, time(0), ZoneInfo(tz)).astimezone(UTC)


def count(start: datetime, end: datetime, bucket: BucketName, tz: str) -> int:
    """How many buckets [start, end) makes."""
    if bucket in FIXED:
        return -(-int((end - start).total_seconds()) // int(FIXED[bucket].total_seconds()))
    zone = ZoneInfo(tz)
    first = start.astimezone(zone).date()
    last = (end - timedelta(microseconds=1)).astimezone(zone).date()
    if bucket == "day":
        return (last - first).days + 1
    return (last.year - first.year) * 12 + last.month - first.month + 1


def period(start: datetime, end: datetime, tz: str, bucket: BucketName | None) -> Period:
    """The checked period of a report: a bucket chosen when none is given (the finest with at
    most AUTO_BUCKETS), a 422 when the range would give more than MAX_BUCKETS."""
    if bucket is None:
        chosen: BucketName = next((b for b in ORDER if count(start, end, b, tz) <= AUTO_BUCKETS),
                                  "month")
        bucket = chosen
    n = count(start, end, bucket, tz)
    if n > MAX_BUCKETS:
        raise Problem(422, f"this range in `{bucket}` buckets makes {n:,} buckets, more than "
                      f"{MAX_BUCKETS:,}: choose a coarser `interval` or a shorter range",
                      buckets=n, max_buckets=MAX_BUCKETS)
    if bucket in FIXED:
        return Period(start, end, bucket, tz)
    first, last = Period(start, end, bucket, tz).days
    return Period(_midnight(first, tz), _midnight(last + timedelta(days=1), tz), bucket, tz)


def bucket_end(p: Period, start: datetime) -> datetime:
    """The end of the bucket starting at `start` (local days and months in p.tz), within p."""
    if p.bucket in FIXED:
        return min(start + FIXED[p.bucket], p.end)
    local = start.astimezone(ZoneInfo(p.tz)).date()
    if p.bucket == "day":
        following = local + timedelta(days=1)
    else:
        following = date(local.year + local.month // 12, local.month % 12 + 1, 1)
    return min(_midnight(following, p.tz), p.end)


def night_seconds(transitions: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Seconds of each [lo, hi) (epoch seconds) between a sunset and the next sunrise;
    `transitions` alternates sunrise, sunset, sunrise... (analytics.sun.transitions)."""
    sets = transitions[1:-1:2]
    rises = transitions[2::2]
    n = min(sets.shape[0], rises.shape[0])
    sets, rises = sets[:n], rises[:n]
    a = np.maximum(lo[:, None], sets[None, :])
    z = np.minimum(hi[:, None], rises[None, :])
    return np.asarray(np.clip(z - a, 0.0, None).sum(axis=1))


def booked_until(newest_end: datetime, job_position: datetime | None) -> datetime:
    """How far the energy is booked: the end of the newest interval booked, or, inside that
    interval, the energy job's cursor (an interval is booked as far as its readings go)."""
    if job_position is None:
        return newest_end
    return min(newest_end, max(job_position, newest_end - INTERVAL))


def baseline_until(ends: Sequence[datetime], booked_until: datetime) -> np.ndarray:
    """Where each bucket's baseline stops (epoch s): its end, or the end of the newest interval
    booked (of any bucket), whichever is first; a bucket still running (the night in progress)
    is compared with the night up to what is booked, not with its whole night."""
    return np.array([min(end, booked_until).timestamp() for end in ends])


def night_baseline_wh(lo: np.ndarray, hi: np.ndarray, full_w: float, lat: float, lon: float,
                      share: float = 1.0) -> np.ndarray:
    """Each bucket's baseline (Wh): the luminaires' full input power `full_w` over the night
    seconds of its [lo, hi) (epoch s, ascending), times the baseline regime's share."""
    trans = transitions(lat, lon, float(lo[0]), float(hi[-1]))
    return night_seconds(trans, lo, hi) * full_w / 3600.0 * share


def savings_so_far_wh(start: datetime, energy_wh: float, newest_end: datetime,
                      job_position: datetime | None, full_w: float, lat: float, lon: float,
                      share: float = 1.0) -> float:
    """What the energy booked from `start` on has saved, as one bucket still running: against
    the baseline up to where energy is booked (a report's running bucket), never against the
    whole night in progress, whose unspent part would count as saved."""
    hi = baseline_until([newest_end], booked_until(newest_end, job_position))
    lo = np.array([start.timestamp()])
    return float(night_baseline_wh(lo, np.maximum(hi, lo), full_w, lat, lon, share)[0]) - energy_wh


def rated_input_w(rated_w: float | None) -> float:
    """Full-level input power of a luminaire from its rated (output) power, as the energy job."""
    return rated_w / DRIVER_EFFICIENCY + STANDBY_W if rated_w and rated_w > 0 else 0.0


@dataclass(frozen=True)
class Factor:
    valid_from: date
    value: float
    basis: str
    year: int
    source: str


def in_force(factors: Sequence[Factor], day: date) -> Factor | None:
    """The factor valid on `day`: the latest whose valid_from is not after it."""
    found = None
    for f in sorted(factors, key=lambda f: f.valid_from):
        if f.valid_from <= day:
            found = f
    return found


def _sum(values: list[float | None]) -> float | None:
    """A total only when every part has one: never a figure made up for a missing factor."""
    if not values or any(v is None for v in values):
        return None
    return float(sum(v for v in values if v is not None))


def _ratio(saved: float | None, baseline: float | None) -> float | None:
    return None if saved is None or not baseline else saved / baseline


def bucket_row(start: datetime, end: datetime, energy_wh: float, measured_wh: float,
               estimated_wh: float, default_wh: float, measured: int | None, estimated: int | None,
               baseline_wh: float | None, tariff: float | None,
               emission: float | None) -> dict[str, Any]:
    """One bucket: energy, baseline and savings in Wh, euros and kg CO2e, and how much of it is
    measured. `tariff` EUR/kWh, `emission` g CO2e/kWh (None where no factor is set)."""
    saved = None if baseline_wh is None else baseline_wh - energy_wh
    kwh = energy_wh / 1000.0
    return {
        "start": start, "end": end, "energy_wh": energy_wh,
        "estimated": bool(estimated) or estimated_wh + default_wh > 0,
        "measured_wh": measured_wh, "estimated_wh": estimated_wh, "default_wh": default_wh,
        "measured_intervals": measured, "estimated_intervals": estimated,
        "baseline_wh": baseline_wh, "full_power_wh": baseline_wh,
        "savings_wh": saved, "savings_ratio": _ratio(saved, baseline_wh),
        "cost_eur": None if tariff is None else kwh * tariff,
        "co2_kg": None if emission is None else kwh * emission / 1000.0,
        "savings_eur": None if tariff is None or saved is None else saved / 1000.0 * tariff,
        "savings_co2_kg": None if emission is None or saved is None
        else saved / 1000.0 * emission / 1000.0,
    }


def report(p: Period, rows: list[dict[str, Any]], regime: str,
           tariff: Factor | None, emission: Factor | None) -> dict[str, Any]:
    """The whole period: the buckets and their totals."""
    energy = float(sum(r["energy_wh"] for r in rows))
    baseline = _sum([r["baseline_wh"] for r in rows])
    saved = None if baseline is None else baseline - energy
    counts = [r["measured_intervals"] for r in rows], [r["estimated_intervals"] for r in rows]
    return {
        "from": p.start, "to": p.end, "interval": p.bucket, "interval_s": p.width_s,
        "timezone": p.tz, "energy_wh": energy, "intervals": rows,
        "measured_wh": float(sum(r["measured_wh"] for r in rows)),
        "estimated_wh": float(sum(r["estimated_wh"] for r in rows)),
        "default_wh": float(sum(r["default_wh"] for r in rows)),
        "measured_intervals": None if any(c is None for c in counts[0]) else sum(counts[0]),
        "estimated_intervals": None if any(c is None for c in counts[1]) else sum(counts[1]),
        "baseline_wh": baseline, "full_power_wh": baseline, "baseline_regime": regime,
        "savings_wh": saved, "savings_ratio": _ratio(saved, baseline),
        "cost_eur": _sum([r["cost_eur"] for r in rows]),
        "co2_kg": _sum([r["co2_kg"] for r in rows]),
        "savings_eur": _sum([r["savings_eur"] for r in rows]),
        "savings_co2_kg": _sum([r["savings_co2_kg"] for r in rows]),
        "tariff": None if tariff is None else {**tariff.__dict__, "unit": "EUR/kWh"},
        "emission": None if emission is None else {**emission.__dict__, "unit": "g CO2e/kWh"},
    }
