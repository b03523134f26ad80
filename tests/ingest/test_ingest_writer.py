"""The writer against the real TimescaleDB: binary COPY round trip, exactly once, rejects, state,
and the incremental rollup against a direct SQL sum and a pure-Python oracle."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ingest_helpers import T0_US, luminaire_records, poll_payloads, register_fleet

from ingest import rollup
from ingest.copy_binary import write as copy_write
from ingest.writer import LUMINAIRE_ROWS, Writer, queue_segments
from wire.codec import SENSOR_DTYPE, Quantity, encode_sensor
from wire.topics import Kind

pytestmark = pytest.mark.integration


def test_binary_copy_round_trips_through_postgres(db_dsn: str) -> None:
    rng = np.random.default_rng(1)
    n = 1000
    rec = luminaire_records(n, T0_US + rng.integers(0, 10**10, n), rng.uniform(0, 1e9, n))
    rec["luminaire"] = rng.integers(0, 1024, n)
    rec["level"] = rng.integers(0, 256, n)
    rec["presence"] = rng.integers(0, 65536, n)
    rec["power_w"] = rng.uniform(0, 2000, n)
    boot = rng.integers(-(2**63), 2**63 - 1, n, dtype=np.int64)
    columns = {name: rec[name] for name, _ in LUMINAIRE_ROWS.columns if name in rec.dtype.names}
    columns.update(time=rec["time_us"], controller_key=np.full(n, 42, np.int32), boot_id=boot,
                   seq=np.arange(n, dtype=np.int64))
    with psycopg.connect(db_dsn) as conn, conn.cursor() as cur:
        assert copy_write(cur, LUMINAIRE_ROWS, columns) == n
        rows = cur.execute(
            "SELECT (extract(epoch FROM time) * 1000000)::bigint, luminaire, level, presence, power_w,"
            " energy_wh, boot_id, seq FROM luminaire_telemetry ORDER BY seq").fetchall()
    got = np.array(rows, dtype=object)
    assert got[:, 0].astype(np.int64).tolist() == rec["time_us"].tolist()
    assert got[:, 1].astype(int).tolist() == rec["luminaire"].tolist()
    assert got[:, 2].astype(int).tolist() == rec["level"].tolist()
    assert got[:, 3].astype(int).tolist() == rec["presence"].tolist()
    assert np.array_equal(got[:, 4].astype(np.float32), rec["power_w"])
    assert np.array_equal(got[:, 5].astype(np.float64), rec["energy_wh"])
    assert got[:, 6].astype(np.int64).tolist() == boot.tolist()


def test_a_batch_written_twice_is_stored_once(db_dsn: str) -> None:
    fleet = register_fleet(db_dsn, 3)
    batch = poll_payloads(fleet, polls=4, luminaires=5)
    writer = Writer(db_dsn)
    first = writer.write(batch + batch[:2])  # a replay inside the batch too
    second = writer.write(batch[::-1])
    writer.refresh_rollups()  # the fold brings the live state up to date
    writer.close()
    assert (first.new_messages, first.duplicates, first.luminaire_records) == (12, 2, 60)
    assert (second.new_messages, second.duplicates, second.luminaire_records) == (0, 12, 0)
    with psycopg.connect(db_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM luminaire_telemetry").fetchone()[0] == 60
        assert conn.execute("SELECT count(*) FROM message_ledger").fetchone()[0] == 12
        state = conn.execute("SELECT count(*), min(time), max(energy_wh) FROM luminaire_state").fetchone()
        assert state[0] == 15 and state[2] == 1030.0
        assert state[1] == datetime.fromtimestamp((T0_US + 3 * 60_000_000) / 1e6, UTC)
        offsets = conn.execute("SELECT min(max_seq), max(max_seq) FROM ingest_offsets").fetchone()
        assert offsets == (19, 19)


def _direct(conn: psycopg.Connection) -> dict:
    return {(k, lum, b): (e, n) for k, lum, b, e, n in conn.execute(rollup.DIRECT_SQL)}


def _rolled(conn: psycopg.Connection) -> dict:
    return {(k, lum, b): (e, n) for k, lum, b, e, n in conn.execute(
        "SELECT controller_key, luminaire, bucket, energy_wh, samples FROM energy_15min")}


def _assert_rollups_equal_direct_sum(conn: psycopg.Connection) -> None:
    direct, rolled = _direct(conn), _rolled(conn)
    assert rolled.keys() == direct.keys()
    for key, (energy, samples) in direct.items():
        assert rolled[key][1] == samples, key
        assert rolled[key][0] == pytest.approx(energy, rel=1e-9, abs=1e-6), key
    supply = dict(conn.execute("SELECT bucket, energy_wh FROM energy_15min_supply").fetchall())
    expected = {}
    for (_, _, bucket), (energy, _) in direct.items():
        expected[bucket] = expected.get(bucket, 0.0) + energy
    assert supply.keys() == expected.keys()
    for bucket, energy in expected.items():
        assert supply[bucket] == pytest.approx(energy, rel=1e-9, abs=1e-6)


def test_rollups_equal_a_direct_sum_after_out_of_order_and_late_data(db_dsn: str) -> None:
    fleet = register_fleet(db_dsn, 4)
    rng = np.random.default_rng(3)
    batch = poll_payloads(fleet, polls=40, luminaires=6, interval_us=47_000_000, reset_at=23)
    order = rng.permutation(len(batch))
    head, late = order[: len(order) * 3 // 4], order[len(order) * 3 // 4 :]
    writer = Writer(db_dsn)
    for chunk in np.array_split(head, 7):  # out of order inside and across batches
        writer.write([batch[i] for i in chunk])
        if rng.random() < 0.6:
            writer.refresh_rollups()
    writer.refresh_rollups()
    for chunk in np.array_split(late, 3):  # late data, after its successors were rolled up
        writer.write([batch[i] for i in chunk])
        writer.refresh_rollups()
    writer.close()
    with psycopg.connect(db_dsn) as conn:
        assert rollup.pending(conn) == 0
        assert conn.execute("SELECT count(*) FROM luminaire_telemetry").fetchone()[0] == 4 * 40 * 6
        _assert_rollups_equal_direct_sum(conn)


arrivals = st.lists(
    st.tuples(
        st.integers(0, 2),  # luminaire
        st.integers(0, 5400),  # time, s from T0
        st.one_of(st.floats(0, 1e5, allow_nan=False), st.just(0.0)),  # counter (jumps = resets)
        st.integers(0, 3),  # arrival batch
        st.booleans(),  # roll up after this batch
    ),
    min_size=1, max_size=40, unique_by=lambda r: (r[0], r[1]),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(arrivals)
def test_incremental_rollup_matches_the_reference_for_any_arrival(db_dsn: str, rows: list) -> None:
    with psycopg.connect(db_dsn) as conn:
        conn.execute("TRUNCATE luminaire_telemetry, ingest_segments, energy_cursor, energy_15min,"
                     " luminaire_state")
        conn.commit()
        for batch_no in range(4):
            part = [r for r in rows if r[3] == batch_no]
            if part:
                records = luminaire_records(len(part), 0)
                records["luminaire"] = [r[0] for r in part]
                records["time_us"] = [T0_US + r[1] * 1_000_000 for r in part]
                records["energy_wh"] = [r[2] for r in part]
                seq = np.arange(len(part)) + 1000 * batch_no
                cols = {n: records[n] for n, _ in LUMINAIRE_ROWS.columns if n in records.dtype.names}
                cols.update(time=records["time_us"], controller_key=np.ones(len(part), np.int32),
                            boot_id=np.zeros(len(part), np.int64), seq=seq)
                with conn.cursor() as cur:
                    copy_write(cur, LUMINAIRE_ROWS, cols)
                    queue_segments(cur, np.ones(len(part), np.int32), records, seq)
                conn.commit()
            if any(r[4] for r in part) or batch_no == 3:
                rollup.refresh(conn)
        seqs = {}
        for b in range(4):
            part = [r for r in rows if r[3] == b]
            for i, r in enumerate(part):
                seqs[(r[0], r[1])] = 1000 * b + i
        expected = rollup.reference_buckets(
            (r[0], T0_US // 1_000_000 + r[1], seqs[(r[0], r[1])], float(np.float64(r[2]))) for r in rows)
        got = {(lum, int(b.timestamp())): (e, n) for _, lum, b, e, n in
               conn.execute("SELECT controller_key, luminaire, bucket, energy_wh, samples FROM energy_15min")}
    assert got.keys() == expected.keys()
    for key, (energy, samples) in expected.items():
        assert got[key][1] == samples
        assert got[key][0] == pytest.approx(energy, rel=1e-9, abs=1e-6)


# --- findings of the hostile-controller review, against the real database --------------------


def _stored_and_rejects(dsn: str) -> tuple[int, list[tuple[str, str, bytes]]]:
    with psycopg.connect(dsn) as conn:
        stored = conn.execute("SELECT count(*) FROM luminaire_telemetry").fetchone()[0]
        rejects = conn.execute("SELECT topic, reason, payload FROM ingest_rejects").fetchall()
    return stored, [(t, r, bytes(p)) for t, r, p in rejects]


def test_nul_in_an_event_detail_is_dead_lettered_and_the_rest_of_the_batch_stored(
        db_dsn: str) -> None:
    fleet = register_fleet(db_dsn, 2)
    controller = next(iter(fleet.keys))
    poison = (b'{"v":1,"id":"e1","controller":"%s","boot_id":1,"seq":1,"kind":"boot",'
              b'"severity":"info","time":"2026-01-01T00:00:00Z","detail":{"note":"a\\u0000b"}}'
              % controller.encode())
    valid = poll_payloads(fleet, polls=3, luminaires=4)
    writer = Writer(db_dsn)
    try:
        writer.write([valid[0], (fleet.topic(controller, Kind.EVENT), poison), *valid[1:]],
                     now_us=T0_US)
    finally:
        writer.close()
    stored, rejects = _stored_and_rejects(db_dsn)
    assert stored == 3 * 2 * 4
    assert rejects == [(fleet.topic(controller, Kind.EVENT), "bad_event", poison)]


def test_a_sensor_index_above_32767_is_dead_lettered_not_stored_negative(db_dsn: str) -> None:
    fleet = register_fleet(db_dsn, 1)
    controller = next(iter(fleet.keys))
    records = np.zeros(2, dtype=SENSOR_DTYPE)
    records["time_us"] = T0_US
    records["sensor"] = [32767, 40000]
    records["quantity"] = Quantity.NOISE_DBA
    records["value"] = 55.0
    payload = encode_sensor(3, 0, records)
    writer = Writer(db_dsn)
    try:
        writer.write([(fleet.topic(controller), payload)], now_us=T0_US)
    finally:
        writer.close()
    with psycopg.connect(db_dsn) as conn:
        sensors = [r[0] for r in conn.execute("SELECT sensor FROM sensor_readings")]
        rejects = conn.execute("SELECT reason, record_index FROM ingest_rejects"
                               " ORDER BY record_index").fetchall()
    # 32767 fits the column but is no channel of the contract (0..63): dead-lettered too
    assert sensors == []
    assert rejects == [("undeclared:sensor", 0), ("out_of_range:sensor", 1)]


@pytest.mark.parametrize("receipts", [True, False])
def test_receipts_are_built_only_when_asked(db_dsn: str, receipts: bool) -> None:
    """`LUCIOLE_INGEST_RECEIPTS=false` (to measure their cost) stores the same and confirms nothing;
    by default each controller of the batch gets one receipt."""
    fleet = register_fleet(db_dsn, 3)
    writer = Writer(db_dsn, receipts=receipts)
    batch = poll_payloads(fleet, polls=3, luminaires=2)
    result = writer.write(batch[:6])
    dead = writer.dead_letter(batch[6], "internal_error")  # one the database refused, say
    writer.close()
    assert result.luminaire_records == 12 and dead.rejects
    assert len(result.receipts) == (3 if receipts else 0)
    assert len(dead.receipts) == (1 if receipts else 0)
