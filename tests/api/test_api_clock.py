"""The API's clock, purely: the wall clock by default; a demo's simulated clock when handed one,
with a command's time left turned into wall seconds for the broker's message expiry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from api.clock import ApiClock
from api.settings import ApiSettings
from wire.sim_clock import SimClock

WALL0 = datetime(2026, 12, 2, 6, 0, tzinfo=UTC)
ORIGIN = datetime(2026, 12, 1, 14, 25, tzinfo=UTC)  # 75 minutes before last night's sunset


def _at(offset_s: float) -> ApiClock:
    """A clock handed the demo's simulated clock (60x from ORIGIN at WALL0), read offset_s later."""
    sim = SimClock(origin=ORIGIN, wall_s=WALL0.timestamp(), speed=60.0)
    return ApiClock(sim, wall=lambda: WALL0.timestamp() + offset_s)


def test_the_wall_clock_by_default() -> None:
    clock = ApiClock(wall=lambda: WALL0.timestamp() + 12.5)
    assert clock.now() == WALL0 + timedelta(seconds=12.5)
    assert clock.speed == 1.0
    assert ApiSettings().sim_clock is None


@pytest.mark.parametrize(("wall_s", "simulated"), [
    (0, ORIGIN), (1, ORIGIN + timedelta(minutes=1)), (60, ORIGIN + timedelta(hours=1)),
    # an hour of wall time: 60 simulated hours, some 44 hours past the wall clock
    (3600, ORIGIN + timedelta(hours=60)),
])
def test_now_runs_on_the_simulated_clock(wall_s: float, simulated: datetime) -> None:
    assert _at(wall_s).now() == simulated


@pytest.mark.parametrize(("left_sim_s", "wall_interval"), [
    (3600, 59),  # an hour of simulated time is a minute of wall time, less one for the way
    (86_400, 1439),
    (180, 2),
    (90, 1),  # 1.5 wall seconds
    (10, 1),  # a sixth of a wall second: still at least 1 (0 means never)
    (-30, 1),  # already past
])
def test_the_broker_expiry_is_the_simulated_time_left_in_wall_seconds(
        left_sim_s: float, wall_interval: int) -> None:
    clock = _at(3600)
    assert clock.expiry_interval_s(clock.now() + timedelta(seconds=left_sim_s)) == wall_interval


def test_the_wall_clocks_expiry_is_unchanged() -> None:
    clock = ApiClock(wall=lambda: WALL0.timestamp())
    assert clock.expiry_interval_s(WALL0 + timedelta(seconds=3600)) == 3599


def test_the_api_takes_the_clock_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    sim = SimClock(origin=ORIGIN, wall_s=WALL0.timestamp(), speed=60.0)
    monkeypatch.setenv("LUCIOLE_API_SIM_CLOCK", sim.model_dump_json())
    assert ApiSettings().sim_clock == sim
    for bad in ('{"origin": "2026-12-01T14:25:00", "wall_s": 1, "speed": 60}',  # naive time
                '{"origin": "2026-12-01T14:25:00Z", "wall_s": 1, "speed": 0}',
                '{"origin": "2026-12-01T14:25:00Z", "wall_s": 1}', "not json"):
        monkeypatch.setenv("LUCIOLE_API_SIM_CLOCK", bad)
        with pytest.raises(ValueError, match="sim_clock|SIM_CLOCK|json|JSON"):
            ApiSettings()
