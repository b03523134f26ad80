"""The job runner (`luciole jobs`): each job on its own schedule, each pass once across processes.

A job's row in `job_cursors` is taken FOR UPDATE SKIP LOCKED: while one runner holds it, any
other runner skips that job; the pass's results, the detectors' state and the new cursor commit in
one transaction, so a pass is applied exactly once or not at all.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

import psycopg

from analytics.energy_job import EnergyJob
from analytics.fault_job import FaultDetectionJob, PassResult
from analytics.metrics import JobMetrics
from analytics.optimiser_job import OptimiserJob
from analytics.settings import JobsSettings
from analytics.settlement_job import SettlementJob
from wire.retry import Backoff

log = logging.getLogger(__name__)

_TAKE = """
SELECT position, next_run_at FROM job_cursors WHERE job = %s FOR UPDATE SKIP LOCKED
"""
_CREATE = "INSERT INTO job_cursors (job, position) VALUES (%s, %s) ON CONFLICT DO NOTHING"
_ADVANCE = """
UPDATE job_cursors SET position = %s, next_run_at = %s, passes = passes + 1, updated_at = now()
WHERE job = %s
"""
_RESCHEDULE = "UPDATE job_cursors SET next_run_at = %s WHERE job = %s"


class Job(Protocol):
    """A consumer of the stored records, from its own cursor."""

    name: str

    def newest(self, conn: psycopg.Connection) -> datetime | None: ...

    def oldest(self, conn: psycopg.Connection) -> datetime | None: ...

    def run_pass(self, conn: psycopg.Connection, start: datetime,
                 end: datetime) -> PassResult: ...


@dataclass(frozen=True)
class Scheduled:
    """A job with its period and how much of the stored records a pass may read."""

    job: Job
    every_s: float
    settle_s: float = 60.0
    max_window_s: float = 3600.0


@dataclass(frozen=True)
class PassOutcome:
    job: str
    start: datetime
    end: datetime
    result: PassResult
    lag_s: float
    duration_s: float


def run_once(conn: psycopg.Connection, item: Scheduled, metrics: JobMetrics | None = None, *,
             now: datetime | None = None, ignore_schedule: bool = False) -> PassOutcome | None:
    """Run one pass of a job if it is due and no other runner holds it; None when skipped."""
    job = item.job
    now = now or datetime.now(UTC)
    began = time.perf_counter()
    try:
        with conn.transaction():
            row = conn.execute(_TAKE, (job.name,)).fetchone()
            if row is None:  # held by another runner, or the job's first run
                oldest = job.oldest(conn)
                if oldest is None:
                    return None
                conn.execute(_CREATE, (job.name, oldest - timedelta(microseconds=1)))
                row = conn.execute(_TAKE, (job.name,)).fetchone()
                if row is None:
                    return None
            position, next_run_at = row
            if next_run_at > now and not ignore_schedule:
                return None
            newest = job.newest(conn)
            next_run = now + timedelta(seconds=item.every_s)
            if newest is None:
                conn.execute(_RESCHEDULE, (next_run, job.name))
                return None
            settled = newest - timedelta(seconds=item.settle_s)
            end = min(position + timedelta(seconds=item.max_window_s), settled)
            if end <= position:
                conn.execute(_RESCHEDULE, (next_run, job.name))
                return None
            result = job.run_pass(conn, position, end)
            # a pass cut short by its window is due again at once: waiting a period after each
            # window, a job whose period brings more data than a window never catches up
            conn.execute(_ADVANCE, (end, now if end < settled else next_run, job.name))
    except BaseException:
        forget = getattr(job, "forget", None)
        if forget is not None:
            forget()  # its in-memory state ran ahead of what was rolled back
        if metrics is not None:
            metrics.failures.labels(job.name).inc()
        raise
    duration = time.perf_counter() - began
    lag = (newest - end).total_seconds()
    if metrics is not None:
        metrics.runs.labels(job.name).inc()
        metrics.duration.labels(job.name).observe(duration)
        metrics.records.labels(job.name).inc(result.records)
        metrics.late_records.labels(job.name).inc(result.late)
        metrics.faults_raised.labels(job.name).inc(result.raised)
        metrics.lag.labels(job.name).set(lag)
    return PassOutcome(job.name, position, end, result, lag, duration)


def _clock(settings: JobsSettings) -> Callable[[], datetime] | None:
    """The simulated clock's now (a demo's), else None: the database's."""
    sim = settings.sim_clock
    return None if sim is None else (lambda: sim.now(time.time()))


def scheduled_jobs(settings: JobsSettings) -> list[Scheduled]:
    """The jobs a runner runs, with their settings."""
    return [Scheduled(FaultDetectionJob(settings.silence_s), settings.faults_every_s,
                      settings.settle_s, settings.max_window_s),
            Scheduled(EnergyJob(), settings.energy_every_s, settings.settle_s,
                      settings.energy_max_window_s),
            Scheduled(SettlementJob(), settings.settlement_every_s, 0.0, 40 * 86400.0),
            Scheduled(OptimiserJob(settings.optimiser_nights, clock=_clock(settings)),
                      settings.optimiser_every_s,
                      settle_s=0.0, max_window_s=86_400.0)]


def run_forever(settings: JobsSettings, stop: threading.Event,
                metrics: JobMetrics | None = None, jobs: list[Scheduled] | None = None) -> None:
    """Run every job on its schedule until `stop` is set; reconnect after database errors.

    A pass that fails on anything else (a row breaking a CHECK, a bug in a job) is rolled back,
    counted in `luciole_jobs_failures_total`, logged with its traceback and retried after a
    backoff of its own, while every other job goes on: one job's poison window never stops the
    runner nor the other jobs."""
    metrics = metrics or JobMetrics()
    jobs = jobs if jobs is not None else scheduled_jobs(settings)
    rng = random.Random()
    attempt = 0
    backoff = Backoff(initial_s=settings.retry_initial_s, max_s=settings.retry_max_s)
    failed: dict[str, int] = {}  # job -> consecutive failed passes
    held_until: dict[str, float] = {}  # job -> monotonic time of its next try after a failure
    last_progress = 0.0
    totals = {item.job.name: [0, 0, 0] for item in jobs}  # passes, records, raised
    while not stop.is_set():
        try:
            with psycopg.connect(settings.dsn.get_secret_value(), autocommit=True) as conn:
                attempt = 0
                while not stop.is_set():
                    busy = False
                    for item in jobs:
                        name = item.job.name
                        if held_until.get(name, 0.0) > time.monotonic():
                            continue
                        try:
                            outcome = run_once(conn, item, metrics)
                        except psycopg.OperationalError:
                            raise
                        except Exception:
                            failed[name] = failed.get(name, 0) + 1
                            delay = backoff.delay(failed[name], rng)
                            held_until[name] = time.monotonic() + delay
                            log.exception("job=%s pass failed (%d in a row); rolled back, "
                                          "retrying in %.1f s", name, failed[name], delay)
                            continue
                        failed.pop(name, None)
                        held_until.pop(name, None)
                        if outcome is not None:
                            busy = busy or outcome.end - outcome.start >= timedelta(
                                seconds=item.max_window_s)
                            t = totals[item.job.name]
                            t[0] += 1
                            t[1] += outcome.result.records
                            t[2] += outcome.result.raised
                            log.debug("job=%s window=%s..%s records=%d late=%d raised=%d "
                                      "cleared=%d lag_s=%.0f duration_s=%.3f", outcome.job,
                                      outcome.start, outcome.end, outcome.result.records,
                                      outcome.result.late, outcome.result.raised,
                                      outcome.result.cleared, outcome.lag_s, outcome.duration_s)
                    if time.monotonic() - last_progress >= settings.progress_every_s:
                        last_progress = time.monotonic()
                        for name, (passes, records, raised) in totals.items():
                            lag = metrics.lag.labels(name)._value.get()
                            log.info("job=%s passes=%d records=%d raised=%d lag_s=%.0f",
                                     name, passes, records, raised, lag)
                    if not busy:  # behind: go on at once; else wait for the next due job
                        stop.wait(min(1.0, min(item.every_s for item in jobs)))
        except psycopg.OperationalError as exc:
            for item in jobs:
                metrics.failures.labels(item.job.name).inc()
            attempt += 1
            delay = Backoff(initial_s=settings.retry_initial_s,
                            max_s=settings.retry_max_s).delay(attempt, rng)
            log.warning("database unavailable (%s); retrying in %.1f s", exc, delay)
            stop.wait(delay)
