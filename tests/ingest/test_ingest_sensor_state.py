"""The sensor inventory (sensor_state) against the real TimescaleDB, through the writer: it follows
the newest reading, a late reading does not overwrite a newer one, a redelivered batch changes
nothing, the migration backfills it from stored readings, and hostile sensor traffic is
dead-lettered with a reason while the rest is stored."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import psycopg
import pytest
from ingest_helpers import T0_US, Fleet, register_fleet

from ingest import sensor_state
from ingest.writer import Writer
from luciole.migrate import migrate
from wire.codec import MAX_RECORDS_PER_MESSAGE, SENSOR_DTYPE, Quantity, encode_sensor

pytestmark = pytest.mark.integration

MINUTE_US = 60_000_000
NOW_US = T0_US + 86_400_000_000


def _box(minute: int, noise: float, no2: float, sensor: int = 32) -> np.ndarray:
    """A sensor box's reading `minute` minutes after T0: noise and NO2."""
    records = np.zeros(2, dtype=SENSOR_DTYPE)
    records["time_us"] = T0_US + minute * MINUTE_US
    records["sensor"] = sensor
    records["quantity"] = [Quantity.NOISE_DBA, Quantity.NO2_UGM3]
    records["value"] = [noise, no2]
    return records


def _message(fleet: Fleet, controller: str, seq: int, records: np.ndarray,
             boot_id: int = 9) -> tuple[str, bytes]:
    return fleet.topic(controller), encode_sensor(boot_id, seq, records)


def _write(dsn: str, batch: list[tuple[str, bytes]]) -> None:
    writer = Writer(dsn)
    try:
        writer.write(batch, now_us=NOW_US)
    finally:
        writer.close()


def _state(dsn: str) -> dict[tuple[int, int, int], tuple[int, int, int, int, float]]:
    """{(controller key, sensor, quantity): (first time µs, time µs, boot id, seq, value)}."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT controller_key, sensor, quantity, (extract(epoch FROM first_time) * 1e6)::bigint,"
            " (extract(epoch FROM time) * 1e6)::bigint, boot_id, seq, value::float8"
            " FROM sensor_state").fetchall()
    return {tuple(r[:3]): tuple(r[3:]) for r in rows}  # type: ignore[misc]


def _expected_from_readings(dsn: str) -> dict[tuple[int, int, int], tuple[int, int, int, int, float]]:
    """The inventory as the readings define it: per series the greatest (time, boot, seq) and the
    least time (an oracle in Python over every stored reading)."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT controller_key, sensor, quantity, (extract(epoch FROM time) * 1e6)::bigint,"
            " boot_id, seq, value::float8 FROM sensor_readings").fetchall()
    out: dict[tuple[int, int, int], tuple[int, int, int, int, float]] = {}
    for c, s, q, t, b, n, v in rows:
        seen = out.get((c, s, q))
        first = t if seen is None else min(seen[0], t)
        out[(c, s, q)] = (first, t, b, n, v) if seen is None or (t, b, n) > seen[1:4] else (
            first, *seen[1:])
    return out


def test_the_inventory_follows_the_newest_reading(db_dsn: str) -> None:
    fleet = register_fleet(db_dsn, 2)
    c0, c1 = fleet.keys
    _write(db_dsn, [_message(fleet, c0, 0, _box(0, 50.0, 20.0)),
                    _message(fleet, c0, 2, _box(1, 51.0, 21.0)),  # two readings in one batch
                    _message(fleet, c1, 0, _box(0, 70.0, 40.0))])
    _write(db_dsn, [_message(fleet, c0, 4, _box(5, 55.5, 25.0))])
    key0, key1 = fleet.keys[c0], fleet.keys[c1]
    noise, no2 = int(Quantity.NOISE_DBA), int(Quantity.NO2_UGM3)
    assert _state(db_dsn) == {
        (key0, 32, noise): (T0_US, T0_US + 5 * MINUTE_US, 9, 4, 55.5),
        (key0, 32, no2): (T0_US, T0_US + 5 * MINUTE_US, 9, 5, 25.0),
        (key1, 32, noise): (T0_US, T0_US, 9, 0, 70.0),
        (key1, 32, no2): (T0_US, T0_US, 9, 1, 40.0),
    }
    assert _state(db_dsn) == _expected_from_readings(db_dsn)


def test_a_late_reading_does_not_overwrite_a_newer_one(db_dsn: str) -> None:
    fleet = register_fleet(db_dsn, 1)
    [c0] = fleet.keys
    key, noise = fleet.keys[c0], int(Quantity.NOISE_DBA)
    _write(db_dsn, [_message(fleet, c0, 10, _box(30, 60.0, 30.0))])
    # an outbox drained after an outage: older readings, new messages, a new boot id too
    _write(db_dsn, [_message(fleet, c0, 0, _box(10, 40.0, 10.0)),
                    _message(fleet, c0, 0, _box(20, 45.0, 15.0), boot_id=3)])
    state = _state(db_dsn)
    assert state[(key, 32, noise)] == (T0_US + 10 * MINUTE_US, T0_US + 30 * MINUTE_US, 9, 10, 60.0)
    assert state == _expected_from_readings(db_dsn)


def test_a_redelivered_batch_changes_nothing(db_dsn: str) -> None:
    fleet = register_fleet(db_dsn, 2)
    c0, c1 = fleet.keys
    first = [_message(fleet, c0, 0, _box(0, 50.0, 20.0)), _message(fleet, c1, 0, _box(1, 52.0, 22.0))]
    newer = [_message(fleet, c0, 2, _box(3, 53.0, 23.0))]
    _write(db_dsn, first)
    _write(db_dsn, newer)
    before = _state(db_dsn)
    _write(db_dsn, first[::-1] + newer)  # the broker redelivers both batches, reordered
    assert _state(db_dsn) == before
    # the merge itself is idempotent, even without the ledger in front of it
    columns = {"controller": np.array([fleet.keys[c0]] * 2, np.int32),
               "sensor": np.array([32, 32], np.uint16),
               "quantity": np.array([Quantity.NOISE_DBA, Quantity.NO2_UGM3], np.uint16),
               "time_us": np.array([T0_US] * 2, np.int64), "boot_id": np.array([9, 9], np.int64),
               "seq": np.array([0, 1], np.int64), "value": np.array([50.0, 20.0], np.float32)}
    with psycopg.connect(db_dsn) as conn, conn.cursor() as cur:
        cur.execute(sensor_state.TEMP_TABLE)
        assert sensor_state.merge(cur, *columns.values()) == 2
    assert _state(db_dsn) == before


def test_the_migration_backfills_the_inventory_from_stored_readings(db_dsn: str) -> None:
    fleet = register_fleet(db_dsn, 2)
    c0, c1 = fleet.keys
    # readings stored before the inventory existed: late ones, two boots, a meter
    _write(db_dsn, [_message(fleet, c0, 4, _box(30, 60.0, 30.0)),
                    _message(fleet, c0, 0, _box(10, 40.0, 10.0)),
                    _message(fleet, c0, 0, _box(30, 61.0, 31.0), boot_id=12),
                    _message(fleet, c1, 0, _box(5, 70.0, 7.0, sensor=0))])
    expected = _expected_from_readings(db_dsn)
    with psycopg.connect(db_dsn) as conn:
        conn.execute("DROP TABLE sensor_state")
        conn.execute("DELETE FROM schema_migrations WHERE version = 31")
    assert [m.version for m in migrate(db_dsn)] == [31]
    got = _state(db_dsn)
    assert got == expected and len(got) == 4
    assert got[(fleet.keys[c0], 32, int(Quantity.NOISE_DBA))] == (
        T0_US + 10 * MINUTE_US, T0_US + 30 * MINUTE_US, 12, 0, 61.0)


def test_hostile_sensor_traffic_is_dead_lettered_and_the_rest_is_stored(db_dsn: str) -> None:
    fleet = register_fleet(db_dsn, 2)
    bad, good = fleet.keys
    undeclared = _box(1, 50.0, 20.0, sensor=64)  # no channel of the contract (boxes end at 63)
    undeclared["sensor"][1] = 32767
    not_finite = _box(2, 50.0, 20.0)
    not_finite["value"] = [np.nan, np.inf]
    unknown = _box(3, 50.0, 20.0)
    unknown["quantity"] = [999, 0]
    huge = np.repeat(_box(4, 50.0, 20.0), MAX_RECORDS_PER_MESSAGE // 2)
    huge["sensor"] = np.arange(huge.shape[0]) % 32768  # 4,096 channels in one message
    too_many = encode_sensor(9, 10_000, np.repeat(_box(5, 1.0, 1.0), MAX_RECORDS_PER_MESSAGE // 2))
    too_many = too_many[:4] + (MAX_RECORDS_PER_MESSAGE + 1).to_bytes(2, "little") + too_many[6:]
    batch = [_message(fleet, bad, 0, undeclared), _message(fleet, bad, 2, not_finite),
             _message(fleet, bad, 4, unknown), _message(fleet, bad, 6, huge),
             (fleet.topic(bad), too_many), _message(fleet, good, 0, _box(7, 55.0, 25.0))]
    _write(db_dsn, batch)
    with psycopg.connect(db_dsn) as conn:
        rejects = conn.execute("SELECT reason, count(*), min(record_index), max(detail)"
                               " FROM ingest_rejects GROUP BY reason ORDER BY reason").fetchall()
        stored = conn.execute("SELECT controller_key, sensor FROM sensor_readings"
                              " ORDER BY controller_key, sensor, quantity").fetchall()
    reasons = {r[0]: r[1] for r in rejects}
    assert reasons == {"undeclared:sensor": 2 + (MAX_RECORDS_PER_MESSAGE - 64),
                       "not_finite:value": 2, "out_of_range:quantity": 2, "too_many_records": 1}
    undeclared_row = next(r for r in rejects if r[0] == "undeclared:sensor")
    assert undeclared_row[2] == 0 and "channels end at 63" in undeclared_row[3]
    # the huge message's 64 declared channels and the other controller's box are stored
    assert len(stored) == 64 + 2
    assert {s for k, s in stored if k == fleet.keys[bad]} == set(range(64))
    state = _state(db_dsn)
    assert state == _expected_from_readings(db_dsn)
    assert max(s for _, s, _ in state) == 63
    assert state[(fleet.keys[good], 32, int(Quantity.NOISE_DBA))][4] == 55.0


def test_two_workers_merging_the_same_series_agree_with_the_readings(db_dsn: str) -> None:
    """Two writers store interleaved readings of the same 40 series at once, each batch naming
    the series in another order: neither fails and the inventory is the newest of the readings,
    whichever committed last (a write that lost a race is checked against the row's new
    version)."""
    fleet = register_fleet(db_dsn, 20)
    names = list(fleet.keys)

    def work(offset: int, boot_id: int) -> None:
        writer = Writer(db_dsn)
        try:
            for minute in range(15):
                order = names if (minute + offset) % 2 else names[::-1]
                writer.write([_message(fleet, c, minute * 2, _box(2 * minute + offset, float(minute),
                                                                   float(offset)), boot_id)
                              for c in order], now_us=NOW_US)
        finally:
            writer.close()

    with ThreadPoolExecutor(2) as pool:
        for done in [pool.submit(work, 0, 21), pool.submit(work, 1, 22)]:
            done.result()
    state = _state(db_dsn)
    assert len(state) == 40 and state == _expected_from_readings(db_dsn)
    assert {v[1] for v in state.values()} == {T0_US + 29 * MINUTE_US}  # the second writer's last
