"""Fault rules, causes, sun and scoring without a database: table-driven, one luminaire."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st_h

from analytics import fault_types as ft
from analytics.causes import luminaire_cause
from analytics.detector_state import DetectorState
from analytics.fault_scoring import Detected, Label, score
from analytics.fleet_rules import silence_events
from analytics.luminaire_rules import LuminaireReadings, light_percent, luminaire_evidence
from analytics.registry import Registry
from analytics.sun import sun_phase, transitions
from wire.records import LuminaireFailure

NIGHT_T = datetime(2025, 1, 14, 21, 0, tzinfo=UTC).timestamp()
FULL_W = 66.0


def _registry() -> Registry:
    return Registry(cab_id=("cab-1",), cab_tenant=("t",), cab_switched=np.array([False]),
                    ctl_key=np.array([1]), ctl_id=("ctl-000001",), ctl_tenant=("t",),
                    ctl_tz=("Europe/Brussels",), ctl_cab=np.array([0]),
                    ctl_lat=np.array([50.85]), ctl_lon=np.array([4.35]),
                    lum_key=np.array([1024]), lum_ctl=np.array([0]), lum_idx=np.array([0]),
                    lum_rated_w=np.array([60.0]))


def _learned(reg: Registry) -> DetectorState:
    st = DetectorState.fresh(reg)
    st.base_full_w[:] = FULL_W
    st.base_samples[:] = 1000
    st.full_ratio[:] = 1.0
    st.lit[:] = True
    return st


def _flags(level: int = 254, power: float = FULL_W, voltage: float = 230.0, pf: float = 0.97,
           temp: float = 30.0, failure: int = 0, night: bool = True,
           current: float | None = None) -> dict[str, int]:
    reg = _registry()
    st = _learned(reg)
    n = 1
    r = LuminaireReadings.sorted(
        lum=np.zeros(n, np.int64), t=np.full(n, NIGHT_T), level=np.full(n, level),
        status=np.full(n, 4), power=np.full(n, power), voltage=np.full(n, voltage),
        current=np.full(n, (power / (voltage * pf) if voltage * pf > 0 else 0.0)
                        if current is None else current), pf=np.full(n, pf), temp=np.full(n, temp),
        failure=np.full(n, failure))
    ev = luminaire_evidence(r, reg, st, np.full(n, night), np.full(n, 1e4), np.full(n, 1e4))
    return {k.name: int(ev.flags[0, i]) for i, k in enumerate(ft.LUMINAIRE_KINDS)}


DIM_W = 0.5 + (FULL_W - 0.5) * (0.05 + 0.95 * light_percent(229) / 100)


@pytest.mark.parametrize(("reading", "bad"), [
    ({}, set()),
    ({"power": 0.5}, {"lampFailure"}),
    ({"power": 0.5, "failure": int(LuminaireFailure.LAMP)}, {"lampFailure"}),
    ({"power": 0.0}, {"relayFailure"}),
    ({"power": 0.0, "failure": int(LuminaireFailure.DRIVER)}, {"controlGearCommFailure"}),
    ({"voltage": 260.0}, {"supplyVoltageTooHigh"}),
    ({"voltage": 195.0}, {"supplyVoltageTooLow"}),
    ({"pf": 0.65}, {"powerFactorTooLow"}),  # 0.44 A: under 1.5x the rated current
    ({"temp": 80.0}, {"temperatureTooHigh"}),
    # 150 % of its own full-level power at full level: too high for the level and, being over
    # the lamp type's absolute threshold (1.25 x rated input power), absolutely too high too
    ({"power": FULL_W * 1.5}, {"lampPowerTooHigh", "absoluteLampPowerTooHigh"}),
    # 40 % over what half level should draw, yet far under the absolute threshold
    ({"level": 229, "power": 1.4 * DIM_W}, {"lampPowerTooHigh"}),
    # an open LED string: 50 % at full level is under its own baseline and under the type's
    # absolute floor (0.7 x 65.7 W), and its current under 0.6 x the rated 0.32 A
    ({"power": FULL_W * 0.5}, {"lampPowerTooLow", "absoluteLampPowerTooLow", "currentTooLow"}),
    ({"power": FULL_W * 0.75}, {"lampPowerTooLow"}),  # 49.5 W: over the absolute floor, 46 W
    # deeply dimmed and drawing what that level should: nothing is too low
    ({"level": 150, "power": 0.5 + (FULL_W - 0.5) * 0.108}, set()),
    # the supply current against the lamp type's rated current, 0.32 A (1.5x above)
    ({"current": 0.6}, {"currentTooHigh"}),
    ({"current": 0.15}, {"currentTooLow"}),
    ({"level": 229, "power": DIM_W, "current": 0.15}, set()),  # dimmed: a low current is normal
    # a failing input stage: power factor 0.45 at normal power, so 2.1x the current
    ({"pf": 0.45}, {"powerFactorTooLow", "currentTooHigh"}),
    ({"power": FULL_W * 1.1}, {"lampPowerDrift"}),
    ({"level": 229, "power": DIM_W}, set()),
    ({"level": 229, "power": FULL_W}, {"dimmingFailure"}),
    ({"level": 0, "power": 0.5, "night": False}, set()),
    ({"level": 254, "power": FULL_W, "night": False}, {"lampUnexpectedOn"}),
    ({"failure": int(LuminaireFailure.TILT)}, {"poleTilted"}),
])
def test_one_reading_shows_exactly_its_fault(reading: dict[str, float], bad: set[str]) -> None:
    flags = _flags(**reading)  # type: ignore[arg-type]
    assert {k for k, v in flags.items() if v == 1} == bad


def test_a_cause_reads_like_a_technician_would_say_it() -> None:
    text = luminaire_cause(ft.LAMP_POWER_DRIFT, idx=2, controller="ctl-000012", at="21:14",
                           power_w=31.0, level_pct=20.0, expected_w=28.0, voltage_v=230.0,
                           current_a=0.15, power_factor=0.9, temp_c=30.0, ratio=1.11,
                           relights=0)
    assert text == ("luminaire 2 on controller ctl-000012 draws 31 W at 20% level since 21:14, "
                    "11% above its own baseline (expected 28 ± 1 W)")


def test_night_and_day_in_brussels_in_january() -> None:
    t0 = datetime(2025, 1, 14, 12, tzinfo=UTC).timestamp()
    trans = transitions(50.85, 4.35, t0, t0 + 86400)
    night, since, _ = sun_phase(trans, np.array([t0, t0 + 9 * 3600]))
    assert night.tolist() == [False, True]
    sunset = t0 + 9 * 3600 - since[1]
    assert datetime.fromtimestamp(sunset, UTC).strftime("%H") == "16"  # about 16:05 UTC


def test_scoring_counts_recall_precision_and_delay() -> None:
    labels = [Label("lamp_failure", "ctl-1:0", 1000.0, 5000.0),
              Label("lamp_failure", "ctl-2:3", 1000.0, 5000.0)]
    detected = [Detected("lampFailure", None, "ctl-1", 0, None, None, 1600.0),
                Detected("lampFailure", None, "ctl-9", 1, None, None, 1600.0),
                Detected("lampFailure", None, "ctl-2", 3, None, None, 99_000.0)]
    lamp = next(s for s in score(labels, detected) if s.fault == "lamp_failure")
    assert (lamp.labels, lamp.found, lamp.detections, lamp.true_detections) == (2, 1, 3, 1)
    assert lamp.recall == 0.5 and lamp.precision == pytest.approx(1 / 3)
    assert lamp.median_delay_s == 600.0


@pytest.mark.parametrize(("raised_at", "true", "duplicates"), [
    ([1600.0], 1, 0),
    ([1600.0, 2500.0], 1, 1),  # raised again within the same episode: one episode, one fault
    ([1600.0, 2500.0, 4000.0], 1, 2),
    ([1600.0, 12_000.0], 2, 0),  # a second episode on the same device is found on its own
    ([12_500.0, 1600.0], 2, 0),  # in any order
])
def test_scoring_counts_one_fault_per_episode(raised_at: list[float], true: int,
                                              duplicates: int) -> None:
    labels = [Label("comm_loss", "ctl-1", 1000.0, 5000.0),
              Label("comm_loss", "ctl-1", 11_000.0, 13_000.0)]
    detected = [Detected("communicationFailure", None, "ctl-1", None, None, None, t)
                for t in raised_at]
    comm = next(s for s in score(labels, detected) if s.fault == "comm_loss")
    assert comm.detections == len(raised_at)
    assert (comm.true_detections, comm.duplicates) == (true, duplicates)
    assert comm.precision == true / len(raised_at)


NO_DIAG = {"voltage": 0.0, "pf": 0.0, "temp": 0.0}  # what a gear without D4i Part 253 sends
PLAIN = int(LuminaireFailure.ABSENT_POWER | LuminaireFailure.ABSENT_DIAGNOSTICS)
PART_252 = int(LuminaireFailure.ABSENT_DIAGNOSTICS)


@pytest.mark.parametrize(("reading", "bad"), [
    # plain DALI (DT6) gear: level and status only; absent values are no evidence of anything
    ({"power": 0.0, **NO_DIAG, "failure": PLAIN}, set()),
    ({"level": 229, "power": 0.0, **NO_DIAG, "failure": PLAIN}, set()),
    ({"power": 0.0, **NO_DIAG, "failure": PLAIN | int(LuminaireFailure.LAMP)}, {"lampFailure"}),
    ({"power": 0.0, **NO_DIAG, "failure": PLAIN, "night": False}, {"lampUnexpectedOn"}),
    ({"level": 0, "power": 0.0, **NO_DIAG, "failure": PLAIN, "night": False}, set()),
    # D4i gear with energy reporting (Part 252) but no diagnostics (Part 253)
    ({**NO_DIAG, "failure": PART_252}, set()),
    ({"power": 0.5, **NO_DIAG, "failure": PART_252}, {"lampFailure"}),
    ({"power": FULL_W * 1.5, **NO_DIAG, "failure": PART_252},
     {"lampPowerTooHigh", "absoluteLampPowerTooHigh"}),
    ({"level": 229, "power": FULL_W, **NO_DIAG, "failure": PART_252}, {"dimmingFailure"}),
])
def test_absent_values_are_no_evidence_and_what_is_measured_still_counts(
        reading: dict[str, float], bad: set[str]) -> None:
    flags = _flags(**reading)  # type: ignore[arg-type]
    assert {k for k, v in flags.items() if v == 1} == bad


def _one_reading(t: float) -> LuminaireReadings:
    one = np.ones(1)
    return LuminaireReadings.sorted(
        lum=np.zeros(1, np.int64), t=np.array([t]), level=np.full(1, 254), status=np.full(1, 4),
        power=FULL_W * one, voltage=230.0 * one, current=0.3 * one, pf=0.97 * one,
        temp=30.0 * one, failure=np.zeros(1, np.int64))


def _no_reading() -> LuminaireReadings:
    return LuminaireReadings.sorted(**{k: v[:0] for k, v in vars(_one_reading(0.0)).items()})


@pytest.mark.parametrize(("passes", "events"), [
    # (readings of each 30-minute pass, offsets in s within it) -> (pass, raised?, at offset)
    # heard early in a pass, silent for the rest of it: raised once, not cleared in that pass
    ([[0.0, 300.0], [], []], [(0, True, 1800.0)]),
    # back in the third pass: cleared at the first new reading
    ([[0.0, 300.0], [], [600.0, 900.0]], [(0, True, 1800.0), (2, False, 600.0)]),
    # a reading stored late (older than this pass) that is newer than the silence clears it
    # when it arrives, not before the pass that read it
    ([[0.0, 300.0], [], [-2400.0]], [(0, True, 1800.0), (2, False, 0.0)]),
    # heard all along: nothing
    ([[0.0, 600.0, 1200.0], [0.0, 600.0, 1200.0]], []),
])
def test_a_silent_controller_is_raised_once_and_cleared_by_newer_readings_only(
        passes: list[list[float]], events: list[tuple[int, bool, float]]) -> None:
    reg = _registry()
    st = _learned(reg)
    got = []
    for i, offsets in enumerate(passes):
        t0 = NIGHT_T + 1800.0 * i
        readings = [_one_reading(t0 + 1.0 + dt) for dt in sorted(offsets)]
        r = readings[0] if len(readings) == 1 else (
            LuminaireReadings.sorted(**{k: np.concatenate([vars(x)[k] for x in readings])
                                        for k in vars(readings[0])}) if readings
            else _no_reading())
        for e in silence_events(reg, st, r, t0, t0 + 1800.0, 900.0):
            assert e.kind.name == "communicationFailure"
            got.append((i, e.raised, round(e.at - t0)))
    assert got == [(i, up, round(dt + (1.0 if not up and dt else 0.0))) for i, up, dt in events]


@given(st_h.lists(st_h.floats(0, 20_000), max_size=12),
       st_h.lists(st_h.tuples(st_h.floats(0, 20_000), st_h.floats(0, 5_000)), max_size=5))
def test_scoring_never_counts_more_true_faults_than_episodes(
        raised_at: list[float], episodes: list[tuple[float, float]]) -> None:
    labels = [Label("lamp_failure", "ctl-1:0", a, a + d) for a, d in episodes]
    detected = [Detected("lampFailure", None, "ctl-1", 0, None, None, t) for t in raised_at]
    lamp = next(s for s in score(labels, detected) if s.fault == "lamp_failure")
    assert lamp.true_detections <= len(labels) and lamp.found <= len(labels)
    assert lamp.true_detections + lamp.duplicates <= lamp.detections == len(raised_at)
    assert lamp.true_detections >= (1 if lamp.found else 0)


_CAUSE = {"idx": 2, "controller": "ctl-000012", "at": "21:14", "level_pct": 100.0,
          "expected_w": 66.0, "voltage_v": 230.0, "power_factor": 0.95, "temp_c": 30.0,
          "ratio": 1.5, "relights": 0, "rated_w": 60.0}


@pytest.mark.parametrize(("kind", "power_w", "current_a", "text"), [
    (ft.LAMP_POWER_TOO_HIGH, 99.0, 0.45,
     "luminaire 2 on controller ctl-000012 draws 99 W at 100% level since 21:14, 50% more than "
     "its own baseline for that level (expected 66 ± 3 W)"),
    (ft.ABSOLUTE_LAMP_POWER_TOO_HIGH, 99.0, 0.45,
     "luminaire 2 on controller ctl-000012 draws 99 W at 100% level since 21:14, more than its "
     "lamp type may draw at any level (rated 60 W: at most 82 W)"),
    (ft.ABSOLUTE_LAMP_POWER_TOO_LOW, 30.0, 0.14,
     "luminaire 2 on controller ctl-000012 draws 30 W at 100% level since 21:14, less than its "
     "lamp type draws at full level (rated 60 W: at least 46 W)"),
    (ft.CURRENT_TOO_HIGH, 66.0, 0.61,
     "luminaire 2 on controller ctl-000012 draws 0.61 A from the supply (66 W at 230 V, power "
     "factor 0.95) since 21:14, more than its lamp type's rated current allows (at most 0.48 A)"),
    (ft.CURRENT_TOO_LOW, 30.0, 0.14,
     "luminaire 2 on controller ctl-000012 draws 0.14 A from the supply (30 W at 230 V, power "
     "factor 0.95) at full level since 21:14, less than its lamp type draws (at least 0.19 A)"),
])
def test_each_power_and_current_kind_says_what_it_compared_with(
        kind: ft.FaultType, power_w: float, current_a: float, text: str) -> None:
    assert luminaire_cause(kind, power_w=power_w, current_a=current_a, **_CAUSE) == text


@pytest.mark.parametrize(("kind", "level", "power", "current", "flag"), [
    ("absoluteLampPowerTooHigh", 254, 99.0, 0.45, 1),
    ("absoluteLampPowerTooHigh", 254, 66.0, 0.30, 0),  # under the ceiling at full level: clears
    ("absoluteLampPowerTooHigh", 229, 40.0, 0.18, -1),  # dimmed under it: says nothing
    ("currentTooHigh", 254, 66.0, 0.60, 1),
    ("currentTooHigh", 254, 66.0, 0.30, 0),
    ("currentTooHigh", 229, 40.0, 0.18, -1),
])
def test_a_dimmed_lamp_under_a_ceiling_neither_raises_nor_clears_it(
        kind: str, level: int, power: float, current: float, flag: int) -> None:
    assert _flags(level=level, power=power, current=current)[kind] == flag


def _lum(kind: str, t: float, idx: int = 0) -> Detected:
    return Detected(kind, None, "ctl-000001", idx, None, None, t)


@pytest.mark.parametrize(("detected", "row", "counts"), [
    # 150 % at every level: lampPowerTooHigh is what it must raise; at full level it is over the
    # lamp type's ceiling too, and that raise is true, not false
    ([_lum("lampPowerTooHigh", 100.0), _lum("absoluteLampPowerTooHigh", 200.0)],
     "absoluteLampPowerTooHigh", (1, 1)),
    ([_lum("lampPowerTooHigh", 100.0)], "lampPowerTooHigh", (1, 1)),
    # the ceiling raised on a luminaire without a fault that shows it is false
    ([_lum("absoluteLampPowerTooHigh", 200.0, idx=1)], "absoluteLampPowerTooHigh", (1, 0)),
    # an implied kind raised twice in one episode: the second is a duplicate
    ([_lum("absoluteLampPowerTooHigh", 200.0), _lum("absoluteLampPowerTooHigh", 300.0)],
     "absoluteLampPowerTooHigh", (2, 1)),
])
def test_one_physical_fault_may_truly_raise_the_kinds_its_physics_implies(
        detected: list[Detected], row: str, counts: tuple[int, int]) -> None:
    labels = [Label("lamp_power_too_high", "ctl-000001:0", 0.0, 1000.0)]
    s = next(s for s in score(labels, detected) if s.raised_as == row)
    assert (s.detections, s.true_detections) == counts
    if row == "lampPowerTooHigh":
        assert s.recall == 1.0
