"""The preview's night is the agent's: its level each minute is `wire.nights.level_at`,
its energy the exact integral of the levels' power, its baseline full power from dusk to dawn."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

from analytics.photometry import Photometry
from api.schedule_preview import PreviewError, preview
from wire.messages import Calendar, Schedule
from wire.nights import Position, level_at

BRUSSELS = Position(50.85, 4.35)
CALENDAR = Calendar.model_validate({
    "programs": {
        "work": {"steps": [{"anchor": "sunset", "level": 254},
                           {"anchor": "clock", "at": "22:00", "level": 180},
                           {"anchor": "clock", "at": "05:45", "level": 230},
                           {"anchor": "sunrise", "offset_min": -5, "level": 0}]},
        "rest": {"steps": [{"anchor": "sunset", "offset_min": 15, "level": 200},
                           {"anchor": "sunrise", "level": 0}]}},
    "week": ["work"] * 5 + ["rest"] * 2,
    "special_days": [{"name": "dst", "first": "2026-10-24", "program": "rest"}],
})


@pytest.mark.parametrize("day", [date(2026, 3, 28), date(2026, 6, 21), date(2026, 10, 24),
                                 date(2026, 10, 25), date(2026, 12, 21)])
def test_each_minute_is_the_level_the_agent_runs(day: date) -> None:
    curve = preview(CALENDAR, BRUSSELS, day, Photometry(rated_w=50), 3)
    for t, level in zip(curve.t.tolist(), curve.level.tolist(), strict=True):
        assert level == level_at(CALENDAR, BRUSSELS, datetime.fromtimestamp(t, UTC)), t
    assert curve.program == CALENDAR.program_name(day)


def test_energy_is_the_integral_and_the_baseline_full_power_all_night() -> None:
    photometry = Photometry(rated_w=50)
    day = date(2026, 1, 14)
    curve = preview(CALENDAR, BRUSSELS, day, photometry, 4)
    minutes = float(np.sum(curve.power_w)) / 60.0
    assert curve.energy_wh == pytest.approx(minutes, rel=0.01)
    night_h = (curve.sunrise - curve.sunset) / timedelta(hours=1)
    assert curve.baseline_wh == pytest.approx(photometry.full_w * 4 * night_h, rel=1e-6)
    assert 0 < curve.energy_wh < curve.baseline_wh
    full = Schedule.model_validate({"steps": [{"anchor": "sunset", "level": 254},
                                              {"anchor": "sunrise", "level": 0}]})
    same = preview(full, BRUSSELS, day, photometry, 4)
    assert same.energy_wh == pytest.approx(same.baseline_wh)


def test_a_night_without_sunset_is_refused_in_words() -> None:
    with pytest.raises(PreviewError, match="no sunset and sunrise"):
        preview(CALENDAR, Position(80.0, 15.0), date(2026, 6, 21), Photometry(), 1)
