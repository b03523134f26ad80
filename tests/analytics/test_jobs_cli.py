"""`luciole jobs --once` catches the fault job up with what is stored, from LUCIOLE_JOBS_DSN."""

from __future__ import annotations

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from luciole.cli import main
from luciole.db_roles import DbService
from tests.analytics.district import district, scenario, simulate
from tests.conftest import RunningStack

pytestmark = pytest.mark.integration


def test_jobs_once_runs_every_pass_then_exits(db_dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    simulate(db_dsn, district(), scenario([]), 1)
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute("UPDATE job_cursors SET position = position - interval '1 hour'")
    monkeypatch.setenv("LUCIOLE_JOBS_DSN", db_dsn)
    monkeypatch.setenv("LUCIOLE_JOBS_SETTLE_S", "0")
    assert main(["jobs", "--once"]) == 0
    with psycopg.connect(db_dsn) as conn:
        lag = conn.execute("SELECT max(t.time) - c.position FROM luminaire_telemetry t,"
                           " job_cursors c WHERE c.job = 'faults' GROUP BY c.position").fetchone()
    assert lag is not None and lag[0].total_seconds() == 0


def test_the_jobs_role_runs_the_fault_job_without_more_privilege(
        db_dsn: str, stack: RunningStack, monkeypatch: pytest.MonkeyPatch) -> None:
    """`luciole jobs` logs in as luciole_jobs: its grants cover cursors, detector state and faults."""
    simulate(db_dsn, district(), scenario([]), 1)
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute("DELETE FROM job_cursors")
        conn.execute("DELETE FROM faults")
    jobs_dsn = stack.endpoints.service_dsn(DbService.JOBS, conninfo_to_dict(db_dsn)["dbname"])
    monkeypatch.setenv("LUCIOLE_JOBS_DSN", jobs_dsn)
    monkeypatch.setenv("LUCIOLE_JOBS_SETTLE_S", "0")
    assert main(["jobs", "--once"]) == 0
    with psycopg.connect(db_dsn) as conn:
        passes = conn.execute("SELECT passes FROM job_cursors WHERE job = 'faults'").fetchone()
        states = conn.execute("SELECT count(*) FROM detector_luminaire_state").fetchone()
    assert passes is not None and passes[0] > 0
    assert states is not None and states[0] > 0


def test_invalid_settings_are_refused_with_a_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LUCIOLE_JOBS_DSN", "postgresql://nowhere")
    monkeypatch.setenv("LUCIOLE_JOBS_FAULTS_EVERY_S", "-1")
    assert main(["jobs", "--once"]) == 2


def test_the_runner_keeps_up_until_stopped(db_dsn: str) -> None:
    import threading
    import time

    from analytics.metrics import JobMetrics
    from analytics.runner import run_forever
    from analytics.settings import JobsSettings

    simulate(db_dsn, district(), scenario([]), 1)
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute("UPDATE job_cursors SET position = position - interval '1 hour'")
    settings = JobsSettings(dsn=db_dsn, settle_s=0, faults_every_s=0.2, metrics_port=0)
    stop, metrics = threading.Event(), JobMetrics()
    runner = threading.Thread(target=run_forever, args=(settings, stop, metrics))
    runner.start()
    try:
        deadline = time.monotonic() + 30
        while metrics.runs.labels("faults")._value.get() < 1:
            assert time.monotonic() < deadline, "the runner did not run the job"
            time.sleep(0.05)
    finally:
        stop.set()
        runner.join(10)
    assert not runner.is_alive()
    assert metrics.lag.labels("faults")._value.get() == 0


class _Poison:
    """A job whose every pass fails inside the database, as a row breaking a CHECK would."""

    name = "poison"

    def newest(self, conn: psycopg.Connection):  # type: ignore[no-untyped-def]
        return conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]

    def oldest(self, conn: psycopg.Connection):  # type: ignore[no-untyped-def]
        return conn.execute("SELECT now() - interval '1 hour'").fetchone()[0]  # type: ignore[index]

    def run_pass(self, conn: psycopg.Connection, start, end):  # type: ignore[no-untyped-def]
        conn.execute("SELECT 1 / 0")
        raise AssertionError("unreachable")


def test_a_failing_job_is_retried_with_backoff_and_the_other_jobs_go_on(db_dsn: str) -> None:
    """A pass that fails on its data (a CHECK, a division by zero, a bug) must not stop the
    runner: it is counted, logged and retried later, and every other job keeps running."""
    import threading
    import time

    from analytics.fault_job import FaultDetectionJob
    from analytics.metrics import JobMetrics
    from analytics.runner import Scheduled, run_forever
    from analytics.settings import JobsSettings

    simulate(db_dsn, district(), scenario([]), 1)
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute("UPDATE job_cursors SET position = position - interval '1 hour'")
    settings = JobsSettings(dsn=db_dsn, settle_s=0, faults_every_s=0.2, metrics_port=0,
                            retry_initial_s=0.05, retry_max_s=0.2)
    jobs = [Scheduled(_Poison(), every_s=0.1, settle_s=0),
            Scheduled(FaultDetectionJob(), every_s=0.2, settle_s=0)]
    stop, metrics = threading.Event(), JobMetrics()
    runner = threading.Thread(target=run_forever, args=(settings, stop, metrics),
                              kwargs={"jobs": jobs})
    runner.start()
    try:
        deadline = time.monotonic() + 30
        while (metrics.runs.labels("faults")._value.get() < 1
               or metrics.failures.labels("poison")._value.get() < 3):
            assert runner.is_alive(), "one job's failure stopped the runner"
            assert time.monotonic() < deadline, "the runner did not go on after a failing pass"
            time.sleep(0.05)
    finally:
        stop.set()
        runner.join(10)
    assert not runner.is_alive()
    with psycopg.connect(db_dsn) as conn:
        position = conn.execute("SELECT passes FROM job_cursors WHERE job = 'poison'").fetchone()
    assert position is not None and position[0] == 0, "a failed pass must not advance its cursor"
