"""The cabinet meter's energy register across a gap (a day with the switched supply off) against
what the cabinet's luminaires counted over the same step: pure logic, no database."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from analytics.detector_state import DetectorState
from analytics.fleet_rules import (
    METER_GAP_S,
    METER_GAP_SETTLE_S,
    SensorReadings,
    due_gap_steps,
    meter_gap_events,
    meter_gap_steps,
)
from analytics.registry import Registry
from wire.records import Quantity

DAWN = datetime(2025, 1, 15, 7, 30, tzinfo=UTC).timestamp()
DUSK = datetime(2025, 1, 15, 16, 10, tzinfo=UTC).timestamp()


def _registry(switched: bool = True) -> Registry:
    return Registry(cab_id=("cab-1",), cab_tenant=("t",), cab_switched=np.array([switched]),
                    ctl_key=np.array([1]), ctl_id=("ctl-000001",), ctl_tenant=("t",),
                    ctl_tz=("Europe/Brussels",), ctl_cab=np.array([0]),
                    ctl_lat=np.array([50.85]), ctl_lon=np.array([4.35]),
                    lum_key=np.array([1024, 1025]), lum_ctl=np.array([0, 0]),
                    lum_idx=np.array([0, 1]), lum_rated_w=np.array([60.0, 60.0]))


def _energy(*readings: tuple[float, float]) -> SensorReadings:
    """Meter energy register readings (epoch s, kWh) of the cabinet's segment controller."""
    n = len(readings)
    return SensorReadings(ctl=np.zeros(n, np.int64), sensor=np.zeros(n, np.int64),
                          quantity=np.full(n, int(Quantity.ENERGY_KWH)),
                          t=np.array([r[0] for r in readings]),
                          value=np.array([r[1] for r in readings]))


def _day(meter_kwh: float, luminaires_kwh: float, switched: bool = True,
         complete: bool = True) -> tuple[DetectorState, list]:
    reg = _registry(switched)
    st = DetectorState.fresh(reg)
    assert meter_gap_steps(reg, st, _energy((DAWN - 900, 100.0), (DAWN, 100.2))) == 0
    assert meter_gap_steps(reg, st, _energy((DUSK, 100.2 + meter_kwh))) == 1
    # judged once the luminaires' reports after the step's end are stored, and only once
    assert len(due_gap_steps(reg, st, DUSK + METER_GAP_SETTLE_S - 1)) == 0
    steps = due_gap_steps(reg, st, DUSK + METER_GAP_SETTLE_S)
    assert len(steps) == 1 and steps.t0[0] == DAWN and steps.t1[0] == DUSK
    assert steps.meter_wh[0] == pytest.approx(meter_kwh * 1000)
    assert len(due_gap_steps(reg, st, DUSK + 2 * METER_GAP_SETTLE_S)) == 0
    events = meter_gap_events(reg, st, steps, np.array([luminaires_kwh * 1000]),
                              np.array([complete]))
    return st, events


def test_a_healthy_day_on_a_switched_supply_raises_nothing() -> None:
    # the meter counted what the luminaires counted at dawn and dusk, plus 3 % of cable losses
    st, events = _day(meter_kwh=1.03, luminaires_kwh=1.0)
    assert events == [] and not st.cab_open[0].any()


def test_energy_counted_while_the_supply_was_off_is_leakage() -> None:
    # 2 A on 230 V for six of the 8 h 40 min: 2.8 kWh more than the luminaires counted
    st, events = _day(meter_kwh=1.0 + 2.76, luminaires_kwh=1.0)
    (e,) = events
    assert e.kind.name == "leakageDetected" and e.raised and e.at == DUSK
    assert e.cabinet_id == "cab-1" and st.cab_open[0, 2]
    assert "2.76 kWh unaccounted for" in e.cause and "while its switched supply was off" in e.cause
    assert e.detail["excess_wh"] == pytest.approx(2760.0)


def test_an_excess_within_the_edges_and_the_cable_losses_is_not_raised() -> None:
    # 0.5 kWh for the gap's edges, 4 % of the luminaires' energy for the cable losses
    assert _day(meter_kwh=10.0 + 0.5 + 0.4 - 0.01, luminaires_kwh=10.0)[1] == []
    assert len(_day(meter_kwh=10.0 + 0.5 + 0.4 + 0.01, luminaires_kwh=10.0)[1]) == 1


def test_an_unknown_start_is_not_judged() -> None:
    assert _day(meter_kwh=5.0, luminaires_kwh=1.0, complete=False)[1] == []


def test_an_unswitched_cabinet_whose_meter_went_unread_says_so() -> None:
    (e,) = _day(meter_kwh=5.0, luminaires_kwh=1.0, switched=False)[1]
    assert "while its meter went unread" in e.cause


def test_late_and_backwards_readings_start_afresh_without_a_step() -> None:
    reg = _registry()
    st = DetectorState.fresh(reg)
    meter_gap_steps(reg, st, _energy((DAWN, 100.0)))
    # a reading older than the last one examined is passed over
    assert meter_gap_steps(reg, st, _energy((DAWN - 60, 99.0))) == 0
    assert st.meter_t[0] == DAWN and st.meter_kwh[0] == 100.0
    # a meter replaced (its register back at 0): no step, the new register is the reference
    assert meter_gap_steps(reg, st, _energy((DAWN + METER_GAP_S, 0.5))) == 0
    assert st.meter_kwh[0] == 0.5
    assert meter_gap_steps(reg, st, _energy((DAWN + 2 * METER_GAP_S, 1.5))) == 1
    steps = due_gap_steps(reg, st, DAWN + 3 * METER_GAP_S)
    assert len(steps) == 1 and steps.meter_wh[0] == pytest.approx(1000.0)


def test_an_open_leak_is_not_raised_twice() -> None:
    reg = _registry()
    st = DetectorState.fresh(reg)
    st.cab_open[0, 2] = True
    meter_gap_steps(reg, st, _energy((DAWN, 100.0)))
    meter_gap_steps(reg, st, _energy((DUSK, 110.0)))
    steps = due_gap_steps(reg, st, DUSK + METER_GAP_SETTLE_S)
    assert meter_gap_events(reg, st, steps, np.array([1000.0]), np.array([True])) == []
