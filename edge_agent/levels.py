"""Per-luminaire target levels, purely: schedule, then command overrides, presence, and CLO.

Order of precedence for one luminaire: the newest active command override (set level or
identify blink) wins; otherwise the scheduled level, raised by a presence boost (the luminaire's
own, from the sensors that watch it, or one for the whole controller); and when the
schedule asks for constant light output, the level is raised along the DALI logarithmic curve
to make up for the lumen depreciation of the LEDs after their hours of operation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from edge_agent.commands import IDENTIFY_PERIOD_S, Override, OverrideKind
from edge_agent.presence_boost import Boost, effective_level
from wire.messages import GroupTarget, LuminaireTarget, Target

MAX_ARC = 254

# --- the DALI logarithmic dimming curve (IEC 62386-102: X(n) = 10^((n-1)/(253/3) - 1) %) ---


def arc_to_fraction(level: int) -> float:
    """Light output fraction (0..1) of an arc level on the logarithmic curve; 0 is off."""
    if level <= 0:
        return 0.0
    return 10 ** ((min(level, MAX_ARC) - 1) / (253 / 3) - 1) / 100


def fraction_to_arc(fraction: float) -> int:
    """The arc level closest to `fraction` of full output (1..254), 0 for none."""
    if fraction <= 0:
        return 0
    level = 1 + (253 / 3) * (math.log10(fraction * 100) + 1)
    return max(1, min(MAX_ARC, round(level)))


# --- constant light output -------------------------------------------------------------


@dataclass(frozen=True)
class CloModel:
    """Linear lumen maintenance: output falls to `end_maintenance` after `life_h` hours.

    CLO drives a new luminaire at `end_maintenance` of its power and raises it with age so the
    light stays at the maintained value for the whole life (the design's maintenance factor).
    """

    life_h: float = 100_000.0
    end_maintenance: float = 0.8  # L80

    def lumen_maintenance(self, on_hours: float) -> float:
        used = min(max(on_hours, 0.0), self.life_h) / self.life_h
        return 1.0 - (1.0 - self.end_maintenance) * used

    def gain(self, on_hours: float) -> float:
        """Drive factor (<= 1) that keeps light output at the maintained value."""
        return self.end_maintenance / self.lumen_maintenance(on_hours)


def apply_clo(level: int, gain: float) -> int:
    """Scale a level's light output by `gain` along the logarithmic curve (0 stays off)."""
    if level <= 0:
        return 0
    return fraction_to_arc(arc_to_fraction(level) * gain)


# --- overrides and targets ---------------------------------------------------------------


def matches(target: Target, luminaire: int, groups: frozenset[int]) -> bool:
    if target == "all":
        return True
    if isinstance(target, LuminaireTarget):
        return target.luminaire == luminaire
    if isinstance(target, GroupTarget):
        return target.group in groups
    raise TypeError(f"unknown target {target!r}")


def override_for(overrides: tuple[Override, ...], luminaire: int, groups: frozenset[int],
                 now: datetime) -> Override | None:
    """The newest active override that applies to `luminaire` (overrides in arrival order)."""
    for override in reversed(overrides):
        if override.active(now) and matches(override.target, luminaire, groups):
            return override
    return None


def override_level(override: Override, now: datetime) -> int:
    if override.kind is OverrideKind.IDENTIFY:
        half_periods = int((now - override.since).total_seconds() / (IDENTIFY_PERIOD_S / 2))
        return override.level if half_periods % 2 == 0 else 0
    return override.level


def target_levels(luminaires: Mapping[int, frozenset[int]], scheduled: int, boost: Boost | None,
                  overrides: tuple[Override, ...], now: datetime, *, clo: bool = False,
                  on_hours: Mapping[int, float] | None = None,
                  clo_model: CloModel = CloModel(),
                  boosts: Mapping[int, Boost] | None = None) -> dict[int, int]:
    """Target arc level of each luminaire (index -> its DALI groups) at `now`.

    `boost` applies to every luminaire, `boosts` to one each; the higher level wins.
    """
    common = effective_level(scheduled, boost, now)
    out = {}
    for index, groups in luminaires.items():
        override = override_for(overrides, index, groups, now)
        own = (boosts or {}).get(index)
        base = common if own is None else max(common, effective_level(scheduled, own, now))
        if override is not None:
            out[index] = override_level(override, now)
        elif clo and base > 0:
            out[index] = apply_clo(base, clo_model.gain((on_hours or {}).get(index, 0.0)))
        else:
            out[index] = base
    return out
