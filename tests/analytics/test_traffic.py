"""Traffic profiles from presence readings: a pure function from readings to shares of the peak."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics.optimiser_job import presence_rates
from analytics.traffic import WEEKEND, WORKDAY, learn_profile, local_hour_and_daytype


def test_the_profile_is_the_mean_rate_per_local_hour_as_a_share_of_the_peak() -> None:
    hour = np.array([8, 8, 8, 3, 3, 3, 20, 20, 20])
    daytype = np.zeros(9, dtype=np.int64)
    counts = np.array([40, 60, 50, 5, 5, 5, 25, 25, 25], dtype=float)
    p = learn_profile(hour, daytype, counts, interval_s=900)
    assert p.peak_per_h == pytest.approx(200.0)
    assert p.share[WORKDAY, 8] == 1.0
    assert p.share[WORKDAY, 3] == pytest.approx(0.1)
    assert p.share[WORKDAY, 20] == pytest.approx(0.5)
    # the weekend had no readings: it borrows the workday's figures
    assert p.share[WEEKEND, 3] == pytest.approx(0.1)
    # hours nobody measured take the mean of the measured ones
    assert p.share[WORKDAY, 12] == pytest.approx(p.share[WORKDAY, [3, 8, 20]].mean())


def test_local_hours_follow_brussels_time_across_the_change_of_clocks() -> None:
    t = np.array([datetime(2026, 3, 29, 0, 30, tzinfo=UTC).timestamp(),   # 01:30 CET, Sunday
                  datetime(2026, 3, 29, 1, 30, tzinfo=UTC).timestamp(),   # 03:30 CEST
                  datetime(2026, 3, 30, 6, 0, tzinfo=UTC).timestamp()])   # 08:00 CEST, Monday
    hour, daytype = local_hour_and_daytype(t, "Europe/Brussels")
    assert hour.tolist() == [1, 3, 8]
    assert daytype.tolist() == [WEEKEND, WEEKEND, WORKDAY]


@pytest.mark.parametrize(("counts", "says"), [
    (np.array([1.0, 2.0]), "one value per reading"),
])
def test_mismatched_readings_are_refused(counts: np.ndarray, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        learn_profile(np.array([1]), np.array([0]), counts, 900)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 23), st.integers(0, 1),
                          st.one_of(st.floats(-10, 1e6), st.just(float("nan")))), min_size=1,
                max_size=300))
def test_any_readings_give_shares_in_zero_to_one_with_a_peak_of_one(
        readings: list[tuple[int, int, float]]) -> None:
    hour, daytype, counts = (np.array(x) for x in zip(*readings, strict=True))
    p = learn_profile(hour, daytype, counts.astype(float), 600)
    assert p.share.shape == (2, 24)
    assert np.all((p.share >= 0) & (p.share <= 1)) and np.isfinite(p.share).all()
    assert p.share.max() == pytest.approx(1.0)


def test_presence_counts_become_rates_over_each_sensors_own_interval() -> None:
    t0 = datetime(2026, 1, 5, 20, tzinfo=UTC).timestamp()
    rows = [(1, 32, t0, 9.0), (1, 32, t0 + 900, 30.0), (1, 32, t0 + 1800, 15.0),
            (2, 32, t0 + 60, 99.0), (2, 32, t0 + 360, 10.0),
            (2, 32, t0 + 360 + 86_400, 5.0)]  # a day's gap: no rate from it
    t, rate = presence_rates(rows)
    assert rate.tolist() == [120.0, 60.0, 120.0]
    assert t.tolist() == [t0 + 900, t0 + 1800, t0 + 360]
    assert presence_rates([])[0].size == 0
