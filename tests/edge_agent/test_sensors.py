"""Pole sensors, purely: counter arithmetic, the presence boost in the level pipeline, readings
with sensor values, the sensor poller against a scripted source, and the [[sensors]] settings."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest

from edge_agent.clock import ScaledClock
from edge_agent.levels import target_levels
from edge_agent.presence_boost import boost_on_presence
from edge_agent.sensors import (
    DEFAULT_PROFILE,
    SensorError,
    SensorPoller,
    SensorValues,
    new_detections,
    with_sensors,
)
from edge_agent.settings import SettingsError, load_settings
from edge_agent.telemetry import LuminaireReading
from hardware.modbus import ModbusTimeout, load_profile
from wire.messages import EventKind, LuminaireTarget, PresenceBoost, SetLevel

T0 = datetime(2024, 12, 16, 21, 0, tzinfo=UTC)
BOOST = PresenceBoost(level=254, hold_s=60, fade_s=30)
LUMINAIRES = {0: frozenset({1}), 1: frozenset({1}), 2: frozenset()}


@pytest.mark.parametrize("previous, current, modulus, expected", [
    (None, 1234, 1 << 32, 0),           # the first reading: the counter's past is not ours
    (10, 10, 1 << 32, 0),
    (10, 13, 1 << 32, 3),
    (65_534, 2, 1 << 16, 4),            # a 16-bit counter wraps
    ((1 << 32) - 1, 0, 1 << 32, 1),     # a 32-bit counter wraps
    (5_000, 3, 1 << 32, 3),             # went back from low: the sensor restarted from 0
    (40_000, 39_000, 1 << 16, 39_000),  # a big step back is a restart, not a wrap
])
def test_new_detections(previous, current, modulus, expected):
    assert new_detections(previous, current, modulus) == expected


def test_boost_raises_only_the_luminaires_of_the_sensor_then_fades_back():
    boosts = {0: boost_on_presence(BOOST, T0)}
    during = target_levels(LUMINAIRES, 100, None, (), T0 + timedelta(seconds=30), boosts=boosts)
    assert during == {0: 254, 1: 100, 2: 100}
    half = target_levels(LUMINAIRES, 100, None, (), T0 + timedelta(seconds=75), boosts=boosts)
    assert half[0] == 177 and half[1] == 100, "half-way through the fade, half-way back"
    after = target_levels(LUMINAIRES, 100, None, (), T0 + timedelta(seconds=91), boosts=boosts)
    assert after == {0: 100, 1: 100, 2: 100}


def test_fade_is_monotonic_from_boost_to_schedule():
    boosts = {2: boost_on_presence(BOOST, T0)}
    levels = [target_levels(LUMINAIRES, 80, None, (), T0 + timedelta(seconds=s), boosts=boosts)[2]
              for s in range(0, 100, 2)]
    assert levels[0] == 254 and levels[-1] == 80
    assert all(a >= b for a, b in pairwise(levels))


def test_controller_wide_and_own_boost_take_the_higher_level():
    common = boost_on_presence(PresenceBoost(level=150, hold_s=60, fade_s=0), T0)
    own = {1: boost_on_presence(BOOST, T0)}
    assert target_levels(LUMINAIRES, 100, common, (), T0, boosts=own) == {0: 150, 1: 254, 2: 150}


def test_a_boost_never_lights_an_unlit_street_and_a_command_override_beats_it():
    boosts = {0: boost_on_presence(BOOST, T0), 1: boost_on_presence(BOOST, T0)}
    assert target_levels(LUMINAIRES, 0, None, (), T0, boosts=boosts) == {0: 0, 1: 0, 2: 0}
    from edge_agent.commands import override_of

    command = SetLevel(target=LuminaireTarget(luminaire=1), level=40, duration_s=600,
                       issued_at=T0, expires_at=T0 + timedelta(minutes=5))
    levels = target_levels(LUMINAIRES, 100, None, (override_of(command, T0),), T0, boosts=boosts)
    assert levels == {0: 254, 1: 40, 2: 100}


def test_readings_take_the_values_of_the_sensors_that_cover_them():
    readings = [LuminaireReading(1, i) for i in range(3)]
    out = with_sensors(readings, [(frozenset({0, 1}), SensorValues(3.5, 2)),
                                  (frozenset({1}), SensorValues(None, 5))])
    assert [(r.ambient_lux, r.presence) for r in out] == [(3.5, 2), (3.5, 7), (0.0, 0)]
    everyone = with_sensors(readings, [(None, SensorValues(12.0, 1))])
    assert {(r.ambient_lux, r.presence) for r in everyone} == {(12.0, 1)}


class ScriptedSource:
    """Answers each read with the next scripted item (a dict, or an exception to raise)."""

    name = "scripted"
    counter_modulus = 1 << 16

    def __init__(self, script) -> None:
        self.script = list(script)

    async def read(self):
        item = self.script.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    def close(self) -> None:
        pass


def test_sensor_poller_boosts_on_new_detections_and_reports_faults_once():
    events, boosts = [], []
    source = ScriptedSource([
        {"presence_count": 500, "ambient_lux": 0.4},   # first reading: no detection
        {"presence_count": 500, "ambient_lux": 0.5},
        {"presence_count": 503, "ambient_lux": 0.5},   # three people walked by
        ModbusTimeout("no answer"), ModbusTimeout("no answer"),
        {"presence_count": 504, "ambient_lux": 0.6},
        SensorError("wiring"),
    ])
    poller = SensorPoller(source, 0, ScaledClock(1.0, T0.timestamp()),
                          lambda kind, sev, lum=None, **d: events.append(kind), boosts.append,
                          covers=frozenset({1}))

    async def polls(n: int) -> None:
        for _ in range(n):
            await poller.poll_once()

    asyncio.run(polls(2))
    assert boosts == [] and poller.take() == SensorValues(0.5, 0)
    asyncio.run(polls(1))
    assert boosts == [frozenset({1})] and poller.take() == SensorValues(0.5, 3)
    assert poller.take() == SensorValues(0.5, 0), "a round's count starts again from 0"
    asyncio.run(polls(4))
    assert events == [EventKind.MODBUS_ERROR, EventKind.FAULT_CLEARED, EventKind.FAULT_RAISED]
    assert len(boosts) == 2 and poller.take() == SensorValues(0.6, 1) and poller.detections_total == 4


def test_sensors_settings_from_toml(tmp_path):
    path = tmp_path / "agent.toml"
    path.write_text('controller_id = "ctl-1"\ntenant = "ixelles"\n'
                    '[[sensors]]\nhost = "10.0.0.21"\nluminaires = [0, 1]\npoll_interval_s = 1\n'
                    '[[sensors]]\nserial_port = "/dev/ttyUSB1"\npresence_register = "pir"\n'
                    'lux_register = ""\n')
    with pytest.raises(SettingsError):
        load_settings(path)  # an empty register name is not "none": say null by leaving it out
    path.write_text('controller_id = "ctl-1"\ntenant = "ixelles"\n'
                    '[[sensors]]\nhost = "10.0.0.21"\nluminaires = [0, 1]\npoll_interval_s = 1\n')
    s = load_settings(path)
    assert s.sensors[0].luminaires == [0, 1] and s.sensors[0].presence_register == "presence_count"
    assert load_profile(s.sensors[0].profile).id == load_profile(DEFAULT_PROFILE).id


@pytest.mark.parametrize(
    "body, where",
    [
        ("[[sensors]]\nport = 502\n", "sensors.0"),
        (
            '[[sensors]]\nhost = "h"\npresence_register = "x"\nlux_register = "y"\nkind = "dali"\n',
            "sensors.0.kind",
        ),
    ],
)
def test_bad_sensor_settings_say_what_is_wrong(tmp_path, body, where):
    path = tmp_path / "agent.toml"
    path.write_text(f'controller_id = "ctl-1"\ntenant = "ixelles"\n{body}')
    with pytest.raises(SettingsError, match=where):
        load_settings(path)
