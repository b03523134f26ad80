"""Vectorised sensor models over many poles: ambient light, presence, noise, air, weather.

Every model is numpy over a pole index and draws its randomness from one seeded
``numpy.random.Generator``, so a run is reproducible from its seed. Times are UTC
``datetime``s; diurnal shapes follow local time (Europe/Brussels by default).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum
from zoneinfo import ZoneInfo

import numpy as np
from astral import Observer
from astral.sun import elevation as astral_elevation

BRUSSELS = ZoneInfo("Europe/Brussels")

# Clear-sky horizontal illuminance (lux) against solar elevation (degrees), interpolated
# in log10. Approximate textbook values: night sky ~0.001 lx, end of nautical twilight
# ~0.01 lx, end of civil twilight ~3 lx, sunset ~400-600 lx, ~12 klx at 10 degrees,
# ~100 klx with a high summer sun.
_ELEVATION_DEG = np.array([-90.0, -18.0, -12.0, -6.0, -0.833, 0.0, 5.0, 10.0, 20.0, 30.0, 45.0, 60.0, 90.0])
_LOG10_LUX = np.log10(
    [0.001, 0.001, 0.01, 3.0, 400.0, 600.0, 4500.0, 12000.0, 33000.0, 55000.0, 80000.0, 98000.0, 120000.0]
)


class RoadClass(IntEnum):
    """Road classes with their own traffic level (index into per-class tables)."""

    ARTERIAL = 0
    COLLECTOR = 1
    RESIDENTIAL = 2
    PEDESTRIAN = 3


#: Peak detections per minute seen by one presence sensor, per road class.
PEAK_DETECTIONS_PER_MIN = np.array([40.0, 15.0, 4.0, 6.0])


def _utc(when: datetime) -> datetime:
    if when.tzinfo is None:
        raise ValueError("times must be timezone-aware (UTC)")
    return when.astimezone(UTC)


def local_hour(when_utc: datetime, tz: ZoneInfo = BRUSSELS) -> float:
    """Local clock time of a UTC instant, in fractional hours [0, 24)."""
    local = _utc(when_utc).astimezone(tz)
    return local.hour + local.minute / 60 + local.second / 3600


def sun_elevation_deg(lat: np.ndarray | float, lon: np.ndarray | float, when_utc: datetime) -> np.ndarray:
    """Solar elevation (degrees, with refraction) per pole, with astral.

    Poles are grouped on a 0.01 degree grid (about 1 km; the sun's elevation
    differs by less than 0.01 degree across it) so a city costs a few astral calls.
    """
    when = _utc(when_utc)
    lat_a, lon_a = np.broadcast_arrays(np.asarray(lat, dtype=float), np.asarray(lon, dtype=float))
    grid = np.stack([np.round(lat_a.ravel(), 2), np.round(lon_a.ravel(), 2)], axis=1)
    unique, inverse = np.unique(grid, axis=0, return_inverse=True)
    elev = np.array([astral_elevation(Observer(la, lo), when) for la, lo in unique])
    return elev[inverse.ravel()].reshape(lat_a.shape)


def clear_sky_lux(elevation_deg: np.ndarray | float) -> np.ndarray:
    """Clear-sky horizontal illuminance (lux) for a solar elevation (degrees)."""
    return 10.0 ** np.interp(np.asarray(elevation_deg, dtype=float), _ELEVATION_DEG, _LOG10_LUX)


def cloud_transmission(cloud_cover: np.ndarray | float) -> np.ndarray:
    """Fraction of clear-sky light that passes a cloud cover in [0, 1] (Kasten-Czeplak shape)."""
    c = np.clip(np.asarray(cloud_cover, dtype=float), 0.0, 1.0)
    return 1.0 - 0.75 * c**3.4


def traffic_shape(hour: np.ndarray | float) -> np.ndarray:
    """Relative traffic (0..1, peak 1) over local time: morning and evening rush, quiet night."""
    h = np.asarray(hour, dtype=float)

    def bump(centre: float, width: float) -> np.ndarray:
        d = (h - centre + 12.0) % 24.0 - 12.0
        return np.exp(-0.5 * (d / width) ** 2)

    shape = (
        0.03 + 0.9 * bump(8.0, 1.0) + 1.0 * bump(17.5, 1.3) + 0.5 * bump(12.5, 3.0) + 0.15 * bump(21.0, 2.0)
    )
    return shape / 1.0878  # normalised so the evening peak is ~1


def temperature_c(when_utc: datetime, *, annual_mean_c: float = 11.0, annual_amplitude_c: float = 7.5,
                  diurnal_amplitude_c: float = 4.0, tz: ZoneInfo = BRUSSELS) -> float:
    """Mean outdoor temperature: seasonal sinusoid (warmest ~20 July) + diurnal one (warmest 15:00)."""
    when = _utc(when_utc)
    doy = when.timetuple().tm_yday + local_hour(when, tz) / 24
    seasonal = annual_amplitude_c * math.cos(2 * math.pi * (doy - 201) / 365.25)
    diurnal = diurnal_amplitude_c * math.cos(2 * math.pi * (local_hour(when, tz) - 15.0) / 24)
    return annual_mean_c + seasonal + diurnal


@dataclass
class SensorField:
    """Sensors on ``n`` poles at (lat, lon) on roads of given classes.

    >>> field = SensorField.uniform(100, 50.85, 4.35, seed=1)
    >>> lux = field.ambient_lux(datetime(2024, 6, 21, 12, tzinfo=timezone.utc))
    """

    lat: np.ndarray
    lon: np.ndarray
    road_class: np.ndarray
    rng: np.random.Generator
    tz: ZoneInfo = BRUSSELS
    lux_noise_sigma: float = 0.08  # multiplicative (log-normal) sensor + shading noise

    @classmethod
    def uniform(cls, n: int, lat: float, lon: float, *, road_class: RoadClass = RoadClass.COLLECTOR,
                seed: int = 0, spread_deg: float = 0.02) -> SensorField:
        """``n`` poles scattered around (lat, lon), all on one road class."""
        rng = np.random.default_rng(seed)
        return cls(
            lat=lat + rng.uniform(-spread_deg, spread_deg, n),
            lon=lon + rng.uniform(-spread_deg, spread_deg, n),
            road_class=np.full(n, int(road_class)),
            rng=rng,
        )

    def __post_init__(self) -> None:
        self.lat = np.asarray(self.lat, dtype=float)
        self.lon = np.asarray(self.lon, dtype=float)
        self.road_class = np.asarray(self.road_class, dtype=np.int64)
        if not (self.lat.shape == self.lon.shape == self.road_class.shape) or self.lat.ndim != 1:
            raise ValueError("lat, lon and road_class must be 1-D arrays of one length")

    @property
    def n(self) -> int:
        return int(self.lat.size)

    def ambient_lux(self, when_utc: datetime, cloud_cover: float | np.ndarray = 0.0) -> np.ndarray:
        """Horizontal illuminance (lux) per pole: clear sky x cloud transmission x noise."""
        clear = clear_sky_lux(sun_elevation_deg(self.lat, self.lon, when_utc))
        noise = self.rng.lognormal(0.0, self.lux_noise_sigma, self.n)
        return clear * cloud_transmission(cloud_cover) * noise

    def traffic_index(self, when_utc: datetime) -> np.ndarray:
        """Relative traffic (0..1) per pole at this local time, same for all classes."""
        return np.full(self.n, float(traffic_shape(local_hour(when_utc, self.tz))))

    def presence_rate_per_min(self, when_utc: datetime) -> np.ndarray:
        """Expected detections per minute per pole (road-class peak x diurnal shape)."""
        return PEAK_DETECTIONS_PER_MIN[self.road_class] * self.traffic_index(when_utc)

    def presence_counts(self, when_utc: datetime, interval_s: float = 60.0) -> np.ndarray:
        """Detections per pole over ``interval_s`` (Poisson around the diurnal rate)."""
        return self.rng.poisson(self.presence_rate_per_min(when_utc) * interval_s / 60.0)

    def urban(self, when_utc: datetime) -> dict[str, np.ndarray]:
        """Multifunction-pole readings per pole.

        Keys: ``noise_dba``, ``pm25_ugm3``, ``no2_ugm3``, ``temperature_c``, ``humidity_pct``.
        Noise and NO2 follow traffic; PM2.5 has a background plus a smaller traffic
        share; humidity moves against temperature.
        """
        n, rng = self.n, self.rng
        traffic = self.traffic_index(when_utc) * (
            PEAK_DETECTIONS_PER_MIN[self.road_class] / PEAK_DETECTIONS_PER_MIN[0]
        )
        hour = local_hour(when_utc, self.tz)
        night = 1.0 if (hour >= 22 or hour < 6) else 0.0
        noise = 38.0 + 10.0 * np.log10(1.0 + 300.0 * traffic) - 3.0 * night + rng.normal(0, 1.5, n)
        no2 = (12.0 + 45.0 * traffic) * rng.lognormal(0, 0.15, n)
        pm25 = (8.0 + 6.0 * traffic) * rng.lognormal(0, 0.2, n)
        t_mean = temperature_c(when_utc, tz=self.tz)
        t_daily = temperature_c(when_utc, diurnal_amplitude_c=0.0, tz=self.tz)
        temperature = t_mean + rng.normal(0, 0.4, n)
        humidity = np.clip(75.0 - 3.5 * (temperature - t_daily) + rng.normal(0, 2.0, n), 15.0, 100.0)
        return {
            "noise_dba": noise,
            "pm25_ugm3": pm25,
            "no2_ugm3": no2,
            "temperature_c": temperature,
            "humidity_pct": humidity,
        }
