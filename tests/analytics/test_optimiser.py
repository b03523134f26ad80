"""The optimiser from groups to calendars: classes kept in every slot, never above the rated class,
steps and durations within bounds, a supply point's cap met with a small duality gap, and the
calendar, run by the agent's own schedule code, gives the planned levels."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics.optimiser import (
    SLOT_S,
    Constraints,
    Group,
    OptimiserError,
    PowerCap,
    PresenceRule,
    build_problems,
    expected_power,
    propose,
    propose_for_group,
    solve,
    solve_capped,
    window_mask,
)
from analytics.optimiser_kernels import plan_feasible
from analytics.photometry import Photometry, arc_at_least, log_curve_fraction
from analytics.road_classes import CLASS_MINIMUM, SERIES, LightingClass, lowering_steps
from analytics.traffic import typical_profile
from wire.messages import Calendar, loads
from wire.nights import Position, level_at

ARTERIAL = np.stack([typical_profile("arterial"), typical_profile("arterial") * 0.85])
RESIDENTIAL = np.stack([typical_profile("residential"), typical_profile("residential")])


def group(i: int = 0, **changes: object) -> Group:
    base: dict[str, object] = dict(id=f"g{i}", luminaires=12, rated_class="M3",
                                   photometry=Photometry(design_at_full=1.6), traffic=ARTERIAL)
    base.update(changes)
    return Group(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(("traffic", "steps"), [
    (1.0, 0), (0.65, 0), (0.64, 1), (0.35, 1), (0.34, 2), (0.15, 2), (0.14, 3), (0.0, 3)])
def test_traffic_lowers_the_class_by_the_tr_bounds(traffic: float, steps: int) -> None:
    assert int(lowering_steps(np.array([traffic]))[0]) == steps


@pytest.mark.parametrize(("rated", "steps", "lowered"), [
    ("M2", 1, "M3"), ("M5", 3, "M6"), ("C0", 2, "C2"), ("P6", 1, "P6"), ("P1", 0, "P1")])
def test_a_class_lowers_within_its_series_and_stops_at_the_dimmest(
        rated: str, steps: int, lowered: str) -> None:
    assert LightingClass(rated).lowered(steps).name == lowered


@pytest.mark.parametrize("arc", [1, 85, 150, 200, 230, 254])
def test_arc_levels_and_light_fractions_agree_on_the_dali_log_curve(arc: int) -> None:
    assert int(arc_at_least(log_curve_fraction(np.array(arc)))) == arc


NIGHTS = [date(2026, 1, 12), date(2026, 3, 28), date(2026, 6, 20), date(2026, 10, 24)]


@settings(max_examples=25, deadline=None)
@given(st.sampled_from(sorted(CLASS_MINIMUM)), st.floats(0.5, 3.0), st.integers(0, 5),
       st.sampled_from([15, 30, 60, 120]), st.sampled_from(NIGHTS),
       st.booleans(), st.integers(0, 2**31))
def test_every_slot_keeps_its_class_never_above_the_rated_and_within_the_step_rules(
        rated: str, design_ratio: float, max_steps: int, min_step: int, night: date,
        planned: bool, seed: int) -> None:
    rng = np.random.default_rng(seed)
    minimum = CLASS_MINIMUM[rated]
    photometry = Photometry(design_at_full=minimum * design_ratio / 0.8)
    series = SERIES[rated[0]]
    plan = (tuple(series[int(i)] for i in rng.integers(0, 6, 24)) if planned else None)
    g = group(rated_class=rated, photometry=photometry, planned_classes=plan,
              traffic=rng.uniform(0, 1, (2, 24)))
    c = Constraints(max_steps=max_steps, min_step_min=min_step)
    pr = build_problems([g], [night], c)
    levels, _ = solve(pr)
    n = int(pr.n_slots[0])
    lv = levels[0, :n].astype(np.int64)
    assert plan_feasible(lv, pr.req[0, :n], max_steps + 1, c.min_slots)
    rated_rank = LightingClass(rated).rank
    assert np.all(pr.klass[0, :n] >= rated_rank), "never above the rated class"
    # the light planned keeps the class in force (or is 100 % where the design falls short)
    light = pr.fractions[lv] * photometry.design_at_full * photometry.maintenance_factor
    in_force = np.array([CLASS_MINIMUM[series[k]] for k in pr.klass[0, :n]])
    assert np.all((light >= in_force - 1e-9) | (lv == pr.fractions.shape[0] - 1))
    assert pr.fractions.shape[0] >= 20


def test_a_road_the_design_cannot_light_to_class_burns_at_full_and_says_why() -> None:
    g = group(rated_class="M1", photometry=Photometry(design_at_full=1.0))
    p = propose_for_group(g, date(2026, 1, 12), 1)
    steps = p.nights[0].steps
    assert steps[0].arc == 254 and "more than the design gives" in steps[0].why


def test_savings_of_a_traffic_lowered_arterial_are_in_the_published_range() -> None:
    """Dimming by class and traffic on a Brussels arterial saves a few tens of percent."""
    p = propose_for_group(group(), date(2026, 1, 12), 7)
    share = 1 - p.energy_kwh / p.baseline_kwh
    assert 0.15 < share < 0.6
    assert all(n.energy_kwh < n.baseline_kwh for n in p.nights)


def _fleet(n: int = 24) -> list[Group]:
    rng = np.random.default_rng(11)
    classes = ["M3", "M4", "M5", "C3", "P2", "P4"]
    return [group(i, rated_class=(c := classes[i % len(classes)]),
                  photometry=Photometry(design_at_full=CLASS_MINIMUM[c] * rng.uniform(1.3, 1.9)
                                        / 0.8, rated_w=float(rng.uniform(30, 90))),
                  luminaires=int(rng.integers(5, 60)), supply_point="541449000000000001",
                  traffic=ARTERIAL if i % 3 else RESIDENTIAL) for i in range(n)]


@pytest.mark.parametrize(("window", "tightness"), [
    ((time(21, 0), time(23, 0)), 0.5), ((time(22, 0), time(23, 30)), 0.3),
    ((time(23, 0), time(2, 0)), 0.5), ((time(21, 0), time(23, 0)), 0.05)])
def test_a_supply_point_cap_is_met_with_a_duality_gap_under_one_percent(
        window: tuple[time, time], tightness: float) -> None:
    groups = _fleet()
    c = Constraints(max_steps=2, min_step_min=120)
    pr = build_problems(groups, [date(2026, 1, 14)], c)
    rows = np.arange(pr.count)
    levels, energy = solve(pr)
    probe = PowerCap("541449000000000001", 1.0, *window)
    win = window_mask(pr, rows, probe)
    qrel = (pr.q0[:, None] - pr.q0.min()) + np.arange(pr.dt_h.shape[1])[None, :]
    free_peak = np.bincount(qrel[win], weights=expected_power(pr, levels)[win]).max()
    floor = expected_power(pr, pr.req.astype(np.int64))
    floor_peak = np.bincount(qrel[win], weights=floor[win]).max()
    assert free_peak > floor_peak * 1.02, "the steps' rules put load in the window: a cap binds"
    # tightness: where between the class minima (0) and the uncapped peak (1) the cap lies
    cap = PowerCap(probe.supply_point, float(floor_peak + tightness * (free_peak - floor_peak)),
                   *window)
    result = solve_capped(pr, rows, cap)
    assert result.met
    load = np.bincount(qrel[win], weights=expected_power(pr, result.levels)[win])
    assert load.max() <= cap.cap_w * (1 + 1e-9), "the cap holds in every quarter of the window"
    assert result.dual_wh <= result.primal_wh + 1e-6
    assert result.uncapped_wh <= result.primal_wh + 1e-6
    assert result.gap <= 0.01
    for i in rows:
        n = int(pr.n_slots[i])
        assert plan_feasible(result.levels[i, :n], pr.req[i, :n], 3, c.min_slots)


def test_a_cap_below_the_class_minima_is_reported_and_the_classes_win() -> None:
    groups = _fleet(6)
    pr = build_problems(groups, [date(2026, 1, 14)], Constraints())
    rows = np.arange(pr.count)
    result = solve_capped(pr, rows, PowerCap("541449000000000001", 10.0, time(21), time(23)))
    assert not result.met
    levels, _ = solve(pr)
    assert np.array_equal(result.levels, levels)


def _agent_levels(cal: Calendar, g: Group, instants: list[datetime]) -> list[int]:
    return [level_at(cal, Position(g.lat, g.lon), t) for t in instants]


@pytest.mark.parametrize("first", [date(2026, 1, 12), date(2026, 3, 25), date(2026, 6, 18)])
def test_the_proposed_calendar_run_by_the_agent_gives_the_planned_levels(first: date) -> None:
    """Including the night the clocks go forward (2026-03-28)."""
    g = group(presence=PresenceRule(hold_s=45), peak_per_h=120)
    c = Constraints()
    proposal = propose_for_group(g, first, 7, c)
    cal = loads(Calendar, proposal.calendar.model_dump_json())
    assert cal == proposal.calendar and cal.valid_from == first
    pr = build_problems([g], [first + timedelta(days=i) for i in range(7)], c)
    levels, _ = solve(pr)
    for r in range(pr.count):
        n = int(pr.n_slots[r])
        mids = [datetime.fromtimestamp(float((pr.q0[r] + t) * SLOT_S + SLOT_S / 2), UTC)
                for t in range(1, n - 1)]
        planned = [int(pr.arcs[levels[r, t]]) for t in range(1, n - 1)]
        assert _agent_levels(cal, g, mids) == planned
        assert cal.programs[cal.program_name(date.fromordinal(int(pr.day[r]))) or ""].presence


def test_on_the_autumn_night_the_agent_never_gives_less_light_than_planned() -> None:
    g = group(traffic=np.stack([np.linspace(1, 0, 24), np.linspace(1, 0, 24)]))
    c = Constraints(max_steps=6, min_step_min=15)
    night = date(2026, 10, 24)
    proposal = propose_for_group(g, night, 1, c)
    pr = build_problems([g], [night], c)
    levels, _ = solve(pr)
    n = int(pr.n_slots[0])
    mids = [datetime.fromtimestamp(float((pr.q0[0] + t) * SLOT_S + SLOT_S / 2), UTC)
            for t in range(1, n - 1)]
    ran = _agent_levels(proposal.calendar, g, mids)
    assert all(a >= int(pr.arcs[levels[0, t]]) for a, t in zip(ran, range(1, n - 1), strict=True))


def test_each_step_is_explained_by_its_class_traffic_or_binding_constraint() -> None:
    p = propose_for_group(group(), date(2026, 1, 12), 2, Constraints(max_steps=1))
    for n in p.nights:
        assert len(n.steps) <= 2
        assert all("class M" in s.why and "traffic" in s.why for s in n.steps)
        assert any("limit of 1 steps a night" in s.why for s in n.steps)
    doc = p.explanations()
    assert doc[0]["night"] == "2026-01-12" and doc[0]["steps"]


@pytest.mark.parametrize(("changes", "says"), [
    (dict(rated_class="M7"), "unknown EN 13201 class"),
    (dict(luminaires=0), "at least one luminaire"),
    (dict(traffic=np.full((2, 24), 3.0)), "traffic"),
    (dict(traffic=np.full((2, 23), 0.5)), "traffic"),
    (dict(planned_classes=("C2",) * 24), "not of the series"),
    (dict(lat=95.0), "not on Earth"),
    (dict(timezone="Europe/Atlantis"), "unknown IANA time zone"),
    (dict(timezone="../../etc/passwd"), "unknown IANA time zone"),
])
def test_a_group_the_optimiser_cannot_plan_for_is_refused_with_the_reason(
        changes: dict[str, object], says: str) -> None:
    with pytest.raises(ValueError, match=says):
        group(**changes)


def test_constraints_and_ranges_out_of_bounds_are_refused() -> None:
    with pytest.raises(OptimiserError, match="n_levels"):
        Constraints(n_levels=10)
    with pytest.raises(OptimiserError, match="1..31 nights"):
        propose([group()], date(2026, 1, 1), 60)
    with pytest.raises(ValueError, match="photometry out of range: rated_w"):
        Photometry(rated_w=-5)


def test_solving_each_distinct_problem_once_gives_every_group_its_own_least_energy() -> None:
    """Groups of other wattages and sizes with the same needs share a plan: the costs differ only
    by an affine change of scale. Every plan equals the one solved for that group alone."""
    from analytics.optimiser_kernels import solve_nights

    groups = _fleet(30) + [group(99, luminaires=3, photometry=Photometry(
        design_at_full=1.6, rated_w=150.0, standby_w=2.0))]
    pr = build_problems(groups, [date(2026, 2, 2), date(2026, 7, 7)], Constraints())
    levels, energy = solve(pr)
    alone, _ = solve_nights(pr.req, pr.dt_h, pr.boost, pr.n_slots, pr.power, pr.boost_w,
                            pr.max_segments, pr.min_len)
    energy_alone = (expected_power(pr, alone) * pr.dt_h).sum(axis=1)
    assert np.allclose(energy, energy_alone, rtol=1e-12)
