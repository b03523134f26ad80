"""A presence boost on the controller: the scheduled level raised while someone passes, held,
then faded back. Pure; the night's scheduled level comes from `wire.nights`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from wire.messages import PresenceBoost


@dataclass(frozen=True)
class Boost:
    """A presence boost in progress: full boost until hold_until, then a linear fade back."""

    level: int
    hold_until: datetime
    fade_s: float


def boost_on_presence(boost: PresenceBoost, detected_at: datetime) -> Boost:
    return Boost(boost.level, detected_at + timedelta(seconds=boost.hold_s), boost.fade_s)


def effective_level(scheduled: int, boost: Boost | None, instant: datetime) -> int:
    """The level to drive: the schedule, raised by a presence boost only while the street is lit.

    During the fade the boost decays linearly in arc steps towards the scheduled level.
    """
    if boost is None or scheduled == 0 or boost.level <= scheduled:
        return scheduled
    if instant <= boost.hold_until:
        return boost.level
    if boost.fade_s <= 0:
        return scheduled
    elapsed = (instant - boost.hold_until).total_seconds()
    if elapsed >= boost.fade_s:
        return scheduled
    return round(boost.level - (boost.level - scheduled) * elapsed / boost.fade_s)
