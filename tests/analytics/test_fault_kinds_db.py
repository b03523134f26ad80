"""The power and current kinds against the real database: a simulated district evening with a
wrong driver fitted, a driver programmed to a low current, a failed input capacitor and open LED
strings, each raised as its TALQ kind and as what its physics also shows, nothing else."""

from __future__ import annotations

import pytest

from tests.analytics.district import at, district, scenario, simulate

pytestmark = [pytest.mark.integration, pytest.mark.district]

FAULTS = [
    # fitted with the luminaire: its baseline is learned with it, only the type's rating sees it
    {"fault": "absolute_power_too_high", "device": "ctl-000002:1", "start": "+0s",
     "params": {"factor": 1.45}},
    {"fault": "absolute_power_too_low", "device": "ctl-000006:2", "start": "+0s",
     "params": {"factor": 0.5}},
    # after the baselines are learned (two hours of readings)
    {"fault": "current_too_high", "device": "ctl-000008:0", "start": "+2h30m",
     "params": {"reactive_rated": 2.0}},
    {"fault": "current_too_low", "device": "ctl-000010:3", "start": "+3h",
     "params": {"factor": 0.4}},
]


@pytest.fixture(scope="module")
def evening(stack) -> list[tuple]:  # type: ignore[no-untyped-def]
    """Six hours from sunset, at full level (dimming starts at 23:00 local), jobs run hourly."""
    name = "t_fault_kinds"
    with stack.admin() as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name} TEMPLATE luciole_template")
    try:
        yield simulate(stack.endpoints.dsn(name), district(), scenario(FAULTS), 6)
    finally:
        with stack.admin() as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _on(rows: list[tuple], ctl: str, lum: int) -> dict[str, tuple]:
    got = [r for r in rows if (r[2], r[3]) == (ctl, lum)]
    assert len({r[0] for r in got}) == len(got), got  # one fault per kind
    return {r[0]: r for r in got}


def test_only_the_faulted_luminaires_raise(evening) -> None:  # type: ignore[no-untyped-def]
    assert {(r[2], r[3]) for r in evening} == {
        ("ctl-000002", 1), ("ctl-000006", 2), ("ctl-000008", 0), ("ctl-000010", 3)}, evening


def test_a_higher_rated_driver_is_over_the_type_ceiling_not_its_own_baseline(evening) -> None:  # type: ignore[no-untyped-def]
    got = _on(evening, "ctl-000002", 1)
    assert sorted(got) == ["absoluteLampPowerTooHigh"], got
    raised, cleared, cause = got["absoluteLampPowerTooHigh"][4:7]
    assert raised <= at(0.5) and cleared is None
    assert "more than its lamp type may draw at any level (rated" in cause


def test_a_driver_programmed_low_is_under_the_type_floor_and_rated_current(evening) -> None:  # type: ignore[no-untyped-def]
    got = _on(evening, "ctl-000006", 2)
    assert sorted(got) == ["absoluteLampPowerTooLow", "currentTooLow"], got
    assert all(r[4] <= at(0.5) and r[5] is None for r in got.values())


def test_a_failed_input_capacitor_draws_current_at_normal_power(evening) -> None:  # type: ignore[no-untyped-def]
    got = _on(evening, "ctl-000008", 0)
    assert sorted(got) == ["currentTooHigh", "powerFactorTooLow"], got
    raised, cleared, cause = got["currentTooHigh"][4:7]
    assert at(2.5) < raised <= at(3) and cleared is None
    assert "more than its lamp type's rated current allows" in cause


def test_open_led_strings_draw_too_little_current_and_power(evening) -> None:  # type: ignore[no-untyped-def]
    got = _on(evening, "ctl-000010", 3)
    assert sorted(got) == ["absoluteLampPowerTooLow", "currentTooLow", "lampPowerTooLow"], got
    raised, cleared, _ = got["currentTooLow"][4:7]
    assert at(3) < raised <= at(3.5) and cleared is None
