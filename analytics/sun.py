"""Sunset and sunrise per place (astral): whether a reading was taken by day or by night."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

import numpy as np
from astral import Observer
from astral.sun import sunrise, sunset


@lru_cache(maxsize=65_536)
def _day(lat: float, lon: float, day: date) -> tuple[float, float]:
    observer = Observer(latitude=lat, longitude=lon)
    return (sunrise(observer, day, tzinfo=UTC).timestamp(),
            sunset(observer, day, tzinfo=UTC).timestamp())


def transitions(lat: float, lon: float, t0: float, t1: float) -> np.ndarray:
    """Sorted epoch seconds of sunrise, sunset, sunrise, ... from a day before t0 to after t1."""
    first = datetime.fromtimestamp(t0, UTC).date() - timedelta(days=1)
    last = datetime.fromtimestamp(t1, UTC).date() + timedelta(days=1)
    lat, lon = round(float(lat), 1), round(float(lon), 1)  # 10 km move it by under a minute
    out: list[float] = []
    day = first
    while day <= last:
        out.extend(_day(lat, lon, day))
        day += timedelta(days=1)
    return np.asarray(out, dtype=np.float64)


def sun_phase(trans: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For times t: (night, seconds since the last sunrise/sunset, seconds to the next one)."""
    t = np.asarray(t, dtype=np.float64)
    i = np.searchsorted(trans, t, side="right")
    i = np.clip(i, 1, trans.shape[0] - 1)
    night = (i - 1) % 2 == 1  # the last transition was a sunset
    return night, t - trans[i - 1], trans[i] - t


def sun_phase_at(lat: np.ndarray, lon: np.ndarray, place: np.ndarray,
                 t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`sun_phase` of readings t, each at place index ``place`` of the (lat, lon) arrays."""
    night = np.zeros(t.shape[0], dtype=bool)
    since = np.zeros(t.shape[0])
    until = np.zeros(t.shape[0])
    if t.shape[0] == 0:
        return night, since, until
    t0, t1 = float(t.min()), float(t.max())
    key = np.round(lat, 1) * 1000.0 + np.round(lon, 1)  # 0.1 degree moves it by a minute
    uniq, group = np.unique(key[place], return_inverse=True)
    for g in range(uniq.shape[0]):
        rows = np.flatnonzero(group == g)
        p = int(place[rows[0]])
        n, s, u = sun_phase(transitions(lat[p], lon[p], t0, t1), t[rows])
        night[rows], since[rows], until[rows] = n, s, u
    return night, since, until
