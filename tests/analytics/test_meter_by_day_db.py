"""The cabinet meter by day on a switched supply, against the real database: silence by day is
no fault; energy counted while the supply was off (a leak upstream of the contactor) is."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.analytics.district import district, scenario, simulate

pytestmark = [pytest.mark.integration, pytest.mark.district]

#: 05:00 UTC, before dawn (07:43); dusk at 16:06; twelve hours cover a day of switched supply
DAWN_START = datetime(2025, 1, 15, 5, 0, tzinfo=UTC)


def at(hours: float) -> datetime:
    return DAWN_START + timedelta(hours=hours)


@pytest.fixture(scope="module")
def day(stack) -> tuple[list[tuple], list[str]]:  # type: ignore[no-untyped-def]
    inv = district(switched_fraction=1.0)
    cabinets = list(inv.cabinet_ids)
    # from 10:00 UTC, by day: the contactor is open, the leak between meter and contactor flows
    faults = [{"fault": "cabinet_leakage", "device": cabinets[1], "start": "+5h",
               "params": {"current_a": 2.0, "upstream": True}}]
    name = "t_meter_by_day"
    with stack.admin() as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name} TEMPLATE luciole_template")
    try:
        rows = simulate(stack.endpoints.dsn(name), inv, scenario(faults, DAWN_START), 12,
                        start=DAWN_START)
    finally:
        with stack.admin() as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    return rows, cabinets


def test_silence_by_day_on_a_switched_supply_raises_nothing(day) -> None:  # type: ignore[no-untyped-def]
    rows, cabinets = day
    # both cabinets' controllers and meters are silent from dawn to dusk: no communication
    # failure, no supply loss, and the healthy cabinet's meter agrees with its luminaires
    assert [r for r in rows if r[1] != cabinets[1]] == [], rows


def test_energy_through_the_meter_while_the_supply_was_off_is_leakage(day) -> None:  # type: ignore[no-untyped-def]
    rows, cabinets = day
    (leak,) = [r for r in rows if r[1] == cabinets[1]]
    assert leak[0] == "leakageDetected" and leak[5] is None
    # raised on the first meter reading after dusk (16:06), from the day's energy
    assert at(11.1) <= leak[4] <= at(11.3), f"{leak[4]} {leak[6]}"
    assert "while its switched supply was off" in leak[6], leak[6]
