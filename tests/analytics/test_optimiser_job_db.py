"""The optimiser job against the real database: traffic learned from presence readings, one
proposal per group and first night written by the jobs role, read by the API role."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from analytics.optimiser_job import OptimiserJob
from analytics.runner import Scheduled, run_once
from analytics.traffic import typical_profile
from luciole.db_roles import DbService
from wire.messages import Calendar, loads
from wire.records import Quantity

pytestmark = pytest.mark.integration
TZ = ZoneInfo("Europe/Brussels")


def _seed(conn: psycopg.Connection, now: datetime) -> int:
    conn.execute("INSERT INTO tenants (id, name) VALUES ('uccle', 'Uccle')")
    for key_name in ("ctl-a", "ctl-b"):
        conn.execute("INSERT INTO controllers (id, tenant_id, lat, lon, status) "
                     "VALUES (%s, 'uccle', 50.80, 4.34, 'active')", (key_name,))
        for idx in range(4):
            conn.execute("INSERT INTO luminaires (tenant_id, controller_id, idx, rated_power_w, "
                         "road_class) VALUES ('uccle', %s, %s, 48, 'M4')", (key_name, idx))
    gid = conn.execute("INSERT INTO groups (tenant_id, name) VALUES ('uccle', 'chaussee') "
                       "RETURNING id").fetchone()[0]
    conn.execute("INSERT INTO group_members SELECT %s, id FROM luminaires", (gid,))
    conn.execute("INSERT INTO group_lighting (group_id, rated_class, design_at_full, max_steps, "
                 "min_step_min, presence_hold_s) VALUES (%s, 'M4', 1.1, 3, 60, 60)", (gid,))
    # a second group with no description is not planned
    conn.execute("INSERT INTO groups (tenant_id, name) VALUES ('uccle', 'undescribed')")
    key = conn.execute("SELECT key FROM controllers WHERE id = 'ctl-a'").fetchone()[0]
    profile = typical_profile("arterial")
    rng = np.random.default_rng(5)
    rows = []
    t = now - timedelta(days=27)
    seq = 0
    while t < now:
        peak_per_15min = 60.0
        count = rng.poisson(profile[t.astimezone(TZ).hour] * peak_per_15min)
        rows.append((t, key, 32, int(Quantity.PRESENCE_COUNT), float(count), 1, seq))
        seq += 1
        t += timedelta(minutes=15)
    with conn.cursor().copy("COPY sensor_readings (time, controller_key, sensor, quantity, value,"
                            " boot_id, seq) FROM STDIN") as copy:
        for r in rows:
            copy.write_row(r)
    return int(gid)


def test_the_job_writes_one_proposal_per_group_with_energy_savings_and_reasons(stack, db_dsn):
    now = datetime.now(UTC)
    with psycopg.connect(db_dsn, autocommit=True) as owner:
        gid = _seed(owner, now)
    dbname = conninfo_to_dict(db_dsn)["dbname"]
    jobs_dsn = stack.endpoints.service_dsn(DbService.JOBS, dbname)
    item = Scheduled(OptimiserJob(nights=7), every_s=3600, settle_s=0, max_window_s=86_400)
    with psycopg.connect(jobs_dsn, autocommit=True) as conn:
        outcome = run_once(conn, item, ignore_schedule=True)
        assert outcome is not None and outcome.result.records == 1
        again = run_once(conn, item, ignore_schedule=True)
        assert again is None or again.result.records == 0, "one proposal per group and night"
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM schedule_proposals")
    api_dsn = stack.endpoints.service_dsn(DbService.API, dbname)
    with psycopg.connect(api_dsn, autocommit=True) as api:
        rows = api.execute("SELECT group_id, first_night, last_night, calendar, predicted_kwh, "
                           "baseline_kwh, savings_kwh, nights, inputs FROM schedule_proposals"
                           ).fetchall()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            api.execute("INSERT INTO schedule_proposals (tenant_id, group_id, first_night, "
                        "last_night, calendar, predicted_kwh, baseline_kwh, nights, inputs) "
                        "VALUES ('uccle', %s, now(), now(), '{}', 0, 0, '[]', '{}')", (gid,))
    (row,) = rows
    group_id, first, last, calendar, predicted, baseline, savings, nights, inputs = row
    assert group_id == gid and first == now.astimezone(TZ).date()
    assert (last - first).days == 6
    cal = loads(Calendar, json.dumps(calendar))
    assert cal.valid_from == first and cal.valid_until == last
    assert 0 < predicted < baseline and savings == pytest.approx(baseline - predicted)
    assert len(nights) == 7 and all(n["steps"] for n in nights)
    assert all("class M" in s["why"] for n in nights for s in n["steps"])
    assert any("M6" in s["why"] or "M5" in s["why"] for n in nights for s in n["steps"]), \
        "the night's low traffic lowers the class"
    share = np.array(inputs["traffic_share"])
    assert inputs["presence_readings"] > 2000
    assert share[0, 3] < 0.2 < 0.8 < share[0, 8], "learned: quiet at 03:00, busy at 08:00"
    assert cal.programs[cal.week[0]].presence is not None


def test_the_job_waits_for_a_described_group_then_plans_the_nights_of_its_clock(stack, db_dsn):
    """A demo describes its group once the API is up, after the job runner's first passes: those
    passes neither start nor advance the cursor (else the first proposal would wait for the next
    hour), and the nights planned are those of the simulated clock the job is handed."""
    simulated = datetime(2026, 3, 3, 18, 30, tzinfo=UTC)  # months from the wall clock
    item = Scheduled(OptimiserJob(nights=7, clock=lambda: simulated), every_s=10, settle_s=0,
                     max_window_s=86_400)
    dbname = conninfo_to_dict(db_dsn)["dbname"]
    jobs_dsn = stack.endpoints.service_dsn(DbService.JOBS, dbname)
    with psycopg.connect(jobs_dsn, autocommit=True) as conn:
        assert run_once(conn, item, ignore_schedule=True) is None, "nothing described: no pass"
        assert run_once(conn, item) is None
    with psycopg.connect(db_dsn, autocommit=True) as owner:
        gid = _seed(owner, simulated)
        cursors = owner.execute("SELECT count(*) FROM job_cursors WHERE job = 'optimiser'"
                                ).fetchone()[0]
    assert cursors == 0
    with psycopg.connect(jobs_dsn, autocommit=True) as conn:
        outcome = run_once(conn, item, ignore_schedule=True)  # the next pass plans at once
        assert outcome is not None and outcome.result.records == 1
        assert outcome.end.date() == simulated.date()  # the simulated clock's hour, not now()'s
    with psycopg.connect(db_dsn, autocommit=True) as owner:
        first, calendar, created = owner.execute(
            "SELECT first_night, calendar, created_at FROM schedule_proposals WHERE group_id = %s",
            (gid,)).fetchone()
    assert first == simulated.astimezone(TZ).date()
    assert created == simulated  # shown beside the pushes, on the same clock
    assert loads(Calendar, json.dumps(calendar)).valid_from == first
