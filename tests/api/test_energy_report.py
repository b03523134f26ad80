"""Energy reports, pure: buckets of a period across DST, the bound on their number, the night
seconds of a bucket against the energy job's reference, and a bucket's savings, euros and CO2."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from analytics.energy_kernels import night_seconds as job_night_seconds
from analytics.sun import transitions
from api import energy_report as rep
from api.problems import Problem

BXL = "Europe/Brussels"
T0 = datetime(2025, 12, 31, 23, tzinfo=UTC)  # local midnight, 1 January 2026


@pytest.mark.parametrize(("days", "bucket", "expected"), [
    (1, "15min", 96), (1, "hour", 24), (7, "hour", 168), (30, "day", 30), (365, "month", 12),
    (31, "15min", 2976)])
def test_bucket_counts(days: int, bucket: rep.BucketName, expected: int) -> None:
    assert rep.count(T0, T0 + timedelta(days=days), bucket, BXL) == expected


@pytest.mark.parametrize(("days", "chosen"), [(1, "15min"), (7, "hour"), (30, "day"), (365, "day")])
def test_a_bucket_is_chosen_from_the_range(days: int, chosen: str) -> None:
    assert rep.period(T0, T0 + timedelta(days=days), BXL, None).bucket == chosen


def test_too_many_buckets_is_a_422_that_says_so() -> None:
    with pytest.raises(Problem) as raised:
        rep.period(T0, T0 + timedelta(days=365), BXL, "15min")
    assert raised.value.status == 422
    assert "35,040 buckets, more than 3,000" in raised.value.detail
    assert raised.value.extra == {"buckets": 35_040, "max_buckets": rep.MAX_BUCKETS}


def test_day_buckets_are_whole_local_days_across_the_spring_change() -> None:
    p = rep.period(datetime(2026, 3, 28, 12, tzinfo=UTC), datetime(2026, 3, 30, 1, tzinfo=UTC), BXL, "day")
    assert (p.start, p.end) == (datetime(2026, 3, 27, 23, tzinfo=UTC), datetime(2026, 3, 30, 22, tzinfo=UTC))
    sunday = datetime(2026, 3, 28, 23, tzinfo=UTC)
    assert rep.bucket_end(p, sunday) - sunday == timedelta(hours=23)  # 29 March: 92 intervals
    months = rep.period(datetime(2026, 1, 15, tzinfo=UTC), datetime(2026, 3, 2, tzinfo=UTC), BXL, "month")
    feb = datetime(2026, 1, 31, 23, tzinfo=UTC)
    assert rep.bucket_end(months, feb) == datetime(2026, 2, 28, 23, tzinfo=UTC)


@given(st.floats(0, 86_400 * 3), st.floats(60, 86_400))
def test_night_seconds_match_the_energy_jobs_reference(offset: float, width: float) -> None:
    t0 = datetime(2026, 6, 20, tzinfo=UTC).timestamp()
    trans = transitions(50.85, 4.35, t0, t0 + 5 * 86_400)
    lo = t0 + offset
    hi = lo + width
    got = rep.night_seconds(trans, np.array([lo]), np.array([hi]))[0]
    assert got == pytest.approx(job_night_seconds(trans, lo, hi), abs=1e-6)


def test_a_bucket_in_wh_euros_and_co2() -> None:
    row = rep.bucket_row(T0, T0 + timedelta(hours=1), 400.0, 300.0, 100.0, 0.0, 3, 1, 1000.0,
                         0.25, 200.0)
    assert row["savings_wh"] == 600.0 and row["savings_ratio"] == 0.6
    assert row["cost_eur"] == pytest.approx(0.1) and row["savings_eur"] == pytest.approx(0.15)
    assert row["co2_kg"] == pytest.approx(0.08) and row["savings_co2_kg"] == pytest.approx(0.12)
    assert row["estimated"] is True
    bare = rep.bucket_row(T0, T0, 400.0, 400.0, 0.0, 0.0, 4, 0, None, None, None)
    assert bare["estimated"] is False
    assert bare["savings_wh"] is bare["cost_eur"] is bare["savings_co2_kg"] is None


def test_a_total_needs_every_bucket_to_have_its_factor() -> None:
    p = rep.period(T0, T0 + timedelta(hours=2), BXL, "hour")
    with_factor = rep.bucket_row(T0, T0, 100.0, 100.0, 0.0, 0.0, 4, 0, 200.0, 0.2, 100.0)
    without = rep.bucket_row(T0, T0, 100.0, 100.0, 0.0, 0.0, 4, 0, 200.0, None, None)
    out = rep.report(p, [with_factor, without], "full_dusk_to_dawn", None, None)
    assert out["energy_wh"] == 200.0 and out["savings_wh"] == 200.0
    assert out["cost_eur"] is None and out["savings_eur"] is None
    assert rep.report(p, [with_factor, with_factor], "x", None, None)["cost_eur"] == pytest.approx(0.04)


def test_the_factor_in_force_is_the_latest_started() -> None:
    old = rep.Factor(date(2020, 1, 1), 0.2, "b", 2020, "s")
    new = rep.Factor(date(2026, 1, 1), 0.3, "b", 2026, "s")
    assert rep.in_force([new, old], date(2025, 12, 31)) is old
    assert rep.in_force([new, old], date(2026, 1, 1)) is new
    assert rep.in_force([new], date(2019, 1, 1)) is None


def test_a_bucket_still_running_is_compared_with_the_night_booked_so_far() -> None:
    """An hour bucket of which two quarter hours are booked (the night in progress) gets the
    baseline of those two; whole buckets before it keep theirs."""
    t0 = datetime(2026, 12, 1, 17, 0, tzinfo=UTC)  # night in Brussels
    ends = [t0, t0 + timedelta(hours=1)]
    booked_until = t0 + timedelta(minutes=30)
    hi = rep.baseline_until(ends, booked_until)
    assert hi.tolist() == [t0.timestamp(), booked_until.timestamp()]
    lo = np.array([(t0 - timedelta(hours=1)).timestamp(), t0.timestamp()])
    trans = transitions(50.85, 4.35, lo[0], ends[-1].timestamp())
    assert rep.night_seconds(trans, lo, hi).tolist() == [3600.0, 1800.0]
    # inside the newest interval, as far as the energy job has booked it
    newest_end = booked_until
    assert rep.booked_until(newest_end, None) == newest_end
    assert rep.booked_until(newest_end, newest_end - timedelta(minutes=10)) == (
        newest_end - timedelta(minutes=10))
    assert rep.booked_until(newest_end, newest_end + timedelta(hours=2)) == newest_end
    # a cursor from before the newest interval (rows written without the job) takes nothing
    # more than that interval off
    assert rep.booked_until(newest_end, newest_end - timedelta(days=3)) == (
        newest_end - timedelta(minutes=15))
