"""The demo's schedules and its savings figure, pure: each road class's current calendar is a
valid calendar whose night the controllers' own code runs as described (full from sunset, dimmed
late, full for the morning, off by day), busier roads dimmed later and less; the road described
for the optimiser is one the API accepts; the optimiser's first stored proposal is adopted once,
with the console line saying so; and the savings so far count a running night only as far as
its energy is booked."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from analytics.photometry import log_curve_fraction
from analytics.road_classes import CLASS_MINIMUM
from analytics.sun import transitions
from api.energy_report import night_baseline_wh, savings_so_far_wh
from api.group_lighting import Lighting
from api.schedules import PLAN
from luciole.demo import progress_line
from luciole.demo_schedules import (
    FULL,
    ROAD_PLANS,
    ApiError,
    DemoSchedules,
    EnergyManager,
    current_calendar,
    current_name,
    lighting_of,
    plan_of,
)
from wire.messages import Calendar
from wire.nights import Position, level_at, sun_times

TZ = ZoneInfo("Europe/Brussels")
BRUSSELS = Position(50.85, 4.35)
NIGHT = date(2026, 12, 1)


def _local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=TZ)


@pytest.mark.parametrize("road", sorted(ROAD_PLANS))
def test_each_road_class_gets_a_valid_calendar_run_as_described(road: str) -> None:
    calendar = current_calendar(road)
    stored = PLAN.validate_python(calendar.model_dump(mode="json"))  # as POST /schedules takes it
    assert isinstance(stored, Calendar) and stored == calendar
    plan = ROAD_PLANS[road]
    sunset, sunrise = sun_times(NIGHT, BRUSSELS, TZ)
    dim_from = _local(NIGHT, plan.dim_at.hour, plan.dim_at.minute)
    full_from = _local(NIGHT + timedelta(days=1), plan.full_at.hour, plan.full_at.minute)
    assert sunset < dim_from < full_from < sunrise
    at = {"sunset": sunset + timedelta(minutes=5), "late": dim_from + timedelta(minutes=5),
          "morning": full_from + timedelta(minutes=5), "day": sunrise + timedelta(hours=3)}
    levels = {k: level_at(calendar, BRUSSELS, t) for k, t in at.items()}
    assert levels["sunset"] == FULL and levels["morning"] == FULL and levels["day"] == 0
    light = float(log_curve_fraction(levels["late"]))
    assert plan.dim_light <= light < plan.dim_light + 0.03  # never below what the plan says
    assert current_name(road).startswith(f"current {road}: full from sunset")


def test_busier_roads_dim_later_and_less() -> None:
    order = ("arterial", "collector", "residential")
    dims = [ROAD_PLANS[r].dim_light for r in order]
    starts = [ROAD_PLANS[r].dim_at for r in order]
    assert dims == sorted(dims, reverse=True) and dims[0] > dims[-1]
    assert starts == sorted(starts, reverse=True) and starts[0] > starts[-1]


@pytest.mark.parametrize("road", [*sorted(ROAD_PLANS), None, "motorway"])
def test_the_road_described_for_the_optimiser_is_accepted_and_lit_above_its_class(
        road: str | None) -> None:
    described = Lighting.model_validate(lighting_of(road))  # as PUT /groups/{id}/lighting takes it
    # the design at full light, maintained, is above the class: there is something to save
    assert described.design_at_full * described.maintenance_factor > CLASS_MINIMUM[
        described.rated_class]
    assert plan_of(road) == ROAD_PLANS.get(road or "", ROAD_PLANS["residential"])


class Manager(EnergyManager):
    """The energy manager's session with the API's answers given by the test (no HTTP)."""

    def __init__(self, proposals: list[Any]) -> None:
        self.proposals = proposals
        self.calls: list[tuple[str, str, object]] = []

    def call(self, method: str, path: str, body: object = None) -> Any:
        self.calls.append((method, path, body))
        if path.startswith("/schedules/proposals"):
            found = self.proposals.pop(0) if self.proposals else None
            if isinstance(found, Exception):
                raise found
            return [found] if found else []
        if method == "POST" and path == "/schedules":
            assert isinstance(body, dict)
            return {"id": 41, "name": body["name"], "version": 1}
        if path.endswith("/push"):
            return [{"id": "b" * 32, "devices": 3, "sent": 3}]
        return None


PROPOSAL = {"first_night": "2026-12-01", "body": {"programs": {}}, "predicted_energy_wh": 750.0,
            "baseline_energy_wh": 1000.0, "savings_wh": 250.0}


def test_the_first_stored_proposal_is_adopted_once_and_said() -> None:
    manager = Manager([None, ApiError("503"), dict(PROPOSAL), dict(PROPOSAL)])
    demo = DemoSchedules(manager, group_id=7, road_class="residential", poll_every_s=2.0)
    assert demo.poll(now_s=10.0) is None  # nothing stored yet
    assert demo.poll(now_s=11.0) is None and len(manager.calls) == 1  # not asked again so soon
    assert demo.poll(now_s=12.0) is None  # the API refused: asked again at the next poll
    said = demo.poll(now_s=14.0)
    assert said == ("schedule 'optimised edge agents from 2026-12-01' pushed to 3 controllers of "
                    "'edge agents' (group 7): predicted −25 % energy against full light from dusk "
                    "to dawn")
    assert [(m, p) for m, p, _ in manager.calls[-3:]] == [
        ("POST", "/schedules"), ("PUT", "/groups/7/schedule"), ("POST", "/schedules/41/push")]
    assert manager.calls[-3][2] == {"name": "optimised edge agents from 2026-12-01",
                                    "body": PROPOSAL["body"]}
    calls = len(manager.calls)
    assert demo.poll(now_s=30.0) is None and len(manager.calls) == calls  # adopted once


def test_the_start_describes_the_road_and_pushes_the_current_calendar() -> None:
    manager = Manager([])
    said = DemoSchedules(manager, group_id=7, road_class="arterial").start()
    assert [(m, p) for m, p, _ in manager.calls] == [
        ("PUT", "/groups/7/lighting"), ("POST", "/schedules"), ("PUT", "/groups/7/schedule"),
        ("POST", "/schedules/41/push")]
    assert manager.calls[0][2] == lighting_of("arterial")
    assert manager.calls[1][2] == {"name": current_name("arterial"),
                                   "body": current_calendar("arterial").model_dump(mode="json")}
    assert said.startswith(f"schedule {current_name('arterial')!r} pushed to 3 controllers")


# ------------------------------------------------------------------ savings so far

FULL_W = 1000.0  # the municipality's luminaires at full input power


def _sunset() -> datetime:
    t0 = _local(NIGHT, 12).timestamp()
    trans = transitions(BRUSSELS.lat, BRUSSELS.lon, t0, t0 + 86_400)
    return datetime.fromtimestamp(float(trans[trans > t0][0]), UTC)  # the evening's sunset


def test_a_running_night_saves_against_what_is_booked_not_its_whole_night() -> None:
    sunset = _sunset()
    start = sunset - timedelta(minutes=40)  # the demo opens 40 minutes before sunset
    newest_end = sunset + timedelta(hours=2, minutes=15)  # booked up to here, its last interval
    position = sunset + timedelta(hours=2, minutes=5)  # ... as far as the job's cursor
    energy_wh = 0.6 * FULL_W * 2 + 0.5 * FULL_W / 12  # dimmed to 60 % of power, 2h05 of night
    saved = savings_so_far_wh(start, energy_wh, newest_end, position, FULL_W, BRUSSELS.lat,
                              BRUSSELS.lon)
    baseline = FULL_W * (2 + 5 / 60)  # full power over the night booked: 2 h 05 after sunset
    assert saved == pytest.approx(baseline - energy_wh, abs=0.5)
    assert saved > 0  # the first night shows its savings as it runs
    whole = night_baseline_wh(  # the running night's whole baseline would count its future too
        np.array([start.timestamp()]), np.array([start.timestamp() + 86_400.0]), FULL_W,
        BRUSSELS.lat, BRUSSELS.lon)
    assert saved < float(whole[0]) - energy_wh - 10 * FULL_W


def test_savings_before_sunset_are_none_and_the_share_scales_the_baseline() -> None:
    sunset = _sunset()
    start = sunset - timedelta(minutes=40)
    by_day = savings_so_far_wh(start, 30.0, sunset - timedelta(minutes=10), None, FULL_W,
                               BRUSSELS.lat, BRUSSELS.lon)
    assert by_day == pytest.approx(-30.0)  # a lamp burning by day only costs
    end = sunset + timedelta(hours=1)
    half = savings_so_far_wh(start, 0.0, end, None, FULL_W, BRUSSELS.lat, BRUSSELS.lon, share=0.5)
    assert half == pytest.approx(FULL_W * 0.5, abs=0.5)
    # booked before the start (no interval yet): nothing to compare with, no saving
    assert savings_so_far_wh(start, 0.0, start - timedelta(minutes=15), None, FULL_W,
                             BRUSSELS.lat, BRUSSELS.lon) == 0.0


def test_the_progress_line_says_saved_so_far() -> None:
    line = progress_line(61.0, _sunset(), _sunset(), 100.0, 0, 2, 5.0, 1.3, 0.5, 60.0)
    assert "5.0 kWh booked (0.5 of it estimated" in line and "1.3 saved so far" in line


def test_the_progress_line_says_how_far_the_bulk_fleet_trails_the_clock() -> None:
    """The hosted agents keep the clock on their own, so the newest reading can be on time while
    the bulk-simulated fleet has fallen behind on a busy machine: the line says so apart."""
    behind = progress_line(61.0, _sunset(), _sunset(), 100.0, 0, 2, 5.0, 1.3, 0.5, 60.0,
                           fleet_behind_s=7_200.0)
    assert "bulk fleet 120.0 s wall behind the clock" in behind
    assert "bulk fleet" not in progress_line(61.0, _sunset(), _sunset(), 100.0, 0, 2, 5.0, 1.3,
                                             0.5, 60.0)
