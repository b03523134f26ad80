"""Fault injection: scenario loading, masks at boundaries, labels, and every modifier's effect."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

import controller_fw_sim
from controller_fw_sim.faults import (
    STATUS_GEAR_FAILURE,
    STATUS_LAMP_FAILURE,
    STATUS_LAMP_ON,
    DeviceIndex,
    FaultKind,
    FaultSchedule,
    FleetIndex,
    FleetState,
    ScenarioError,
    apply_faults,
    label_rows,
    labels_csv,
    load_scenario,
    parse_scenario,
    write_labels,
)

EXAMPLE = Path(controller_fw_sim.__file__).parent / "scenarios" / "example.json"
T0 = datetime(2024, 11, 5, 16, 0, tzinfo=UTC)
LUMINAIRES = [f"lum-{i:04d}" for i in range(12)]
CONTROLLERS = [f"ctl-{i:04d}" for i in range(6)]
INDEX = FleetIndex.from_ids(LUMINAIRES, CONTROLLERS, ["cab-01", "cab-02"], ["lux-0000", "lux-0001"])


def _one(fault: str, device: str, start: str = "+1h", end: str | None = "+2h", **params) -> FaultSchedule:
    spec = {"fault": fault, "device": device, "start": start, "params": params}
    if end is not None:
        spec["end"] = end
    return FaultSchedule(parse_scenario({"start": T0.isoformat(), "faults": [spec]}))


def _lit_state() -> FleetState:
    s = FleetState.initial(len(LUMINAIRES), len(CONTROLLERS), 2, 2, rated_power_w=60.0)
    return FleetState(**{**s.__dict__, "level": np.full(12, 0.8), "power_w": np.full(12, 48.0),
                         "status": np.full(12, STATUS_LAMP_ON, dtype=np.uint8),
                         "sensor_value": np.array([10.0, 20.0])})


def test_example_scenario_loads_with_every_fault_kind():
    scenario = load_scenario(EXAMPLE)
    assert {f.fault for f in scenario.faults} == set(FaultKind)
    drift = next(f for f in scenario.faults if f.fault is FaultKind.POWER_DRIFT)
    assert drift.start == T0 and drift.end is None
    comm = next(f for f in scenario.faults if f.fault is FaultKind.COMM_LOSS)
    assert (comm.start, comm.end) == (T0 + timedelta(hours=3), T0 + timedelta(hours=3, minutes=30))


def test_toml_scenarios_load_too():
    text = """
    start = 2024-11-05T16:00:00Z
    [[faults]]
    fault = "tilt"
    device = "ctl-0001"
    start = "+90m"
    params = { angle_deg = 45.0 }
    """
    scenario = parse_scenario(text, fmt="toml")
    assert scenario.faults[0].start == T0 + timedelta(minutes=90)


@pytest.mark.parametrize(
    "bad",
    [
        {"faults": [{"fault": "meltdown", "device": "x", "start": "2024-01-01T00:00:00Z"}]},
        {"faults": [{"fault": "tilt", "device": "x", "start": "+1h"}]},  # offset without origin
        {"faults": [{"fault": "tilt", "device": "x", "start": "2024-01-01T00:00:00"}]},  # naive
        {
            "start": "2024-01-01T00:00:00Z",
            "faults": [{"fault": "tilt", "device": "x", "start": "+2h", "end": "+1h"}],
        },
        {
            "start": "2024-01-01T00:00:00Z",
            "faults": [{"fault": "tilt", "device": "x", "start": "+0s", "params": {"angle": 3}}],
        },
        {
            "start": "2024-01-01T00:00:00Z",
            "faults": [{"fault": "cycling", "device": "x", "start": "+0s", "params": {"period_s": -1}}],
        },
    ],
)
def test_invalid_scenarios_are_refused(bad):
    with pytest.raises(ScenarioError):
        parse_scenario(bad)


def test_masks_start_inclusive_end_exclusive():
    schedule = _one("lamp_failure", "lum-0003")
    idx = INDEX.luminaires
    start, end = T0 + timedelta(hours=1), T0 + timedelta(hours=2)
    eps = timedelta(microseconds=1)
    table = [(start - eps, False), (start, True), (end - eps, True), (end, False)]
    for t, active in table:
        mask = schedule.mask(FaultKind.LAMP_FAILURE, t, idx)
        assert mask.dtype == bool and mask.shape == (12,)
        assert mask[3] == active and mask.sum() == int(active), t
        assert not schedule.mask(FaultKind.DRIVER_FAILURE, t, idx).any()
    assert [f.device for f in schedule.active(start)] == ["lum-0003"]
    assert schedule.active(end) == []


def test_open_ended_faults_and_unknown_devices():
    schedule = _one("tilt", "ctl-0002", end=None)
    assert schedule.mask(FaultKind.TILT, T0 + timedelta(days=400), INDEX.controllers)[2]
    other = _one("tilt", "ctl-9999")  # not in this fleet: no mask, no crash
    assert not other.mask(FaultKind.TILT, T0 + timedelta(hours=1), INDEX.controllers).any()


def test_masks_over_the_example_at_one_instant():
    schedule = FaultSchedule(load_scenario(EXAMPLE))
    t = T0 + timedelta(hours=7, minutes=10)
    masks = schedule.masks(t, {"luminaire": INDEX.luminaires, "cabinet": INDEX.cabinets,
                               "controller": INDEX.controllers, "sensor": INDEX.sensors})
    on = {k.value: [i for i in np.flatnonzero(m)] for k, m in masks.items() if m.any()}
    assert on == {"lamp_failure": [3], "driver_failure": [7], "day_burning": [11], "power_drift": [8],
                  "low_power_factor": [9], "cabinet_leakage": [0], "stuck_sensor": [1],
                  "cycling": [4], "absolute_power_too_high": [0]}


def test_labels_match_the_scenario():
    scenario = load_scenario(EXAMPLE)
    rows = list(csv.DictReader(io.StringIO(labels_csv(scenario))))
    assert rows == label_rows(scenario)
    assert len(rows) == len(scenario.faults)
    by_key = {(r["fault"], r["device"]): r for r in rows}
    for f in scenario.faults:
        row = by_key[(f.fault.value, f.device)]
        assert datetime.fromisoformat(row["start"].replace("Z", "+00:00")) == f.start
        if f.end is None:
            assert row["end"] == ""
        else:
            assert datetime.fromisoformat(row["end"].replace("Z", "+00:00")) == f.end
        assert row["start"].endswith("Z")


def test_write_labels(tmp_path):
    scenario = load_scenario(EXAMPLE)
    path = write_labels(tmp_path / "run" / "labels.csv", scenario)
    assert path.read_text().splitlines()[0] == "fault,device,start,end"
    assert path.read_text() == labels_csv(scenario)


# -- each modifier, as documented ---------------------------------------------------------
DURING = T0 + timedelta(hours=1, minutes=30)


def _apply(schedule: FaultSchedule, state: FleetState | None = None, t: datetime = DURING) -> FleetState:
    return apply_faults(schedule, t, state or _lit_state(), INDEX)


def test_no_fault_changes_nothing():
    before = _lit_state()
    after = _apply(FaultSchedule(parse_scenario({"faults": []})), before)
    for name, value in before.__dict__.items():
        assert np.array_equal(value, after.__dict__[name], equal_nan=True), name


def test_lamp_failure_standby_power_and_status_bit():
    s = _apply(_one("lamp_failure", "lum-0003", standby_w=0.4))
    assert s.power_w[3] == 0.4 and s.status[3] & STATUS_LAMP_FAILURE and not s.status[3] & STATUS_LAMP_ON
    assert s.power_w[2] == 48.0 and s.status[2] == STATUS_LAMP_ON


def test_driver_failure_no_power_gear_failure_bit():
    s = _apply(_one("driver_failure", "lum-0001"))
    assert s.power_w[1] == 0 and s.level[1] == 0 and s.status[1] & STATUS_GEAR_FAILURE


def test_comm_loss_silences_the_controller():
    s = _apply(_one("comm_loss", "ctl-0002"))
    assert list(s.online) == [True, True, False, True, True, True]


def test_day_burning_forces_level_on_only_in_daylight():
    state = _lit_state()
    is_day = np.zeros(12, bool)
    is_day[:6] = True
    day_state = FleetState(**{**state.__dict__, "is_day": is_day,
                              "level": np.zeros(12), "power_w": np.full(12, 0.5),
                              "status": np.zeros(12, np.uint8)})
    schedule = FaultSchedule(parse_scenario({"start": T0.isoformat(), "faults": [
        {"fault": "day_burning", "device": "lum-0002", "start": "+0s"},
        {"fault": "day_burning", "device": "lum-0008", "start": "+0s"},  # at night: no visible effect
    ]}))
    s = _apply(schedule, day_state)
    assert s.level[2] == 1.0 and s.power_w[2] == pytest.approx(60.0) and s.status[2] & STATUS_LAMP_ON
    assert s.level[8] == 0.0 and s.level[3] == 0.0


def test_cycling_toggles_with_its_period():
    schedule = _one("cycling", "lum-0004", period_s=600, on_fraction=0.5)
    start = T0 + timedelta(hours=1)
    levels = [
        _apply(schedule, t=start + timedelta(seconds=sec)).level[4] for sec in (0, 299, 300, 599, 600, 900)
    ]
    assert levels == [0.8, 0.8, 0.0, 0.0, 0.8, 0.0]


def test_power_drift_grows_with_time():
    schedule = _one("power_drift", "lum-0005", end=None, rate_per_day=0.01)
    start = T0 + timedelta(hours=1)
    p = [_apply(schedule, t=start + timedelta(days=d)).power_w[5] for d in (0, 10, 100)]
    assert p == pytest.approx([48.0, 48.0 * 1.1, 48.0 * 2.0])
    assert _apply(schedule, t=start + timedelta(days=10)).power_w[4] == 48.0


def test_low_power_factor():
    s = _apply(_one("low_power_factor", "lum-0006", power_factor=0.55))
    assert s.power_factor[6] == 0.55 and s.power_factor[5] == 0.95


@pytest.mark.parametrize(("fault", "factor"), [("over_voltage", 1.15), ("under_voltage", 0.82)])
def test_supply_voltage_faults(fault, factor):
    s = _apply(_one(fault, "lum-0007", factor=factor))
    assert s.voltage_v[7] == pytest.approx(230.0 * factor) and s.voltage_v[6] == 230.0


def test_cabinet_leakage_adds_current_to_the_meter_only():
    s = _apply(_one("cabinet_leakage", "cab-02", current_a=0.8))
    assert list(s.leakage_a) == [0.0, 0.8]
    assert np.array_equal(s.power_w, _lit_state().power_w)


def test_tilt_sets_the_angle():
    s = _apply(_one("tilt", "ctl-0005", angle_deg=82))
    assert s.tilt_deg[5] == 82 and s.tilt_deg[:5].sum() == 0


def test_stuck_sensor_freezes_the_value_it_had_then_releases():
    schedule = _one("stuck_sensor", "lux-0001")
    state = _lit_state()
    readings = []
    for minutes, fresh in ((50, 5.0), (60, 7.0), (80, 900.0), (119, 3000.0), (120, 4000.0)):
        state = FleetState(**{**state.__dict__, "sensor_value": np.array([fresh, fresh])})
        state = apply_faults(schedule, T0 + timedelta(minutes=minutes), state, INDEX)
        readings.append(state.sensor_value.tolist())
    assert readings == [[5, 5], [7, 7], [900, 7], [3000, 7], [4000, 4000]]


def test_stuck_sensor_with_explicit_value():
    s = _apply(_one("stuck_sensor", "lux-0000", value=12.5))
    assert s.sensor_value.tolist() == [12.5, 20.0]


def test_device_index_rejects_duplicates():
    with pytest.raises(ValueError):
        DeviceIndex(["a", "a"])


def _levels_state(full_w: float) -> FleetState:
    """Luminaires at levels 0..1; each draws standby + level x (full_w - standby); rated 60 W."""
    state = _lit_state()
    level = np.linspace(0.0, 1.0, 12)
    return FleetState(**{**state.__dict__, "level": level, "power_w": 0.5 + level * (full_w - 0.5),
                         "full_power_w": np.full(12, full_w)})


@pytest.mark.parametrize(("fault", "factor"), [("absolute_power_too_high", 1.5),
                                               ("absolute_power_too_low", 0.5)])
@pytest.mark.parametrize("full_w", [60.0, 49.0])  # 49 W: a new module under constant light output
def test_a_wrong_driver_draws_a_multiple_of_the_rated_power_at_every_level(fault, factor, full_w):
    # at full level factor x the rated 60 W whatever the fitted module asked; at a lower level
    # in proportion; power factor unchanged; a dark lamp keeps its standby power
    state = _levels_state(full_w)
    for lum in (11, 6):
        s = _apply(_one(fault, f"lum-{lum:04d}"), state)
        expected = 0.5 + (state.power_w[lum] - 0.5) * factor * 59.5 / (full_w - 0.5)
        assert s.power_w[lum] == pytest.approx(expected)
        assert s.power_factor[lum] == state.power_factor[lum]
        assert np.array_equal(np.delete(s.power_w, lum), np.delete(state.power_w, lum))
    assert _apply(_one(fault, "lum-0011"), state).power_w[11] == pytest.approx(0.5 + factor * 59.5)
    assert _apply(_one(fault, "lum-0000"), state).power_w[0] == 0.5


def test_open_led_strings_scale_the_current_and_power_at_every_level():
    state = _levels_state(49.0)
    s = _apply(_one("current_too_low", "lum-0004", factor=0.4), state)
    assert s.power_w[4] == pytest.approx(state.power_w[4] * 0.4)
    assert s.power_factor[4] == state.power_factor[4]  # the current falls with the power
    assert _apply(_one("current_too_low", "lum-0000", factor=0.4), state).power_w[0] == 0.5


def test_current_too_high_adds_reactive_current_at_unchanged_power():
    # a failed input capacitor: 2 x the rated current (60 W / (230 V x 0.9) = 0.29 A) more
    # reactive current; at 48 W and pf 0.95 the current goes from 0.22 A to 0.68 A (pf 0.31)
    s = _apply(_one("current_too_high", "lum-0003", reactive_rated=2.0))
    assert s.power_w[3] == 48.0
    i_p = 48.0 / 230.0
    i_q = i_p * np.sqrt(1 - 0.95**2) / 0.95 + 2.0 * 60.0 / (230.0 * 0.9)
    current = s.power_w[3] / (s.voltage_v[3] * s.power_factor[3])
    assert current == pytest.approx(np.hypot(i_p, i_q))
    assert current > 1.5 * 60.0 / (230.0 * 0.9) and s.power_factor[3] < 0.35
    assert s.power_factor[2] == 0.95
    # at a low level the current stays over 1.5 x rated: the fault shows at every level
    dim = FleetState(**{**_lit_state().__dict__, "power_w": np.full(12, 12.0)})
    d = _apply(_one("current_too_high", "lum-0003", reactive_rated=1.8), dim)
    assert d.power_w[3] / (d.voltage_v[3] * d.power_factor[3]) > 1.5 * 60.0 / (230.0 * 0.9)


def test_a_leak_upstream_of_the_contactor_also_flows_with_it_open():
    down = _apply(_one("cabinet_leakage", "cab-02", current_a=0.8))
    assert list(down.leakage_a) == [0.0, 0.8] and list(down.leakage_day_a) == [0.0, 0.0]
    up = _apply(_one("cabinet_leakage", "cab-02", current_a=0.8, upstream=True))
    assert list(up.leakage_a) == [0.0, 0.8] and list(up.leakage_day_a) == [0.0, 0.8]
