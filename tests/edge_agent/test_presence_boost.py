"""A presence boost on the controller: held at its level, faded back, never lighting a street the
schedule keeps off."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from edge_agent.presence_boost import boost_on_presence, effective_level
from wire.messages import PresenceBoost

PRESENCE = PresenceBoost(level=254, hold_s=60, fade_s=10)


def test_presence_boost_holds_then_fades_back() -> None:
    t0 = datetime(2026, 1, 10, 23, tzinfo=UTC)
    boost = boost_on_presence(PRESENCE, t0)
    assert effective_level(100, boost, t0) == 254
    assert effective_level(100, boost, t0 + timedelta(seconds=60)) == 254
    assert effective_level(100, boost, t0 + timedelta(seconds=65)) == 177
    assert effective_level(100, boost, t0 + timedelta(seconds=70)) == 100
    assert effective_level(100, None, t0) == 100


def test_presence_never_lights_a_street_the_schedule_keeps_off() -> None:
    t0 = datetime(2026, 6, 10, 12, tzinfo=UTC)
    assert effective_level(0, boost_on_presence(PRESENCE, t0), t0) == 0
    assert effective_level(254, boost_on_presence(PRESENCE, t0), t0) == 254
