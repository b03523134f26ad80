"""The migrated schema on the real TimescaleDB: hypertables, time_bucket, migration ledger."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from luciole.migrate import MigrationError, available, migrate

pytestmark = pytest.mark.integration


def test_hypertables_exist(db_dsn: str) -> None:
    with psycopg.connect(db_dsn) as conn:
        rows = conn.execute(
            "SELECT hypertable_name FROM timescaledb_information.hypertables ORDER BY 1"
        ).fetchall()
    assert [r[0] for r in rows] == ["energy_interval", "events", "luminaire_telemetry",
                                    "sensor_readings"]


def test_time_bucket_sums_inserted_rows(db_dsn: str) -> None:
    start = datetime(2026, 1, 15, 17, 0, tzinfo=UTC)
    rows = []
    expected: dict[datetime, float] = {}
    for minute in range(0, 120):  # two hours of one luminaire, one reading a minute, across chunks
        t = start + timedelta(minutes=minute)
        power = 20.0 + (minute % 7)
        rows.append((t, 1, 0, 200, 0, power, minute * 1.0, 230.0, 0.1, 0.95, 40.0, 0.0, 0, 0, 1, minute))
        bucket = t.replace(minute=t.minute - t.minute % 15)
        expected[bucket] = expected.get(bucket, 0.0) + power
    with psycopg.connect(db_dsn) as conn:
        with conn.cursor().copy(
            "COPY luminaire_telemetry (time, controller_key, luminaire, level, status, power_w, energy_wh,"
            " voltage_v, current_a, power_factor, driver_temp_c, ambient_lux, presence, failure,"
            " boot_id, seq) FROM STDIN"
        ) as copy:
            for row in rows:
                copy.write_row(row)
        got = conn.execute(
            "SELECT time_bucket('15 minutes', time) AS b, sum(power_w), count(*)"
            " FROM luminaire_telemetry GROUP BY b ORDER BY b"
        ).fetchall()
    assert len(got) == 8
    assert {b: s for b, s, _ in got} == pytest.approx(expected)
    assert all(n == 15 for _, _, n in got)


def test_migrate_again_applies_nothing(db_dsn: str) -> None:
    assert migrate(db_dsn) == []
    with psycopg.connect(db_dsn) as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY 1")]
    assert versions == [m.version for m in available()]


def test_a_changed_migration_is_refused(db_dsn: str) -> None:
    with psycopg.connect(db_dsn) as conn:
        conn.execute("UPDATE schema_migrations SET checksum = 'edited' WHERE version = 1")
    with pytest.raises(MigrationError, match="changed after it was applied"):
        migrate(db_dsn)


def test_constraints_refuse_bad_rows(db_dsn: str) -> None:
    with psycopg.connect(db_dsn) as conn:
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("INSERT INTO tenants (id, name) VALUES ('bad/id', 'x')")
        conn.rollback()
        conn.execute("INSERT INTO tenants (id, name) VALUES ('brussels', 'Brussels')")
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("INSERT INTO supply_points (ean, tenant_id, name) VALUES ('123', 'brussels', 'x')")
