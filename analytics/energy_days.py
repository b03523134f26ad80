"""Local days of 15-minute intervals (92, 96 or 100 across DST changes), baselines and savings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from analytics.energy_kernels import BUCKET_S, night_seconds


def local_day(day: date, tz: str) -> tuple[datetime, datetime, int]:
    """[start, end) of a local day in UTC and its number of 15-minute intervals."""
    zone = ZoneInfo(tz)
    start = datetime.combine(day, time(0), zone).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0), zone).astimezone(UTC)
    return start, end, int((end - start).total_seconds() // BUCKET_S)


def days_between(t0: datetime, t1: datetime, tz: str) -> list[date]:
    """The local days that (t0, t1] touches."""
    zone = ZoneInfo(tz)
    first = t0.astimezone(zone).date()
    last = (t1 - timedelta(microseconds=1)).astimezone(zone).date()
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def night_seconds_of(trans: np.ndarray, start: datetime, end: datetime) -> float:
    """Seconds from sunset to sunrise within [start, end) (the astronomical burning time)."""
    return float(night_seconds(trans, start.timestamp(), end.timestamp()))


@dataclass(frozen=True)
class Factor:
    """A tariff (EUR/kWh) or an emission factor (g CO2e/kWh), with where it comes from."""

    value: float
    unit: str
    basis: str
    year: int
    source: str


@dataclass(frozen=True)
class Savings:
    """Energy against the baseline, in kWh, euros and kg CO2e (None where no factor is set)."""

    baseline_wh: float
    actual_wh: float
    saved_wh: float
    saved_eur: float | None
    saved_co2_kg: float | None


def savings(baseline_wh: float, actual_wh: float, tariff: Factor | None,
            emission: Factor | None) -> Savings:
    """What the actual energy saved against the baseline (negative: it used more)."""
    saved = baseline_wh - actual_wh
    kwh = saved / 1000.0
    return Savings(baseline_wh, actual_wh, saved,
                   None if tariff is None else kwh * tariff.value,
                   None if emission is None else kwh * emission.value / 1000.0)


def baseline_wh(rated_input_w: np.ndarray, night_s: np.ndarray, share: float) -> float:
    """Full power (x the previous regime's share of it) over each luminaire's night seconds."""
    return float(np.sum(rated_input_w * night_s) / 3600.0 * share)
