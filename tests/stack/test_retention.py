"""Retention on the real database: data aged past its period goes, data within it stays, and
storage stays bounded as old data keeps coming; only the jobs role runs it, within floors."""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from luciole import cli
from luciole.db_roles import DbService
from luciole.retention import RetentionSettings, run_retention
from tests.conftest import RunningStack
from tests.ingest.ingest_helpers import register_fleet, scalar

pytestmark = pytest.mark.integration

SETTINGS = RetentionSettings(telemetry_days=400, sensor_days=400, events_days=400,
                             energy_days=400, ledger_days=30, rejects_days=30, rejects_max_mib=1)
REJECT_BYTES = 100 * 1024


def _jobs_dsn(stack: RunningStack, owner_dsn: str) -> str:
    return stack.endpoints.service_dsn(DbService.JOBS, conninfo_to_dict(owner_dsn)["dbname"])


def _age(conn: psycopg.Connection, key: int, days: range) -> None:
    """One reading, sensor value, event, energy bucket and ledger row per day `days` ago, and
    a 100 KiB dead letter per day."""
    for d in days:
        at = f"now() - interval '{d} days'"
        conn.execute(f"INSERT INTO luminaire_telemetry VALUES ({at}, %s, 0, 200, 0, 40, 1000, 230,"
                     " 0.18, 0.95, 45, 3, 0, 0, 7, %s)", (key, d))
        conn.execute(f"INSERT INTO sensor_readings VALUES ({at}, %s, 0, 1, 21.5, 7, %s)", (key, d))
        conn.execute(f"INSERT INTO events (time, controller_key, event_id, kind, severity, boot_id,"
                     f" seq) VALUES ({at}, %s, %s, 'boot', 'info', 7, %s)", (key, f"e{d}", d))
        conn.execute(f"INSERT INTO energy_15min (bucket, controller_key, luminaire, energy_wh)"
                     f" VALUES (time_bucket('15 minutes', {at}), %s, 0, 10)"
                     " ON CONFLICT DO NOTHING", (key,))
        conn.execute(f"INSERT INTO message_ledger VALUES (%s, 7, %s, 1, 1, {at})"
                     " ON CONFLICT DO NOTHING", (key, d))
        conn.execute(f"INSERT INTO ingest_rejects (received_at, topic, reason, payload)"
                     f" VALUES ({at}, 't', 'bad', %s)", (bytes(REJECT_BYTES),))


def _footprint(dsn: str) -> dict[str, object]:
    with psycopg.connect(dsn) as conn:
        return dict(zip(
            ["telemetry_chunks", "oldest_telemetry_days", "oldest_event_days", "oldest_energy_days",
             "oldest_ledger_days", "reject_bytes", "oldest_reject_days", "telemetry_bytes"],
            conn.execute("""
                SELECT (SELECT count(*) FROM show_chunks('luminaire_telemetry')),
                       (SELECT extract(day FROM now() - min(time)) FROM luminaire_telemetry),
                       (SELECT extract(day FROM now() - min(time)) FROM events),
                       (SELECT extract(day FROM now() - min(bucket)) FROM energy_15min),
                       (SELECT extract(day FROM now() - min(received_at)) FROM message_ledger),
                       (SELECT coalesce(sum(octet_length(payload)), 0) FROM ingest_rejects),
                       (SELECT extract(day FROM now() - min(received_at)) FROM ingest_rejects),
                       hypertable_size('luminaire_telemetry')
            """).fetchone(), strict=True))


def test_data_past_its_period_goes_and_storage_stays_bounded(
        stack: RunningStack, db_dsn: str) -> None:
    key = next(iter(register_fleet(db_dsn, 1).keys.values()))
    jobs = _jobs_dsn(stack, db_dsn)
    footprints = []
    for rounds in range(3):
        with psycopg.connect(db_dsn) as conn:
            # a year and more of data, then only old data keeps arriving (late replays)
            _age(conn, key, range(0, 700, 25) if rounds == 0 else range(425 + rounds, 700, 25))
        before = _footprint(db_dsn)
        removed = run_retention(jobs, SETTINGS)
        after = _footprint(db_dsn)
        assert removed["luminaire_telemetry chunks"] > 0
        assert before["oldest_telemetry_days"] >= 600 > 400 >= after["oldest_telemetry_days"]
        assert after["oldest_event_days"] <= 400 + 7  # events chunks span 7 days
        assert after["oldest_energy_days"] < 400
        assert after["oldest_ledger_days"] < 30
        assert after["oldest_reject_days"] < 30
        assert after["reject_bytes"] <= 1 << 20
        footprints.append(after)
    # within the periods everything stays: a reading every 25 days from 0 to 400 days ago, each
    # in a chunk of its own; what arrives past its period does not stay: storage is bounded
    assert [f["telemetry_chunks"] for f in footprints] == [17, 17, 17]
    assert footprints[0] == footprints[1] == footprints[2]
    assert scalar(db_dsn, "SELECT count(*) FROM message_ledger") == 2  # 0 and 25 days: exact


def test_the_command_line_runs_it_as_the_jobs_role(
        stack: RunningStack, db_dsn: str, capsys: pytest.CaptureFixture[str]) -> None:
    key = next(iter(register_fleet(db_dsn, 1).keys.values()))
    with psycopg.connect(db_dsn) as conn:
        _age(conn, key, range(500, 520, 5))
    assert cli.main(["db", "retention", "--dsn", _jobs_dsn(stack, db_dsn)]) == 0
    assert "luminaire_telemetry chunks: 4" in capsys.readouterr().out
    assert scalar(db_dsn, "SELECT count(*) FROM luminaire_telemetry") == 0


@pytest.mark.parametrize("arguments", [
    ("30 days", "400 days", "400 days", "400 days", "30 days", "30 days", 1 << 20),
    ("400 days", "400 days", "400 days", "400 days", "7 days", "30 days", 1 << 20),
    ("400 days", "400 days", "400 days", "400 days", "30 days", "30 days", 0),
])
def test_periods_below_the_floors_are_refused(
        stack: RunningStack, db_dsn: str, arguments: tuple[object, ...]) -> None:
    with psycopg.connect(_jobs_dsn(stack, db_dsn)) as conn:
        with pytest.raises(psycopg.errors.RaiseException):
            conn.execute("SELECT * FROM luciole_retention(%s::interval, %s::interval, %s::interval,"
                         " %s::interval, %s::interval, %s::interval, %s)", arguments)


def test_settings_keep_the_ledger_longer_than_a_duplicate_can_arrive() -> None:
    with pytest.raises(ValueError, match="duplicate_window_days"):
        RetentionSettings(ledger_days=14, duplicate_window_days=14)
    with pytest.raises(ValueError):
        RetentionSettings(telemetry_days=90)
    assert RetentionSettings().telemetry_days * timedelta(days=1) >= timedelta(days=395)


def test_rejects_are_capped_by_size_newest_kept(stack: RunningStack, db_dsn: str) -> None:
    with psycopg.connect(db_dsn) as conn:
        for i in range(25):  # 2.5 MiB of fresh dead letters, one a minute
            conn.execute("INSERT INTO ingest_rejects (received_at, topic, reason, payload) VALUES"
                         " (now() - %s * interval '1 minute', %s, 'bad', %s)",
                         (25 - i, f"t{i}", bytes(REJECT_BYTES)))
    removed = run_retention(_jobs_dsn(stack, db_dsn), SETTINGS)
    assert removed["ingest_rejects rows"] == 15
    with psycopg.connect(db_dsn) as conn:
        kept = [r[0] for r in conn.execute(
            "SELECT topic FROM ingest_rejects ORDER BY received_at").fetchall()]
    assert kept == [f"t{i}" for i in range(15, 25)]  # 10 x 100 KiB <= 1 MiB, the newest
