"""The energy job's search for late readings (messages received since its watermark whose readings
lie at or before its cursor), against the real database: what it finds, case by case, and that
its work grows with the readings it looks at, not with their product by the messages."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from analytics.energy_job import _LATE, EnergyJob
from wire.records import RecordType

pytestmark = pytest.mark.integration

T0 = datetime(2026, 1, 10, 16, 0, tzinfo=UTC)
LUMINAIRES = 4
LOOKBACK = timedelta(hours=36)
KIND = int(RecordType.LUMINAIRE)


def _messages(conn: psycopg.Connection, controller: int, boot: int, minutes: range,
              received: datetime, seq0: int = 0) -> None:
    """One message a minute from T0 + minute, LUMINAIRES records each (seq in the order taken),
    with its ledger row received at `received`."""
    for m in minutes:
        first = seq0 + m * LUMINAIRES
        at = T0 + timedelta(minutes=m)
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO luminaire_telemetry (time, controller_key, luminaire, level, status,"
                " power_w, energy_wh, voltage_v, current_a, power_factor, driver_temp_c,"
                " ambient_lux, presence, failure, boot_id, seq) VALUES"
                " (%s, %s, %s, 254, 0, 50, 0, 230, 0.2, 0.95, 40, 0, 0, 0, %s, %s)",
                [(at, controller, k, boot, first + k) for k in range(LUMINAIRES)])
        conn.execute(
            "INSERT INTO message_ledger (controller_key, boot_id, first_seq, record_count, kind,"
            " received_at) VALUES (%s, %s, %s, %s, %s, %s)",
            (controller, boot, first, LUMINAIRES, KIND, received))


def _late(conn: psycopg.Connection, start: datetime, watermark: datetime) -> dict[int, datetime]:
    conn.execute("INSERT INTO energy_watermark (job, received_at) VALUES ('energy', %s)"
                 " ON CONFLICT (job) DO UPDATE SET received_at = excluded.received_at",
                 (watermark,))
    late, _ = EnergyJob(late_margin_s=0)._late(conn, start, LOOKBACK)
    return late


def test_late_readings_are_found_per_controller_from_their_earliest_reading(db_dsn: str) -> None:
    """Controller 1: an hour received long ago, then its next hour now (nothing late: all after
    the cursor). Controller 2: its first hour received now, the cursor half-way through it (late
    from its first reading). Controller 3: an hour and a half long ago but for one message, which
    comes now (late from that message's reading). Controller 4: a reboot, the new boot's readings received
    now before the cursor (late from the new boot's first reading)."""
    long_ago, watermark, now = (datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 9, tzinfo=UTC),
                                datetime(2026, 1, 10, tzinfo=UTC))
    start = T0 + timedelta(minutes=90)
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        _messages(conn, 1, 7, range(0, 91), long_ago)
        _messages(conn, 1, 7, range(91, 150), now)
        _messages(conn, 2, 7, range(30, 120), now)
        _messages(conn, 3, 7, range(0, 91), long_ago)
        conn.execute("UPDATE message_ledger SET received_at = %s WHERE controller_key = 3"
                     " AND first_seq = %s", (now, 50 * LUMINAIRES))
        _messages(conn, 4, 7, range(0, 60), long_ago)
        _messages(conn, 4, 8, range(70, 100), now, seq0=-70 * LUMINAIRES)  # seq from 0 again
        assert _late(conn, start, watermark) == {
            2: T0 + timedelta(minutes=30),
            3: T0 + timedelta(minutes=50),
            4: T0 + timedelta(minutes=70),
        }


def _join_filter_removed(plan: dict) -> int:
    """Rows a plan's joins compared and threw away, over every node."""
    removed = int(plan.get("Rows Removed by Join Filter", 0)) * int(plan.get("Actual Loops", 1))
    return removed + sum(_join_filter_removed(p) for p in plan.get("Plans", []))


def test_finding_late_readings_compares_each_reading_with_one_range_not_every_message(
        db_dsn: str) -> None:
    """Ten controllers, twelve simulated hours of a message a minute each, all received since the
    watermark (a demo at 60x receives that much in the pass's five-minute margin): each reading is
    compared with its controller boot's one range of received sequence numbers. A join per
    message compared each of a controller's readings with each of its messages, 720 x 2,880 per
    controller here; the demo's energy pass took minutes and fell further behind each time."""
    now = datetime(2026, 1, 10, tzinfo=UTC)
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        for controller in range(1, 11):
            _messages(conn, controller, 7, range(0, 720), now)
        conn.execute("ANALYZE luminaire_telemetry")
        conn.execute("ANALYZE message_ledger")
        readings = conn.execute("SELECT count(*) FROM luminaire_telemetry").fetchone()[0]  # type: ignore[index]
        start = T0 + timedelta(hours=11)
        row = conn.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + _LATE, {
            "since": now - timedelta(hours=1), "kind": KIND, "start": start,
            "lookback": LOOKBACK}).fetchone()
        assert row is not None
        plan = row[0][0]["Plan"]
        assert _join_filter_removed(plan) <= readings, json.dumps(plan, indent=1)[:4000]
        late = _late(conn, start, now - timedelta(hours=1))
        assert late == {c: T0 for c in range(1, 11)}
