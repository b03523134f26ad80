"""A schedule's or calendar's night as the controller will run it: per-minute arc level, light and
group power, with the night's energy against the full-power dusk-to-dawn baseline.

Pure. The night's transitions come from the edge agent's own schedule code
(`wire.nights.night`, pure functions of plan, position and date), so the curve the
dashboard draws is the one the agent runs; power comes from the optimiser's photometry model
(`analytics.photometry`). Presence boosts are not in the curve (they add light when someone
passes).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

import numpy as np

from analytics.photometry import Photometry, log_curve_fraction
from wire.nights import FALLBACK, Night, Plan, Position, night


class PreviewError(ValueError):
    """A night that cannot be drawn (no sunset or sunrise at that place and date)."""


@dataclass(frozen=True)
class Curve:
    day: date
    program: str
    sunset: datetime
    sunrise: datetime
    t: np.ndarray  # epoch seconds of each minute
    level: np.ndarray  # arc level 0..254
    baseline_level: np.ndarray
    light_pct: np.ndarray  # light output, % of full
    power_w: np.ndarray  # the group's input power
    baseline_w: np.ndarray
    energy_wh: float
    baseline_wh: float


def _levels(n: Night, t: np.ndarray) -> np.ndarray:
    """The level in force at each epoch second t (0 before the first transition and after the
    night's end), as `wire.nights.level_at` reads one night."""
    at = np.array([tr.at.timestamp() for tr in n.transitions])
    lv = np.array([tr.level for tr in n.transitions], dtype=np.int64)
    i = np.searchsorted(at, t, side="right") - 1
    return np.where(i >= 0, lv[np.maximum(i, 0)], 0)


def _energy_wh(n: Night, watts: np.ndarray) -> float:
    """Exact energy of the night's piecewise-constant levels (`watts` indexed by arc level)."""
    total = 0.0
    for a, b in zip(n.transitions[:-1], n.transitions[1:], strict=True):
        if a.level > 0:
            total += float(watts[a.level]) * (b.at - a.at).total_seconds() / 3600.0
    return total


def preview(plan: Plan, position: Position, day: date, photometry: Photometry,
            luminaires: int) -> Curve:
    """The night starting on the local evening of `day` for `luminaires` of this photometry."""
    try:
        planned = night(plan, position, day)
        base = night(FALLBACK.model_copy(update={"timezone": plan.timezone}), position, day)
    except (ValueError, OverflowError) as exc:  # astral: the sun never sets or never rises
        raise PreviewError(f"no sunset and sunrise at {position.lat:.2f}, {position.lon:.2f} "
                           f"on {day}: {exc}") from None
    arcs = np.arange(255)
    watts = np.where(arcs > 0, photometry.power_w(log_curve_fraction(arcs)), 0.0) * luminaires
    start = min(planned.start, base.start).timestamp() // 60 * 60
    end = max(planned.end, base.end).timestamp()
    t = np.arange(start, end + 60, 60.0)
    level = _levels(planned, t)
    base_level = _levels(base, t)
    return Curve(day=day, program=planned.program, sunset=planned.sunset.astimezone(UTC),
                 sunrise=planned.sunrise.astimezone(UTC), t=t, level=level,
                 baseline_level=base_level,
                 light_pct=np.round(log_curve_fraction(level) * 100.0, 2),
                 power_w=watts[level], baseline_w=watts[base_level],
                 energy_wh=_energy_wh(planned, watts), baseline_wh=_energy_wh(base, watts))
