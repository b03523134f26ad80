"""Sensor models: light from the sun in Brussels, diurnal presence, urban sensors, seeds."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from controller_fw_sim.sensors import (
    RoadClass,
    SensorField,
    clear_sky_lux,
    cloud_transmission,
    local_hour,
    sun_elevation_deg,
)

BRUSSELS = (50.85, 4.35)
SUMMER_NOON_UTC = datetime(2024, 6, 21, 11, 45, tzinfo=UTC)  # ~13:45 CEST, solar noon
SUMMER_NIGHT_UTC = datetime(2024, 6, 21, 0, 30, tzinfo=UTC)


def _field(seed: int = 42, n: int = 500, road: RoadClass = RoadClass.ARTERIAL) -> SensorField:
    return SensorField.uniform(n, *BRUSSELS, road_class=road, seed=seed)


def test_sun_elevation_in_brussels_on_the_summer_solstice():
    noon = sun_elevation_deg(*BRUSSELS, SUMMER_NOON_UTC)
    assert float(noon) == pytest.approx(90 - 50.85 + 23.44, abs=0.5)
    assert float(sun_elevation_deg(*BRUSSELS, SUMMER_NIGHT_UTC)) < -10


def test_lux_is_near_zero_at_night_and_high_at_noon():
    field = _field()
    night = field.ambient_lux(SUMMER_NIGHT_UTC)
    noon = field.ambient_lux(SUMMER_NOON_UTC)
    assert night.shape == noon.shape == (500,)
    assert night.max() < 0.1
    assert noon.min() > 50_000
    assert np.median(noon) == pytest.approx(100_000, rel=0.2)


def test_clouds_dim_daylight_and_illuminance_rises_with_elevation():
    elev = np.linspace(-20, 90, 200)
    assert np.all(np.diff(clear_sky_lux(elev)) >= 0)
    assert float(clear_sky_lux(-6)) == pytest.approx(3.0, rel=0.01)
    assert float(cloud_transmission(1.0)) == pytest.approx(0.25)
    field = _field(seed=1)
    overcast = field.ambient_lux(SUMMER_NOON_UTC, cloud_cover=1.0)
    assert np.median(overcast) < 0.3 * np.median(_field(seed=1).ambient_lux(SUMMER_NOON_UTC))


def test_presence_is_higher_at_evening_rush_than_at_3am():
    field = _field()
    rush = datetime(2024, 3, 12, 16, 30, tzinfo=UTC)  # 17:30 CET
    small_hours = datetime(2024, 3, 12, 2, 0, tzinfo=UTC)  # 03:00 CET
    assert local_hour(rush) == pytest.approx(17.5)
    rush_counts = field.presence_counts(rush, 60)
    night_counts = field.presence_counts(small_hours, 60)
    assert rush_counts.mean() > 10 * night_counts.mean()
    assert rush_counts.dtype.kind == "i" and (rush_counts >= 0).all()


def test_road_classes_have_their_own_traffic():
    rush = datetime(2024, 3, 12, 16, 30, tzinfo=UTC)
    arterial = _field(road=RoadClass.ARTERIAL).presence_rate_per_min(rush)
    residential = _field(road=RoadClass.RESIDENTIAL).presence_rate_per_min(rush)
    assert arterial.mean() > 5 * residential.mean()


def test_same_seed_same_readings_other_seed_other_readings():
    t = datetime(2024, 6, 21, 16, 0, tzinfo=UTC)

    def run(seed: int):
        f = _field(seed=seed, n=50)
        return f.ambient_lux(t), f.presence_counts(t), f.urban(t)

    a, b, c = run(7), run(7), run(8)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert all(np.array_equal(a[2][k], b[2][k]) for k in a[2])
    assert not np.array_equal(a[0], c[0])


def test_urban_sensors_follow_traffic_and_weather():
    f = _field(n=400)
    rush = f.urban(datetime(2024, 7, 16, 15, 30, tzinfo=UTC))  # 17:30 CEST
    night = f.urban(datetime(2024, 7, 16, 1, 0, tzinfo=UTC))  # 03:00 CEST
    winter = f.urban(datetime(2024, 1, 16, 13, 0, tzinfo=UTC))
    assert rush["noise_dba"].mean() > night["noise_dba"].mean() + 10
    assert rush["no2_ugm3"].mean() > 2 * night["no2_ugm3"].mean()
    assert rush["pm25_ugm3"].mean() > night["pm25_ugm3"].mean()
    assert rush["temperature_c"].mean() > winter["temperature_c"].mean() + 10
    assert rush["temperature_c"].mean() > night["temperature_c"].mean()
    assert rush["humidity_pct"].mean() < night["humidity_pct"].mean()
    corr = np.corrcoef(rush["temperature_c"], rush["humidity_pct"])[0, 1]
    assert corr < -0.3
    for values in rush.values():
        assert values.shape == (400,) and np.isfinite(values).all()


def test_naive_times_are_refused():
    with pytest.raises(ValueError):
        _field().ambient_lux(datetime(2024, 6, 21, 12))
