"""The energy job against the real database, as the jobs role: a simulated district night, day and
night (tests/analytics/energy_night.py), interval by interval against the simulator's exact
energy, late readings recomputed, supply points reconciled with their cabinet meters, local days
with their savings."""

from __future__ import annotations

import numpy as np
import psycopg
import pytest

from analytics.energy_intervals import ESTIMATED, MEASURED
from tests.analytics.energy_night import HELD_CTL, Night
from tests.analytics.energy_sim import BUCKET

pytestmark = [pytest.mark.integration, pytest.mark.district]

EDGE_S = 120.0


@pytest.fixture
def night(energy_night: Night) -> Night:
    return energy_night


def _cells(night: Night) -> dict[str, np.ndarray]:
    with psycopg.connect(night.dsn) as conn:
        rows = conn.execute(
            "SELECT controller_key, luminaire, extract(epoch FROM bucket)::bigint / 900,"
            " energy_wh, source, uncertainty_wh, powered_s FROM energy_interval").fetchall()
    a = np.array(rows, dtype=np.float64)
    ctl = np.searchsorted(night.keys, a[:, 0].astype(np.int64))
    return {"lum": ctl * 4 + a[:, 1].astype(np.int64), "b": a[:, 2].astype(np.int64) - night.b0,
            "energy": a[:, 3], "source": a[:, 4].astype(np.int64), "u": a[:, 5],
            "powered": a[:, 6]}


def test_every_interval_against_the_simulators_exact_energy(night: Night) -> None:
    c = _cells(night)
    last_whole = night.truth.shape[1] - 2  # the last intervals wait for their closing reading
    sel = (c["b"] >= 0) & (c["b"] < last_whole)
    truth = night.truth[c["lum"][sel], c["b"][sel]]
    err = np.abs(c["energy"][sel] - truth)
    edge = (c["powered"][sel] > 0) & (c["powered"][sel] < BUCKET)
    full = night.rated_input_w[c["lum"][sel]]
    metered = ~night.level_only[c["lum"][sel]]
    measured = c["source"][sel] == MEASURED
    estimated = (c["source"][sel] == ESTIMATED) & metered
    assert measured[metered].mean() > 0.85
    lit = truth > 0.2
    assert not measured[~metered & lit].any(), (  # the equivalent meter is an estimate
        c["lum"][sel][~metered & lit & measured][:5], c["b"][sel][~metered & lit & measured][:5],
        truth[~metered & lit & measured][:5], c["energy"][sel][~metered & lit & measured][:5])
    assert (err[measured] <= 0.01 * truth[measured] + 1e-6).all()
    allowed = 0.05 * truth + np.where(edge, full * EDGE_S / 3600.0, 0.0) + 1e-6
    assert (err[estimated] <= allowed[estimated]).all()
    bad = err > c["u"][sel] + 1e-6
    assert not bad.any(), list(zip(c["lum"][sel][bad][:8], c["b"][sel][bad][:8], truth[bad][:8],
                                   c["energy"][sel][bad][:8], c["u"][sel][bad][:8],
                                   c["source"][sel][bad][:8], strict=True))
    # every luminaire has every interval once
    assert np.unique(c["lum"][sel] * 10_000 + c["b"][sel]).shape[0] == sel.sum()
    assert sel.sum() == night.truth.shape[0] * last_whole


def test_late_readings_recompute_the_intervals_they_touch(night: Night) -> None:
    estimated_then = [r for r in night.before_late if r[3] == ESTIMATED]
    assert len(estimated_then) >= 4 * 10  # three hours of four luminaires were estimated
    with psycopg.connect(night.dsn) as conn:
        now = {(r[0], r[1]): r[3] for r in conn.execute(
            "SELECT bucket, luminaire, energy_wh, source FROM energy_interval"
            " WHERE controller_key = %s", (int(night.keys[HELD_CTL]),)).fetchall()}
    remeasured = [r for r in estimated_then if now[(r[0], r[1])] == MEASURED]
    assert len(remeasured) >= 0.9 * len(estimated_then)


def test_tenant_intervals_are_the_sum_of_their_luminaires_late_corrections_included(
        night: Night) -> None:
    """energy_tenant_interval (what a municipality's sub-day report reads) against the sum of
    every luminaire interval of the tenant, bucket by bucket: measured, estimated (the outage,
    the held controller before its readings came) and default energy, and the counts by source;
    the buckets the late readings re-measured were rewritten, not left as first booked."""
    with psycopg.connect(night.dsn) as conn:
        rows = conn.execute("""
            SELECT tenant_id, bucket, t.energy_wh, t.measured_wh, t.estimated_wh, t.default_wh,
                   t.uncertainty_wh, t.measured_cells, t.estimated_cells,
                   s.energy_wh, s.measured_wh, s.estimated_wh, s.default_wh, s.uncertainty_wh,
                   s.measured_cells, s.estimated_cells
            FROM energy_tenant_interval t
            FULL JOIN (
                SELECT c.tenant_id, e.bucket, sum(e.energy_wh) AS energy_wh,
                       sum(e.measured_wh) AS measured_wh, sum(e.estimated_wh) AS estimated_wh,
                       sum(e.default_wh) AS default_wh, sum(e.uncertainty_wh) AS uncertainty_wh,
                       count(*) FILTER (WHERE e.source = 0) AS measured_cells,
                       count(*) FILTER (WHERE e.source > 0) AS estimated_cells
                FROM energy_interval e JOIN controllers c ON c.key = e.controller_key
                GROUP BY 1, 2) s USING (tenant_id, bucket)
            ORDER BY 1, 2""").fetchall()
    assert len(rows) > 100
    for tenant, bucket, *figures in rows:
        rollup, summed = figures[:7], figures[7:]
        assert None not in rollup and None not in summed, (tenant, bucket, rollup, summed)
        assert rollup[:5] == pytest.approx(summed[:5], rel=1e-9, abs=1e-9), (tenant, bucket)
        assert rollup[5:] == summed[5:], (tenant, bucket)
    assert sum(r[8] for r in rows) > 100 and sum(r[4] for r in rows) > 0  # estimated ones too
    # the late readings: the buckets they re-measured changed in the tenant's rows too
    held = {r[0] for r in night.before_late if r[3] == ESTIMATED}
    tenant = night.inventory.tenants[int(night.inventory.controller_tenant[HELD_CTL])].id
    then = {(r[0], r[1]): r for r in night.tenant_before_late}
    now = {(r[0], r[1]): r for r in rows}
    touched = [k for k in then if k[0] == tenant and k[1] in held]
    assert len(touched) >= 10
    rewritten = [k for k in touched
                 if (now[k][7], now[k][8]) != (then[k][3], then[k][4])
                 and now[k][2] != pytest.approx(then[k][2], rel=1e-12)]
    assert len(rewritten) >= 0.9 * len(touched)
    assert all(now[k][7] > then[k][3] for k in rewritten)  # more of them measured now


def test_supply_points_sum_their_luminaires_and_show_the_meter_difference(night: Night) -> None:
    with psycopg.connect(night.dsn) as conn:
        rows = conn.execute("""
            SELECT s.ean, s.bucket, s.energy_wh, sum(e.energy_wh), s.meter_wh, s.difference_wh,
                   s.luminaires_expected, s.luminaires_reporting
            FROM energy_supply_interval s
            JOIN cabinets cab ON cab.supply_point_ean = s.ean
            JOIN controllers c ON c.cabinet_id = cab.id
            JOIN energy_interval e ON e.controller_key = c.key AND e.bucket = s.bucket
            GROUP BY 1, 2, 3, 5, 6, 7, 8""").fetchall()
        per_ean = dict(conn.execute(
            "SELECT cab.supply_point_ean, count(*) FROM luminaires l JOIN controllers c"
            " ON c.id = l.controller_id JOIN cabinets cab ON cab.id = c.cabinet_id"
            " GROUP BY 1").fetchall())
    assert rows
    for ean, _bucket, total, summed, meter, diff, expected, reporting in rows:
        assert total == pytest.approx(summed), ean
        assert expected == per_ean[ean] and 0 <= reporting <= expected
        if meter is not None:
            assert diff == pytest.approx(meter - total)
    metered = [r for r in rows if r[4] is not None and r[2] > 100.0]
    assert len(metered) > 50
    # the feeder's cable losses: the meter reads a little more than the luminaires
    ratio = np.array([r[4] / r[2] for r in metered])
    assert np.median(ratio) > 1.0 and np.median(ratio) < 1.05


def test_local_days_with_baseline_savings_and_their_sources(night: Night) -> None:
    with psycopg.connect(night.dsn) as conn:
        rows = conn.execute(
            "SELECT scope, key, day, intervals, intervals_present, energy_wh, baseline_wh,"
            " savings_wh, savings_co2_kg, emission_g_kwh, emission_year, emission_source,"
            " savings_eur, tariff_eur_kwh FROM energy_day ORDER BY scope, key, day").fetchall()
    scopes = {r[0] for r in rows}
    assert scopes == {"tenant", "supply_point"}
    for r in rows:
        assert r[3] == 96  # January: no DST change
        assert r[7] == pytest.approx(r[6] - r[5])
    saved = [r for r in rows if r[9] is not None]
    assert saved
    for r in saved:
        assert r[9] == 167.49 and r[10] == 2023 and "Residual" in r[11]
        assert r[8] == pytest.approx(r[7] / 1000.0 * 0.16749)
        assert r[12] == pytest.approx(r[7] / 1000.0 * 0.25)
    # the district dims 23:00-05:00: it uses less than full power from dusk to dawn
    full_day = [r for r in rows if r[0] == "tenant" and r[4] == 96]
    assert full_day and all(0 < r[5] < r[6] for r in full_day)
