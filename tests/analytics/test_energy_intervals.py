"""Energy per luminaire per 15-minute interval against the simulator's exact energy, interval by
interval: measured intervals within 1 %, estimated ones within 5 % with their uncertainty covering
the error, in the hard cases; hostile counters flagged, never booked silently."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from analytics import energy_kernels as ek
from analytics.energy_intervals import (
    CELL_DAY_BURNING,
    CELL_DEFAULT,
    CELL_EQUIVALENT,
    DEFAULT,
    ESTIMATED,
    MEASURED,
    Cells,
    Readings,
    account,
)
from tests.analytics.energy_sim import BUCKET, Run, district, simulate


@pytest.fixture(scope="module")
def run() -> Run:
    """Two nights and a day of 24 controllers x 4 luminaires, one cabinet switched off by day."""
    return simulate(district(), 40.2)


def _account(run: Run) -> Cells:
    return account(run.readings, run.fleet(), run.sun(), run.grid(), run.t_end)


def _ts(run: Run, lum: int, when: str) -> float:
    return datetime.fromisoformat(when).replace(tzinfo=UTC).timestamp()


#: a switched cabinet's switching time is known to the simulator's one-minute tick and the
#: astronomical clock: a cell holding a dawn or dusk edge may be off by two minutes of burning
EDGE_S = 120.0


def _check(run: Run, cells: Cells, lums: np.ndarray | None = None) -> dict[str, float]:
    """Every interval: measured within 1 %, estimated within 5 % (plus, in a cell holding a
    switched supply's dawn or dusk edge, two minutes of burning), and the uncertainty covering
    the error. Returns the worst relative errors."""
    truth = run.truth_wh.ravel()
    lum = run.grid().cell_lum()
    sel = np.ones(truth.shape[0], bool) if lums is None else np.isin(lum, lums)
    err = np.abs(cells.energy_wh - truth)
    full_w = run.fleet().rated_input_w[lum]
    edge = (cells.powered_s > 0) & (cells.powered_s < BUCKET)
    out = {}
    for source, tol in ((MEASURED, 0.01), (ESTIMATED, 0.05)):
        m = sel & (cells.source == source)
        if not m.any():
            continue
        allowed = tol * truth[m] + 1e-6 + np.where(edge[m], full_w[m] * EDGE_S / 3600.0, 0.0)
        bad = np.flatnonzero(err[m] > allowed)
        assert bad.shape[0] == 0, (source, truth[m][bad][:5], cells.energy_wh[m][bad][:5])
        covered = err[m] <= cells.uncertainty_wh[m] + 1e-6
        assert covered.all(), (source, err[m][~covered][:5], cells.uncertainty_wh[m][~covered][:5])
        inner = m & ~edge & (truth > 0.05 * full_w * BUCKET / 3600.0)
        out[f"worst_{source}"] = float((err[inner] / truth[inner]).max()) if inner.any() else 0.0
    return out


def test_every_interval_is_measured_and_exact_when_no_reading_is_lost(run: Run) -> None:
    cells = _account(run)
    night_lit = run.truth_wh.ravel() > 1.0
    # the switched cabinet's dusk and dawn intervals are partly unpowered, partly unread
    assert (cells.source[night_lit] == MEASURED).mean() > 0.97
    _check(run, cells)
    assert cells.energy_wh.sum() == pytest.approx(run.truth_wh.sum(), rel=1e-3)


def _switched_lums(run: Run) -> np.ndarray:
    return np.flatnonzero(run.fleet().switched)


def _powered_all_day(run: Run) -> np.ndarray:
    return np.flatnonzero(~run.fleet().switched)


def test_readings_lost_just_before_the_dawn_power_cut(run: Run) -> None:
    lums = _switched_lums(run)[:8]
    r = run.readings
    lost = np.isin(r.lum, lums) & (r.t > _ts(run, 0, "2025-01-15T06:50")) & (
        r.t < _ts(run, 0, "2025-01-15T12:00"))
    damaged = run.drop(lost)
    cells = _account(damaged)
    lum = run.grid().cell_lum()
    gap = np.isin(lum, lums) & (run.grid().cell_bucket() * BUCKET >= _ts(run, 0, "2025-01-15T07:00")
                                ) & (run.grid().cell_bucket() * BUCKET < _ts(run, 0, "2025-01-15T07:45"))
    assert (cells.source[gap] == ESTIMATED).all()
    _check(damaged, cells, lums)
    # the counter closes the gap: its total is the truth
    assert cells.energy_wh[np.isin(lum, lums)].sum() == pytest.approx(
        run.truth_wh[lums].sum(), rel=1e-3)


@pytest.mark.parametrize(("used_wh", "flag"), [(0.0, ek.STEP_RESET), (40_000.0, ek.STEP_IMPLAUSIBLE)],
                         ids=["new driver counts from 0", "used driver with 40 kWh on its counter"])
def test_a_driver_swapped_mid_night_books_no_lifetime(run: Run, used_wh: float, flag: int) -> None:
    r = run.readings
    lum = int(_powered_all_day(run)[3])
    swap = _ts(run, 0, "2025-01-14T21:07")
    mine = (r.lum == lum)
    after = mine & (r.t > swap)
    e = r.energy_wh.copy()
    # the replacement counts from its swap on, from 0 or from what it counted in a former life
    e[after] = r.energy_wh[after] - np.interp(swap, r.t[mine], r.energy_wh[mine]) + used_wh
    cells = _account(run.with_energy(e))
    mine_cells = run.grid().cell_lum() == lum
    full = run.fleet().rated_input_w[lum] * BUCKET / 3600.0
    assert cells.energy_wh[mine_cells].max() <= full * 1.05
    swapped = mine_cells & ((cells.flags & flag) != 0)
    assert swapped.sum() == 1 and cells.source[swapped][0] == ESTIMATED
    _check(run, cells, np.array([lum]))


def test_a_counter_wrap_is_counted_once(run: Run) -> None:
    r = run.readings
    lum = int(_powered_all_day(run)[5])
    mine = r.lum == lum
    at = _ts(run, 0, "2025-01-14T22:31")
    e_at = np.interp(at, r.t[mine], r.energy_wh[mine])
    e = r.energy_wh.copy()
    e[mine] = np.mod(r.energy_wh[mine] - e_at + 65536.0, 65536.0)  # a 16-bit Wh counter rolls over
    cells = _account(run.with_energy(e))
    mine_cells = run.grid().cell_lum() == lum
    wrapped = mine_cells & ((cells.flags & ek.STEP_WRAP) != 0)
    assert wrapped.sum() == 1 and cells.source[wrapped][0] == MEASURED
    _check(run, cells, np.array([lum]))


@pytest.mark.parametrize("switched", [False, True])
def test_a_controller_silent_a_whole_night(run: Run, switched: bool) -> None:
    pool = _switched_lums(run) if switched else _powered_all_day(run)
    ctl = int(pool[0]) // 4
    lums = np.arange(ctl * 4, ctl * 4 + 4)
    r = run.readings
    lost = (r.lum // 4 == ctl) & (r.t > _ts(run, 0, "2025-01-15T12:00")) & (
        r.t < _ts(run, 0, "2025-01-16T07:00"))
    damaged = run.drop(lost)
    cells = _account(damaged)
    night = np.isin(run.grid().cell_lum(), lums) & (
        run.grid().cell_bucket() * BUCKET >= _ts(run, 0, "2025-01-15T17:00")) & (
        run.grid().cell_bucket() * BUCKET < _ts(run, 0, "2025-01-16T06:00"))
    assert (cells.source[night] == ESTIMATED).all()
    _check(damaged, cells, lums)


def test_a_luminaire_never_heard_of_gets_the_default_and_none_by_day_on_a_switched_supply(
        run: Run) -> None:
    sw, always = int(_switched_lums(run)[0]), int(_powered_all_day(run)[0])
    damaged = run.drop(np.isin(run.readings.lum, [sw, always]))
    cells = _account(damaged)
    lum = run.grid().cell_lum()
    noon = run.grid().cell_bucket() * BUCKET == _ts(run, 0, "2025-01-15T12:00")
    for j in (sw, always):
        mine = lum == j
        assert (cells.source[mine] == DEFAULT).all() or (
            cells.energy_wh[mine & (cells.source != DEFAULT)] == 0).all()
        assert (cells.flags[mine & (cells.default_wh > 0)] & CELL_DEFAULT).all()
        assert cells.energy_wh[mine & noon][0] == 0.0  # the astronomical clock: off by day
        # rated power x night time, with an uncertainty that covers the truth here
        truth = run.truth_wh[j].sum()
        assert abs(cells.energy_wh[mine].sum() - truth) <= cells.uncertainty_wh[mine].sum()


def test_energy_measured_by_day_on_a_switched_supply_is_kept_and_flagged(run: Run) -> None:
    r = run.readings
    lum = int(_switched_lums(run)[2])
    mine = r.lum == lum
    # the contactor stuck on: the luminaire reports at noon, drawing 40 W
    t_day = np.arange(_ts(run, 0, "2025-01-15T11:00"), _ts(run, 0, "2025-01-15T13:00"), 300.0)
    e_day = r.energy_wh[mine & (r.t < t_day[0])][-1] + 40.0 * (t_day - t_day[0]) / 3600.0
    later = mine & (r.t > t_day[-1])
    e = r.energy_wh.copy()
    e[later] += e_day[-1] - r.energy_wh[mine & (r.t < t_day[0])][-1]
    extra = Readings.sorted(
        np.concatenate([r.lum, np.full(t_day.shape[0], lum)]), np.concatenate([r.t, t_day]),
        np.concatenate([e, e_day]), np.concatenate([r.power_w, np.full(t_day.shape[0], 40.0)]),
        np.concatenate([r.level, np.full(t_day.shape[0], 254)]))
    damaged = Run(run.inventory, extra, run.ctl, run.b0, run.truth_wh, run.t_end)
    cells = _account(damaged)
    mine_cells = run.grid().cell_lum() == lum
    day = mine_cells & (run.grid().cell_bucket() * BUCKET >= t_day[0]) & (
        run.grid().cell_bucket() * BUCKET + BUCKET <= t_day[-1])
    assert cells.measured_wh[day] == pytest.approx(np.full(day.sum(), 10.0), rel=1e-6)
    assert (cells.flags[day] & CELL_DAY_BURNING).all()


def test_gear_without_metering_is_counted_from_its_levels_and_flagged_estimated() -> None:
    """DALI DT6 gear reports its level but no energy: the equivalent meter (rated power at the
    level) counts it, as an estimate whose uncertainty covers the simulator's energy (its
    constant-light-output drivers draw less than their rating early in their life)."""
    run = simulate(district(controllers=8), 14.2, gear="dt6")
    assert np.isnan(run.readings.energy_wh).all()
    cells = _account(run)
    lit = run.truth_wh.ravel() > 1.0
    assert (cells.source[lit] == ESTIMATED).all()
    assert (cells.flags[lit] & CELL_EQUIVALENT).all()
    err = np.abs(cells.energy_wh - run.truth_wh.ravel())
    assert (err <= cells.uncertainty_wh + 1e-6).all()
    assert abs(cells.energy_wh.sum() - run.truth_wh.sum()) <= cells.uncertainty_wh.sum()


HOSTILE = [
    ("nan counter", lambda e, t, i: (e.__setitem__(i, np.nan), t)[1], ek.STEP_BAD),
    ("negative counter", lambda e, t, i: (e.__setitem__(i, -5.0), t)[1], ek.STEP_BAD),
    ("counter jumps forward by a lifetime", lambda e, t, i: (e.__setitem__(i, e[i] + 5e5), t)[1],
     ek.STEP_IMPLAUSIBLE),
    ("counter jumps backwards", lambda e, t, i: (e.__setitem__(i, e[i] - 300.0), t)[1],
     ek.STEP_RESET),
]


@pytest.mark.parametrize(("name", "edit", "flag"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_a_hostile_reading_is_flagged_and_books_nothing_wild(run: Run, name: str, edit, flag: int  # type: ignore[no-untyped-def]
                                                            ) -> None:
    r = run.readings
    lum = int(_powered_all_day(run)[7])
    mine = np.flatnonzero(r.lum == lum)
    i = int(mine[len(mine) // 3])
    e = r.energy_wh.copy()
    edit(e, r.t, i)
    cells = _account(run.with_energy(e))
    mine_cells = run.grid().cell_lum() == lum
    assert ((cells.flags[mine_cells] & flag) != 0).any(), name
    full = run.fleet().rated_input_w[lum] * BUCKET / 3600.0
    assert np.isfinite(cells.energy_wh).all()
    assert cells.energy_wh[mine_cells].max() <= full * 1.05
    _check(run, cells, np.array([lum]))


def test_a_reading_from_the_year_2100_is_no_evidence(run: Run) -> None:
    r = run.readings
    lum = int(_powered_all_day(run)[1])
    far = datetime(2100, 1, 1, tzinfo=UTC).timestamp()
    extra = Readings.sorted(np.append(r.lum, lum), np.append(r.t, far),
                            np.append(r.energy_wh, 1e9), np.append(r.power_w, 60.0),
                            np.append(r.level, 254))
    cells = _account(Run(run.inventory, extra, run.ctl, run.b0, run.truth_wh, run.t_end))
    _check(run, cells, np.array([lum]))


def test_power_below_standby_is_no_light_not_a_negative_share() -> None:
    """A controller on a cut supply (0 W) or with a standby below the model's draws a share of 0,
    never below: a negative share once made negative estimates, broke energy_interval's CHECK
    and stopped the energy job."""
    from analytics.energy_intervals import STANDBY_W, share_above_standby

    power = np.array([0.0, STANDBY_W / 2, STANDBY_W, 30.0, 60.0, 10.0])
    full = np.array([60.0, 60.0, 60.0, 60.0, 60.0, 0.0])
    share = share_above_standby(power, full)
    np.testing.assert_allclose(share[:5], [0.0, 0.0, 0.0, (30 - STANDBY_W) / (60 - STANDBY_W), 1.0])
    assert np.isnan(share[5])
