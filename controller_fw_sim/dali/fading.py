"""DALI fade arithmetic (IEC 62386-102 §9.5): fade time, fade rate, extended fade time."""

from __future__ import annotations

import math

#: extended fade time multipliers (DTR0 bits 6:4) in seconds; index 0 means "no fade"
_EXTENDED_MULTIPLIER_S = (0.0, 0.1, 1.0, 10.0, 60.0)

#: UP / DOWN run at the fade rate for this long
UP_DOWN_DURATION_S = 0.2


def fade_time_s(fade_time: int) -> float:
    """Fade time for the 4-bit fadeTime variable: 0.5 * sqrt(2^n) s, 0 for n = 0."""
    if fade_time <= 0:
        return 0.0
    return 0.5 * math.sqrt(2.0 ** fade_time)


def fade_rate_steps_per_s(fade_rate: int) -> float:
    """Fade rate for the 4-bit fadeRate variable: 506 / sqrt(2^n) steps/s (n = 1..15)."""
    return 506.0 / math.sqrt(2.0 ** max(1, fade_rate))


def extended_fade_time_s(base: int, multiplier: int) -> float:
    """Extended fade time: (base + 1) * multiplier; multiplier 0 (or > 4) means no fade."""
    if multiplier <= 0 or multiplier >= len(_EXTENDED_MULTIPLIER_S):
        return 0.0
    return (base + 1) * _EXTENDED_MULTIPLIER_S[multiplier]


def encode_extended_fade_time(dtr0: int) -> tuple[int, int]:
    """(base, multiplier) stored by SET EXTENDED FADE TIME; invalid values store (0, 0)."""
    base, multiplier = dtr0 & 0x0F, (dtr0 >> 4) & 0x07
    if dtr0 > 0x4F:
        return 0, 0
    return base, multiplier
