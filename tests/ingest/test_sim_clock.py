"""The demo's clock: the fleet runs at 60x from last night's sunset, so after some 50 minutes of
wall time its records lie more than a day past the wall clock. Ingest's accepted window moves
with the simulated clock when (and only when) the demo hands it that clock."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from pydantic import ValidationError

from ingest.settings import IngestSettings
from ingest.writer import Writer
from luciole.demo import demo_start
from wire.codec import decode_batch, encode_luminaire
from wire.records import LUMINAIRE_DTYPE
from wire.sim_clock import SimClock

WALL0 = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)


def _accepted(time_us: int, now_us: int) -> bool:
    lum = np.zeros(1, dtype=LUMINAIRE_DTYPE)
    lum["time_us"] = time_us
    return len(decode_batch([encode_luminaire(1, 0, lum)], now_us).luminaire) == 1


def test_an_hour_at_60x_is_accepted_with_the_clock_and_refused_without() -> None:
    start = demo_start(WALL0)
    clock = SimClock(origin=start, wall_s=WALL0.timestamp(), speed=60.0)
    with_clock = Writer("", sim_clock=clock)
    without = Writer("")
    wall0_us = int(WALL0.timestamp() * 1_000_000)
    refused_from = None
    for t in range(0, 3601, 30):  # an hour of wall time, a record every 30 s
        wall_us = wall0_us + t * 1_000_000
        record_us = clock.now_us(wall_us)  # the fleet's newest record (it can only lag this)
        assert _accepted(record_us, with_clock._accept_now_us(wall_us)), t
        if refused_from is None and not _accepted(record_us, without._accept_now_us(wall_us)):
            refused_from = t
    # without the clock, the wall clock's window refuses the fleet within the hour
    assert refused_from is not None and 20 * 60 < refused_from < 3600
    # and the window still refuses a record more than a day past the simulated clock
    end_us = wall0_us + 3600 * 1_000_000
    far = clock.now_us(end_us) + 86_400_000_000 + 60_000_000
    assert not _accepted(far, with_clock._accept_now_us(end_us))


def test_the_clock_never_narrows_the_window_and_is_off_by_default() -> None:
    behind = SimClock(origin=datetime(2020, 1, 1, tzinfo=UTC), wall_s=WALL0.timestamp(), speed=1)
    wall_us = int(WALL0.timestamp() * 1_000_000)
    assert behind.accept_now_us(wall_us) == wall_us
    assert IngestSettings().sim_clock is None


def test_the_clock_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = SimClock(origin=WALL0, wall_s=1.5e9, speed=60)
    monkeypatch.setenv("LUCIOLE_INGEST_SIM_CLOCK", clock.model_dump_json())
    assert IngestSettings().sim_clock == clock
    monkeypatch.setenv("LUCIOLE_INGEST_SIM_CLOCK", '{"origin": "2026-12-01T00:00:00", '
                       '"wall_s": 1, "speed": 60}')  # a naive time is refused
    with pytest.raises(ValidationError):
        IngestSettings()
