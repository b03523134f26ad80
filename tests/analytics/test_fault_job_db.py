"""The fault-detection job against the real database: a simulated district night and morning."""

from __future__ import annotations

import dataclasses
import threading
from datetime import timedelta

import numpy as np
import psycopg
import pytest

from analytics import fault_types as ft
from analytics.fault_job import FaultDetectionJob
from analytics.fault_store import FaultEvent, acknowledge, apply_events
from analytics.fault_types import LAMP_FAILURE
from analytics.metrics import JobMetrics
from analytics.runner import Scheduled, run_once
from tests.analytics.district import Outage, at, district, scenario, simulate

pytestmark = [pytest.mark.integration, pytest.mark.district]


def _faults() -> list[dict[str, object]]:
    inv = district()
    switched = [c for c, s in zip(inv.cabinet_ids, inv.switched.tolist(), strict=True) if s]
    assert switched, "the district needs a switched cabinet"
    return [
        {"fault": "lamp_failure", "device": "ctl-000001:0", "start": "+4h", "end": "+7h"},
        {"fault": "lamp_power_too_high", "device": "ctl-000002:1", "start": "+5h",
         "params": {"factor": 1.5}},
        {"fault": "comm_loss", "device": "ctl-000005", "start": "+3h", "end": "+5h"},
        {"fault": "relay_stuck_on", "device": switched[0], "start": "+12h"},
    ]


@pytest.fixture(scope="module")
def night(stack) -> list[tuple]:  # type: ignore[no-untyped-def]
    """One night and morning (20 simulated hours) of the district, jobs run hourly."""
    name = "t_fault_night"
    with stack.admin() as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name} TEMPLATE luciole_template")
    try:
        yield simulate(stack.endpoints.dsn(name), district(), scenario(_faults()), 20)
    finally:
        with stack.admin() as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _by_kind(rows: list[tuple]) -> dict[str, list[tuple]]:
    out: dict[str, list[tuple]] = {}
    for r in rows:
        out.setdefault(r[0], []).append(r)
    return out


def test_each_injected_fault_is_raised_once_with_a_cause_and_nothing_else(night) -> None:  # type: ignore[no-untyped-def]
    got = _by_kind(night)
    inv = district()
    switched = [c for c, s in zip(inv.cabinet_ids, inv.switched.tolist(), strict=True) if s]
    # a driver drawing 150 % at every level: too high for the level against its own baseline
    # and, at full level, over its lamp type's absolute ceiling (1.25 x rated input power)
    assert sorted(got) == ["absoluteLampPowerTooHigh", "communicationFailure", "lampFailure",
                           "lampPowerTooHigh", "relayFailure"], night
    (lamp,) = got["lampFailure"]
    assert (lamp[2], lamp[3]) == ("ctl-000001", 0)
    assert at(4) <= lamp[4] <= at(4.5)
    assert lamp[6].startswith("luminaire 0 on controller ctl-000001 draws 0.5 W at ")
    assert "expected" in lamp[6] and "no light" in lamp[6]
    # cleared with hysteresis: after three good readings once the lamp works again
    assert at(7) < lamp[5] <= at(7.5)
    (high,) = got["lampPowerTooHigh"]
    assert (high[2], high[3]) == ("ctl-000002", 1) and high[5] is None
    assert "more than its own baseline for that level (expected" in high[6]
    (absolute,) = got["absoluteLampPowerTooHigh"]
    assert (absolute[2], absolute[3]) == ("ctl-000002", 1) and absolute[5] is None
    assert "more than its lamp type may draw at any level (rated" in absolute[6]
    (comm,) = got["communicationFailure"]
    assert comm[2] == "ctl-000005" and at(3) < comm[4] <= at(3.5)
    assert at(5) <= comm[5] <= at(5.25)
    (relay,) = got["relayFailure"]
    assert relay[1] == switched[0] and relay[2] is None
    assert "stays closed by day" in relay[6]


def test_silence_by_day_on_a_switched_cabinet_is_no_fault(night) -> None:  # type: ignore[no-untyped-def]
    # the district's switched controllers all fall silent at dawn (hour 16 on): only the
    # controller that really lost its link was reported, during the night
    assert [r[2] for r in night if r[0] == "communicationFailure"] == ["ctl-000005"]


def test_state_kept_in_the_database_gives_the_same_faults_as_state_kept_in_memory(
        stack, night) -> None:  # type: ignore[no-untyped-def]
    name = "t_fault_night_fresh_jobs"
    with stack.admin() as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name} TEMPLATE luciole_template")
    try:
        again = simulate(stack.endpoints.dsn(name), district(), scenario(_faults()), 20,
                         job_per_pass=True)
    finally:
        with stack.admin() as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    assert [r[:6] for r in again] == [r[:6] for r in night]


def test_one_open_fault_per_cause_and_acknowledgement(db_dsn: str) -> None:
    simulate(db_dsn, district(), scenario([]), 1)
    event = FaultEvent(LAMP_FAILURE, True, at(2).timestamp(), "anderlecht",
                       controller_id="ctl-000001", luminaire_idx=0, cause="test")
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        assert apply_events(conn, [event, event]) == (1, 0)
        assert apply_events(conn, [event]) == (0, 0)
        (fid,) = conn.execute("SELECT id FROM faults").fetchone()
        assert acknowledge(conn, fid, None) and not acknowledge(conn, fid, None)
        cleared = FaultEvent(LAMP_FAILURE, False, at(3).timestamp(), "anderlecht",
                             controller_id="ctl-000001", luminaire_idx=0)
        assert apply_events(conn, [cleared]) == (0, 1)
        assert apply_events(conn, [event]) == (1, 0)  # a new occurrence is a new fault
        assert conn.execute("SELECT count(*) FROM faults").fetchone() == (2,)


def test_a_job_held_by_one_runner_is_skipped_by_another(db_dsn: str) -> None:
    simulate(db_dsn, district(), scenario([]), 1)
    item = Scheduled(FaultDetectionJob(), every_s=0.0, settle_s=0.0)
    with psycopg.connect(db_dsn, autocommit=True) as a, \
            psycopg.connect(db_dsn, autocommit=True) as b:
        a.execute("UPDATE job_cursors SET position = position - interval '1 hour'")
        before = a.execute("SELECT position, passes FROM job_cursors").fetchone()
        with a.transaction():
            a.execute("SELECT 1 FROM job_cursors WHERE job = 'faults' FOR UPDATE")
            done = threading.Event()
            out: list[object] = []

            def other() -> None:
                out.append(run_once(b, item, ignore_schedule=True))
                done.set()

            t = threading.Thread(target=other)
            t.start()
            assert done.wait(10), "the other runner waited instead of skipping"
            t.join()
        assert out == [None]
        assert a.execute("SELECT position, passes FROM job_cursors").fetchone() == before
        metrics = JobMetrics()
        outcome = run_once(b, item, metrics, ignore_schedule=True)
        assert outcome is not None and outcome.end - outcome.start == timedelta(hours=1)
        assert metrics.runs.labels("faults")._value.get() == 1
        assert run_once(b, item, ignore_schedule=True) is None  # caught up


def test_unregistered_and_non_finite_rows_are_ignored_not_fatal(db_dsn: str) -> None:
    simulate(db_dsn, district(), scenario([]), 1)
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        newest = conn.execute("SELECT max(time) FROM luminaire_telemetry").fetchone()[0]
        rows = [(newest + timedelta(minutes=5), 99999, 0, float("nan")),  # unknown controller
                (newest + timedelta(minutes=5), 1, 777, 20.0),  # unknown luminaire
                (newest + timedelta(minutes=5), 1, 0, float("nan"))]  # NaN power
        for t, key, lum, power in rows:
            conn.execute(
                "INSERT INTO luminaire_telemetry VALUES (%s, %s, %s, 254, 4, %s, 0, 230, 0.2,"
                " 0.95, 20, 0, 0, 0, 1, 999)", (t, key, lum, power))
        outcome = run_once(conn, Scheduled(FaultDetectionJob(), 0.0, 0.0), ignore_schedule=True)
        assert outcome is not None and outcome.result.records == 1
        assert conn.execute("SELECT count(*) FROM faults").fetchone() == (0,)
        lag = conn.execute("SELECT max(t.time) - c.position FROM luminaire_telemetry t,"
                           " job_cursors c GROUP BY c.position").fetchone()[0]
        assert lag == timedelta(0)


def test_power_baselines_are_kept_per_luminaire(db_dsn: str) -> None:
    simulate(db_dsn, district(), scenario([]), 4)
    with psycopg.connect(db_dsn) as conn:
        rows = conn.execute("SELECT base_full_w, base_samples FROM detector_luminaire_state"
                            " ORDER BY controller_key, luminaire").fetchall()
    assert len(rows) == 96
    base = np.array([r[0] for r in rows])
    assert (base > 30).all() and (base < 140).all()
    assert all(r[1] >= 24 for r in rows)


def _outages() -> list[dict[str, object]]:
    """Controllers falling silent at several phases of the job's passes, some several times."""
    return [
        {"fault": "comm_loss", "device": "ctl-000005", "start": "+3h07m", "end": "+4h40m"},
        {"fault": "comm_loss", "device": "ctl-000007", "start": "+3h22m", "end": "+5h01m"},
        {"fault": "comm_loss", "device": "ctl-000009", "start": "+2h51m", "end": "+4h13m"},
        {"fault": "comm_loss", "device": "ctl-000009", "start": "+7h02m", "end": "+8h31m"},
        # back for ten minutes, then silent again: one flapping episode, one fault
        {"fault": "comm_loss", "device": "ctl-000011", "start": "+3h", "end": "+4h"},
        {"fault": "comm_loss", "device": "ctl-000011", "start": "+4h10m", "end": "+5h"},
    ]


def test_a_silent_controller_raises_one_fault_per_outage_episode(db_dsn: str) -> None:
    rows = simulate(db_dsn, district(), scenario(_outages()), 11)
    comm = [r for r in rows if r[0] == "communicationFailure"]
    by_ctl: dict[str, list[tuple]] = {}
    for r in comm:
        by_ctl.setdefault(r[2], []).append(r)
    assert sorted(by_ctl) == ["ctl-000005", "ctl-000007", "ctl-000009", "ctl-000011"], comm
    assert [len(by_ctl[c]) for c in sorted(by_ctl)] == [1, 1, 2, 1], comm
    (flapping,) = by_ctl["ctl-000011"]
    assert at(3) < flapping[4] <= at(3.5)
    assert at(5) <= flapping[5] <= at(5.25)  # reopened, cleared when the link is back for good
    assert all(r[5] is not None for r in comm)


def test_a_fault_back_within_its_hold_off_is_reopened_not_raised_anew(db_dsn: str) -> None:
    simulate(db_dsn, district(), scenario([]), 1)

    def lamp(raised: bool, hours: float) -> FaultEvent:
        return FaultEvent(LAMP_FAILURE, raised, at(hours).timestamp(), "anderlecht",
                          controller_id="ctl-000001", luminaire_idx=0, cause="test")

    hold_h = LAMP_FAILURE.reopen_within_s / 3600
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        assert apply_events(conn, [lamp(True, 2), lamp(False, 3)]) == (1, 1)
        assert apply_events(conn, [lamp(True, 3 + 0.9 * hold_h)]) == (0, 0)  # reopened
        rows = conn.execute("SELECT raised_at, cleared_at, reopened FROM faults").fetchall()
        assert rows == [(at(2), None, 1)]
        assert apply_events(conn, [lamp(False, 4)]) == (0, 1)
        assert apply_events(conn, [lamp(True, 4 + 1.1 * hold_h)]) == (1, 0)  # a new fault
        rows = conn.execute("SELECT raised_at, cleared_at, reopened FROM faults"
                            " ORDER BY raised_at").fetchall()
        assert rows == [(at(2), at(4), 1), (at(4 + 1.1 * hold_h), None, 0)]


def test_readings_stored_hours_late_are_examined_in_time_order(db_dsn: str) -> None:
    # ctl-000003's link is down from hour 3 to hour 7; its agent keeps measuring, and its lamp
    # 0 fails at 3h30; the readings reach the database at hour 7, when the job is long past them
    faults = [{"fault": "lamp_failure", "device": "ctl-000003:0", "start": "+3h30m"}]
    metrics = JobMetrics()
    rows = simulate(db_dsn, district(), scenario(faults), 9,
                    outages=(Outage("ctl-000003", 3, 7),), metrics=metrics)
    # 3h05 to 6h (the job's cursor when they were stored), every 5 min, 4 luminaires
    assert metrics.late_records.labels("faults")._value.get() == 36 * 4
    got = _by_kind(rows)
    (lamp,) = got["lampFailure"]
    assert (lamp[2], lamp[3]) == ("ctl-000003", 0)
    assert at(3.5) <= lamp[4] <= at(4), "raised at the time of the readings that show it"
    assert lamp[5] is None
    (comm,) = got["communicationFailure"]  # the link was down: that was seen at the time
    assert comm[2] == "ctl-000003" and at(3) < comm[4] <= at(3.75)
    assert at(6) <= comm[5] <= at(7.1)  # cleared when the readings came back


def test_sensor_readings_stored_hours_late_are_examined_for_stuck_sensors(db_dsn: str) -> None:
    # ctl-000021 is the district's multifunction pole: its noise sensor freezes at 3h30, during
    # an outage of its link from hour 3 to hour 7; the readings reach the database at hour 7
    faults = [{"fault": "stuck_sensor", "device": "ctl-000021:noise", "start": "+3h30m"}]
    metrics = JobMetrics()
    rows = simulate(db_dsn, district(), scenario(faults), 9,
                    outages=(Outage("ctl-000021", 3, 7),), metrics=metrics)
    stuck = [r for r in rows if r[0] == "sensorStuck"]
    assert len(stuck) == 1, rows
    assert stuck[0][2] == "ctl-000021"
    assert at(3.5) <= stuck[0][4] <= at(4.25), "raised at the time of the readings that show it"
    assert metrics.late_records.labels("faults")._value.get() > 36 * 4


def test_a_late_reading_older_than_what_was_examined_does_not_clear_a_newer_fault(
        db_dsn: str) -> None:
    faults = [{"fault": "lamp_failure", "device": "ctl-000004:1", "start": "+2h30m"}]
    simulate(db_dsn, district(), scenario(faults), 6)
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        # stored now: healthy readings dated 4h10-4h12, enough to clear the fault if they were
        # taken as news (copies of the 2h reading, lamp lit), stored after the job examined up
        # to 6h, and the next live reading at 6h05 (the lamp still failed)
        late = [(at(4) + timedelta(minutes=10 + i), at(2), 100000 + i) for i in range(3)]
        for when, like, seq in (*late, (at(6) + timedelta(minutes=5), at(6), 100009)):
            copied = conn.execute(
                "INSERT INTO luminaire_telemetry SELECT %s, t.controller_key, t.luminaire,"
                " t.level, t.status, t.power_w, t.energy_wh, t.voltage_v, t.current_a,"
                " t.power_factor, t.driver_temp_c, t.ambient_lux, t.presence, t.failure,"
                " t.boot_id, t.seq + %s FROM luminaire_telemetry t"
                " JOIN controllers c ON c.key = t.controller_key"
                " WHERE c.id = 'ctl-000004' AND t.luminaire = 1 AND t.time = %s"
                " RETURNING power_w", (when, seq, like)).fetchall()
            assert len(copied) == 1
        item = Scheduled(FaultDetectionJob(silence_s=900.0), 0.0, 0.0, 1800.0)
        metrics = JobMetrics()
        while run_once(conn, item, metrics, ignore_schedule=True) is not None:
            pass
        assert metrics.records.labels("faults")._value.get() == 1  # the live one, at 6h05
        assert metrics.late_records.labels("faults")._value.get() == 0
        lamp = conn.execute("SELECT raised_at, cleared_at FROM faults"
                            " WHERE kind = 'lampFailure'").fetchall()
    assert len(lamp) == 1 and lamp[0][1] is None, lamp


def test_migration_0017_gives_stored_baseline_power_faults_their_talq_names(db_dsn: str) -> None:
    """Faults the baseline power rule stored as currentTooHigh/TooLow read as lampPowerTooHigh
    /TooLow once 0017 ran (the database here is migrated: 0017 is run again on old names)."""
    from pathlib import Path

    import luciole.migrations

    simulate(db_dsn, district(), scenario([]), 1)
    old = [dataclasses.replace(ft.LAMP_POWER_TOO_HIGH, name="currentTooHigh"),
           dataclasses.replace(ft.LAMP_POWER_TOO_LOW, name="currentTooLow")]
    events = [FaultEvent(kind, True, at(2).timestamp(), "anderlecht", controller_id="ctl-000001",
                         luminaire_idx=i, cause="test") for i, kind in enumerate(old)]
    sql = (Path(luciole.migrations.__file__).parent / "0017_lamp_power_names.sql").read_text()
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        assert apply_events(conn, events) == (2, 0)
        conn.execute(sql)
        kinds = conn.execute("SELECT luminaire_idx, kind FROM faults ORDER BY 1").fetchall()
    assert kinds == [(0, "lampPowerTooHigh"), (1, "lampPowerTooLow")]
