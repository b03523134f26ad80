"""Hourly traffic profiles learned from presence-sensor history: a pure function from readings.

A presence reading counts detections since the previous one. The profile is the mean count per
local hour of the day, for working days and for weekends apart, as a share of the busiest hour of
the night; hours with too few readings borrow the other day type's figure, then the overall mean.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np

WORKDAY, WEEKEND = 0, 1
MIN_READINGS_PER_HOUR = 3


@dataclass(frozen=True)
class TrafficProfile:
    """share[day_type, hour]: traffic as a share of the peak hour (0..1); peak_per_h the
    detections per hour at that peak (what the presence boost's expected duty is drawn from)."""

    share: np.ndarray  # (2, 24) float64
    peak_per_h: float
    readings: int

    def at(self, weekend: bool, hour: np.ndarray) -> np.ndarray:
        return self.share[int(weekend), np.asarray(hour, dtype=np.int64) % 24]


def local_hour_and_daytype(epoch_s: np.ndarray, tz: str) -> tuple[np.ndarray, np.ndarray]:
    """Local hour (0..23) and day type of each instant; a reading after midnight belongs to the
    weekday of its own local date."""
    zone = ZoneInfo(tz)
    t = np.asarray(epoch_s, dtype=np.float64)
    if t.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    # offsets change twice a year: compute per distinct hour, not per reading
    hours = np.floor(t / 3600.0).astype(np.int64)
    uniq, inv = np.unique(hours, return_inverse=True)
    local = [datetime.fromtimestamp(int(h) * 3600, zone) for h in uniq.tolist()]
    hour = np.array([d.hour for d in local], dtype=np.int64)[inv]
    daytype = np.array([WEEKEND if d.weekday() >= 5 else WORKDAY for d in local],
                       dtype=np.int64)[inv]
    return hour, daytype


def learn_profile(hour: np.ndarray, daytype: np.ndarray, counts: np.ndarray,
                  interval_s: float) -> TrafficProfile:
    """The profile of readings (local hour, day type, detections over `interval_s` seconds)."""
    hour = np.asarray(hour, dtype=np.int64)
    daytype = np.asarray(daytype, dtype=np.int64)
    c = np.clip(np.nan_to_num(np.asarray(counts, dtype=np.float64), nan=0.0), 0.0, None)
    if hour.shape != c.shape or daytype.shape != c.shape:
        raise ValueError("hour, daytype and counts must have one value per reading")
    if interval_s <= 0:
        raise ValueError("interval_s must be positive")
    cell = daytype * 24 + hour
    n = np.bincount(cell, minlength=48).astype(np.float64)
    total = np.bincount(cell, weights=c, minlength=48)
    per_h = np.divide(total, n, out=np.zeros(48), where=n > 0) * (3600.0 / interval_s)
    per_h = per_h.reshape(2, 24)
    n = n.reshape(2, 24)
    thin = n < MIN_READINGS_PER_HOUR
    other = per_h[::-1]
    per_h = np.where(thin & ~thin[::-1], other, per_h)
    both_thin = thin & thin[::-1]
    fallback = float(per_h[~both_thin].mean()) if (~both_thin).any() else 0.0
    per_h = np.where(both_thin, fallback, per_h)
    peak = float(per_h.max())
    share = per_h / peak if peak > 0 else np.ones((2, 24))
    return TrafficProfile(share=share, peak_per_h=peak, readings=int(c.shape[0]))


def typical_profile(kind: str) -> np.ndarray:
    """A published-shape urban profile (share of peak per local hour) for synthetic fleets and
    groups without sensors: 'arterial', 'collector' or 'residential'."""
    base = np.array([0.30, 0.18, 0.11, 0.08, 0.10, 0.25, 0.60, 0.95, 1.00, 0.80, 0.70, 0.72,
                     0.75, 0.72, 0.72, 0.78, 0.90, 1.00, 0.92, 0.75, 0.60, 0.52, 0.45, 0.38])
    if kind == "arterial":
        return base
    if kind == "collector":
        return np.clip(base * np.where(np.arange(24) < 6, 0.7, 1.0), 0, 1)
    if kind == "residential":
        return np.clip(base * np.where((np.arange(24) < 6) | (np.arange(24) >= 22), 0.5, 0.9),
                       0, 1) / 0.9
    raise ValueError(f"unknown road kind {kind!r}")
