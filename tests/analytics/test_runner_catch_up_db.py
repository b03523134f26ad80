"""A job behind its data catches up pass after pass, against the real database: a pass cut short
by its window is due again at once, a pass that reached the newest data waits its period."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from analytics.fault_job import PassResult
from analytics.runner import Scheduled, run_once

pytestmark = pytest.mark.integration

NEWEST = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)


class _Behind:
    """A job ten hours behind its data (a backlog stored late, or a demo's clock running at
    1440x, where a 5 s period brings two hours of data to a job reading one hour a pass)."""

    name = "behind"

    def __init__(self) -> None:
        self.windows: list[tuple[datetime, datetime]] = []

    def newest(self, conn: psycopg.Connection) -> datetime:
        return NEWEST

    def oldest(self, conn: psycopg.Connection) -> datetime:
        return NEWEST - timedelta(hours=10)

    def run_pass(self, conn: psycopg.Connection, start: datetime, end: datetime) -> PassResult:
        self.windows.append((start, end))
        return PassResult(0, 0, 0)


def test_a_pass_cut_short_by_its_window_is_due_again_at_once(db_dsn: str) -> None:
    job = _Behind()
    item = Scheduled(job, every_s=3600.0, settle_s=0.0, max_window_s=3600.0)
    now = datetime.now(UTC) + timedelta(minutes=1)  # past the new cursor's first due time
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        outcomes = [run_once(conn, item, now=now + timedelta(seconds=i)) for i in range(13)]
        due = conn.execute("SELECT next_run_at FROM job_cursors WHERE job = 'behind'").fetchone()
    # ten hours (and the new cursor's microsecond before them) in passes one after the other,
    # then nothing due until the period has passed
    assert [o is not None for o in outcomes] == [True] * 11 + [False] * 2, job.windows
    assert job.windows[-1][1] == NEWEST
    assert due is not None and due[0] == now + timedelta(seconds=10 + 3600)
