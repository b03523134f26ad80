"""Local days across the DST changes, baselines and savings with their factors."""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from analytics.energy_days import (
    Factor,
    baseline_wh,
    days_between,
    local_day,
    night_seconds_of,
    savings,
)
from analytics.energy_job import day_of
from analytics.sun import transitions


@pytest.mark.parametrize(("day", "tz", "intervals", "start_utc"), [
    (date(2026, 3, 29), "Europe/Brussels", 92, datetime(2026, 3, 28, 23, 0, tzinfo=UTC)),
    (date(2026, 10, 25), "Europe/Brussels", 100, datetime(2026, 10, 24, 22, 0, tzinfo=UTC)),
    (date(2026, 3, 28), "Europe/Brussels", 96, datetime(2026, 3, 27, 23, 0, tzinfo=UTC)),
    (date(2026, 10, 26), "Europe/Brussels", 96, datetime(2026, 10, 25, 23, 0, tzinfo=UTC)),
    (date(2026, 7, 1), "Europe/Brussels", 96, datetime(2026, 6, 30, 22, 0, tzinfo=UTC)),
    (date(2026, 3, 29), "UTC", 96, datetime(2026, 3, 29, 0, 0, tzinfo=UTC)),
])
def test_a_local_day_has_92_96_or_100_intervals(day: date, tz: str, intervals: int,
                                                start_utc: datetime) -> None:
    start, end, n = local_day(day, tz)
    assert (start, n) == (start_utc, intervals)
    assert (end - start).total_seconds() == n * 900


@given(st.dates(date(2020, 1, 1), date(2035, 12, 31)))
def test_local_days_tile_time_without_gap_or_overlap(day: date) -> None:
    a = local_day(day, "Europe/Brussels")
    b = local_day(date.fromordinal(day.toordinal() + 1), "Europe/Brussels")
    assert a[1] == b[0]
    assert day_of(a[0], "Europe/Brussels") == day
    assert day_of(a[1], "Europe/Brussels") != day


def test_days_between_names_each_local_day_touched() -> None:
    t0 = datetime(2026, 10, 24, 21, 59, tzinfo=UTC)  # 23:59 local, summer time
    t1 = datetime(2026, 10, 25, 23, 0, tzinfo=UTC)  # 00:00 local on the 26th, winter time
    assert days_between(t0, t1, "Europe/Brussels") == [date(2026, 10, 24), date(2026, 10, 25)]


def test_the_full_power_baseline_is_rated_power_over_the_astronomical_night() -> None:
    start, end, _ = local_day(date(2026, 1, 15), "Europe/Brussels")
    tr = transitions(50.85, 4.35, start.timestamp(), end.timestamp())

    night = night_seconds_of(tr, start, end)
    assert 15.5 * 3600 < night < 16.5 * 3600  # a mid-January night in Brussels
    assert baseline_wh(np.array([65.7, 30.0]), np.array([night, night]), 1.0) == pytest.approx(
        95.7 * night / 3600.0)
    assert baseline_wh(np.array([65.7]), np.array([night]), 0.8) == pytest.approx(
        0.8 * 65.7 * night / 3600.0)


def test_savings_carry_the_factors_that_made_them() -> None:
    co2 = Factor(167.49, "g CO2e/kWh", "residual mix", 2023, "AIB European Residual Mixes 2023")
    tariff = Factor(0.25, "EUR/kWh", "all-in", 2025, "contract")
    s = savings(10_000.0, 6_000.0, tariff, co2)
    assert s.saved_wh == 4_000.0
    assert s.saved_eur == pytest.approx(1.0)
    assert s.saved_co2_kg == pytest.approx(4.0 * 0.16749)
    none = savings(10_000.0, 12_000.0, None, None)
    assert none.saved_wh == -2_000.0 and none.saved_eur is None and none.saved_co2_kg is None
