"""Switched supply in the fleet (silent by day, a fresh boot at dusk) and the physical signatures
of the fault kinds the detectors need."""

from __future__ import annotations

from datetime import timedelta

import numpy as np

from controller_fw_sim.faults import parse_scenario
from controller_fw_sim.fleet import DEFAULT_START, DIM_LEVEL, FULL_LEVEL, Fleet
from controller_fw_sim.fleet_inventory import TENANTS, build_inventory
from wire.records import HEADER_DTYPE, HEADER_SIZE, LUMINAIRE_DTYPE

START = DEFAULT_START  # 15:55 UTC, sunset at about 16:05 UTC
INV = build_inventory(12, 4, seed=2, tenants=TENANTS[:1], switched_fraction=1.0)


def _records(box) -> np.ndarray:  # type: ignore[no-untyped-def]
    k = box.payloads.shape[0]
    return np.ascontiguousarray(box.payloads[:, HEADER_SIZE:]).view(LUMINAIRE_DTYPE).reshape(k, -1)


def _boots(box) -> np.ndarray:  # type: ignore[no-untyped-def]
    k = box.payloads.shape[0]
    header = np.ascontiguousarray(box.payloads[:, :HEADER_SIZE]).view(HEADER_DTYPE)
    return header.reshape(k)["boot_id"]


def _run(fleet: Fleet, hours: float, step_s: float = 300.0) -> list:  # type: ignore[type-arg]
    return [fleet.advance(step_s * (i + 1)) for i in range(int(hours * 3600 / step_s))]


def test_a_switched_cabinet_is_silent_by_day_and_boots_afresh_at_dusk() -> None:
    assert INV.switched.all()
    fleet = Fleet(INV, start=START, interval_s=300.0)
    before = fleet.boot_id.copy()
    boxes = _run(fleet, 17)  # to 08:55 UTC the next morning
    first_boot = fleet.boot_id.copy()
    assert (first_boot != before).all()  # powered up at dusk: a new boot
    sent = [(box.time, len(box)) for box in boxes]
    assert all(n == 0 for t, n in sent if t < START + timedelta(minutes=10))  # before sunset
    night = [n for t, n in sent if START + timedelta(hours=1) < t < START + timedelta(hours=15)]
    assert night and all(n == INV.n_controllers for n in night)
    assert all(n == 0 for t, n in sent if t > START + timedelta(hours=16))  # after sunrise
    lit = [box for box in boxes if len(box)][0]
    assert (_records(lit)["level"] == FULL_LEVEL).all()
    assert (_boots(lit) == first_boot[lit.controllers]).all()
    births = [j for j in fleet.drain_json() if j.kind.value == "state"]
    assert len(births) == INV.n_controllers  # one birth message each at dusk


def test_a_stuck_contactor_keeps_the_supply_on_by_day() -> None:
    cab = INV.cabinet_ids[0]
    scenario = parse_scenario({"start": START.isoformat(), "faults": [
        {"fault": "relay_stuck_on", "device": cab, "start": "+2h"}]})
    fleet = Fleet(INV, start=START, interval_s=300.0, scenario=scenario)
    boxes = _run(fleet, 19)
    day = [box for box in boxes if box.time > START + timedelta(hours=17)]
    assert day and all(len(box) == INV.n_controllers for box in day)
    rec = _records(day[-1])
    assert (rec["level"] == 0).all() and (rec["power_w"] > 0).all()  # drivers on standby


def test_losing_one_phase_silences_a_third_of_the_cabinet() -> None:
    cab = INV.cabinet_ids[0]
    scenario = parse_scenario({"start": START.isoformat(), "faults": [
        {"fault": "supply_loss", "device": cab, "start": "+2h", "end": "+3h",
         "params": {"phase": 2}}]})
    fleet = Fleet(INV, start=START, interval_s=300.0, scenario=scenario)
    boxes = _run(fleet, 4)
    during = [box for box in boxes if START + timedelta(hours=2.2) < box.time
              < START + timedelta(hours=3)]
    on_l2 = np.flatnonzero(INV.controller_phase == 1)
    for box in during:
        assert set(box.controllers.tolist()) == set(range(INV.n_controllers)) - set(on_l2.tolist())
    assert len(boxes[-1]) == INV.n_controllers  # back once the phase returns


def _signature(fault: dict[str, object], hours: float = 8.5) -> tuple[np.ndarray, np.ndarray]:
    """Luminaire ctl-000001:0 and its healthy neighbour ctl-000001:1, hour by hour."""
    scenario = parse_scenario({"start": START.isoformat(), "faults": [fault]})
    fleet = Fleet(INV, start=START, interval_s=300.0, scenario=scenario)
    rows = [_records(b)[list(b.controllers).index(0)] for b in _run(fleet, hours) if len(b)]
    rec = np.array(rows)
    return rec[:, 0], rec[:, 1]


def test_dimming_failure_draws_full_power_at_the_dimmed_level() -> None:
    sick, well = _signature({"fault": "dimming_failure", "device": "ctl-000001:0",
                             "start": "+1h"})
    dim = well["level"] == DIM_LEVEL
    assert dim.any() and (sick["level"][dim] == DIM_LEVEL).all()
    full = well["level"] == FULL_LEVEL
    full_w = sick["power_w"][full][-1]
    assert np.allclose(sick["power_w"][dim], full_w, rtol=0.02)
    assert (well["power_w"][dim] < 0.7 * well["power_w"][full][-1]).all()


def test_relay_stuck_off_draws_nothing_and_reports_no_failure() -> None:
    sick, _ = _signature({"fault": "relay_stuck_off", "device": "ctl-000001:0", "start": "+1h"},
                         3)
    late = sick[-12:]
    assert (late["power_w"] == 0).all() and (late["failure"] == 0).all()
    assert (late["level"] > 0).all()


def test_lamp_power_too_high_and_driver_over_temperature_signatures() -> None:
    sick, well = _signature({"fault": "lamp_power_too_high", "device": "ctl-000001:0",
                             "start": "+1h", "params": {"factor": 1.5}}, 3)
    ratio = (sick["current_a"] / well["current_a"])[-6:]
    assert np.all(ratio > 1.3)
    hot, cool = _signature({"fault": "driver_over_temperature", "device": "ctl-000001:0",
                            "start": "+1h", "params": {"extra_c": 60.0}}, 4)
    assert (hot["driver_temp_c"][-3:] - cool["driver_temp_c"][-3:] > 50).all()
