"""Acks and birth/death messages: stored exactly once against the real TimescaleDB, the command's
status and the controller's online flag derived right whatever the arrival order, and a batch's
offending messages found and dead-lettered when the database refuses them."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Sequence

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st
from ingest_helpers import T0_US, Fleet, poll_payloads, register_fleet

from ingest.isolation import BatchStore, RetryPolicy
from ingest.states import StateRow, online_now
from ingest.writer import Writer
from wire.records import RECORD_COLUMNS, RECORD_TABLES
from wire.topics import Kind

T0 = "2026-01-01T00:00:00Z"
LOST = "connection_lost"


# --- the online flag, purely -----------------------------------------------------------------


def birth(seq: int) -> StateRow:
    return StateRow(seq, True, None)


def death(seq: int, reason: str | None = "shutdown") -> StateRow:
    return StateRow(seq, False, reason)


# A connection k has a last will written just before its birth: W0 B1 | W2 B3 | W4 B5 ...
@pytest.mark.parametrize(
    ("received", "online"),
    [
        ([], False),
        ([birth(1)], True),
        ([death(0, LOST), birth(1)], False),  # the will of B1's connection came: it was lost
        ([birth(1), death(0, LOST), birth(3)], True),  # lost, then reconnected
        ([birth(1), death(0, LOST), birth(3), death(2, LOST)], False),  # and lost again
        ([birth(1), death(2, LOST)], False),  # lost before the next birth was sent
        ([birth(1), death(2, "shutdown")], False),
        ([birth(1), death(2, "reboot")], False),
        ([birth(1), death(2, None)], False),
        ([birth(1), birth(3)], True),
        ([death(0, LOST)], False),
        ([birth(3), death(0, LOST), birth(1)], True),  # an older connection's will
    ],
)
def test_online_follows_births_deaths_and_wills(received: list[StateRow], online: bool) -> None:
    assert online_now(received) is online


@given(st.lists(st.tuples(st.integers(0, 40), st.sampled_from(["birth", LOST, "shutdown"])),
                unique_by=lambda r: r[0], max_size=12), st.randoms())
def test_online_does_not_depend_on_arrival_order(rows: list, rnd: random.Random) -> None:
    states = [birth(s) if kind == "birth" else death(s, kind) for s, kind in rows]
    shuffled = list(states)
    rnd.shuffle(shuffled)
    assert online_now(states) is online_now(shuffled)


# --- against the database --------------------------------------------------------------------


def _state(fleet: Fleet, controller: str, seq: int, online: bool, reason: str | None = None,
           boot_id: int = 9, time: str = T0, firmware: str = "3.0") -> tuple[str, bytes]:
    doc = {"v": 1, "id": f"s{boot_id}.{seq}", "controller": controller, "boot_id": boot_id,
           "seq": seq, "online": online, "firmware": firmware, "time": time, "luminaires": 4}
    if reason is not None:
        doc["reason"] = reason
    return fleet.topic(controller, Kind.STATE), json.dumps(doc).encode()


def _ack(fleet: Fleet, controller: str, seq: int, command_id: str, status: str,
         reason: str | None = None, time: str = T0) -> tuple[str, bytes]:
    doc = {"v": 1, "id": f"a{seq}", "controller": controller, "boot_id": 9, "seq": seq,
           "command_id": command_id, "status": status, "time": time}
    if reason is not None:
        doc["reason"] = reason
    return fleet.topic(controller, Kind.ACK), json.dumps(doc).encode()


def _write(dsn: str, *batches: Sequence[tuple[str, bytes]]) -> None:
    writer = Writer(dsn)
    try:
        for batch in batches:
            writer.write(batch, now_us=T0_US)
    finally:
        writer.close()


def _rows(dsn: str, sql: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(sql, params).fetchall()


@pytest.mark.integration
def test_states_are_stored_once_and_set_the_online_flag(db_dsn: str) -> None:
    fleet = register_fleet(db_dsn, 3)
    a, b, c = fleet.keys
    first = [_state(fleet, a, 1, True), _state(fleet, b, 1, True),
             _state(fleet, c, 1, True, firmware="3.0")]
    _write(db_dsn, first, first)  # the second time: redelivered, dropped
    assert _rows(db_dsn, "SELECT count(*) FROM controller_states") == [(3,)]
    later = [
        _state(fleet, a, 0, False, LOST, time="2025-12-31T23:59:59Z"),  # a's birth's will
        _state(fleet, b, 2, False, "shutdown", time="2026-01-01T01:00:00Z"),
        # c reboots: its new boot's birth supersedes the old boot's messages
        _state(fleet, c, 2, False, "reboot", time="2026-01-01T01:00:00Z"),
        _state(fleet, c, 0, True, boot_id=10, time="2026-01-01T01:01:00Z", firmware="3.1"),
    ]
    _write(db_dsn, later)
    got = {cid: row for cid, *row in _rows(
        db_dsn, "SELECT id, online, boot_id, firmware, last_seen FROM controllers")}
    assert {cid: row[0] for cid, row in got.items()} == {a: False, b: False, c: True}
    assert got[c][1:3] == [10, "3.1"]
    assert got[b][3].isoformat() == "2026-01-01T01:00:00+00:00"
    history = _rows(db_dsn, "SELECT count(*), count(*) FILTER (WHERE online),"
                    " count(*) FILTER (WHERE reason = 'connection_lost') FROM controller_states")
    assert history == [(7, 4, 1)]


@pytest.mark.integration
def test_two_writers_at_once_agree_on_the_online_flag(db_dsn: str) -> None:
    fleet = register_fleet(db_dsn, 20)
    expected, messages = {}, []
    for i, name in enumerate(fleet.keys):
        # W0 B1 | W2 B3: all four received means lost again; without W2, online
        received = [(0, False, LOST), (1, True, None), (3, True, None)]
        if i % 2:
            received.append((2, False, LOST))
        expected[name] = not i % 2
        messages += [_state(fleet, name, seq, up, why) for seq, up, why in received]
    random.Random(4).shuffle(messages)
    halves = [messages[0::2], messages[1::2]]
    errors: list[BaseException] = []

    def run(part: list) -> None:
        try:
            _write(db_dsn, *[part[k:k + 3] for k in range(0, len(part), 3)])
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(h,)) for h in halves]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert dict(_rows(db_dsn, "SELECT id, online FROM controllers")) == expected


def _commands(dsn: str, fleet: Fleet, ids: dict[str, str]) -> None:
    with psycopg.connect(dsn) as conn:
        for command_id, controller in ids.items():
            conn.execute(
                "INSERT INTO commands (id, tenant_id, controller_id, type, body, issued_at,"
                " expires_at) VALUES (%s, %s, %s, 'identify', '{}', %s, %s)",
                (command_id, fleet.tenant, controller, "2025-12-31T23:00:00Z",
                 "2026-01-02T00:00:00Z"))


@pytest.mark.integration
def test_acks_are_stored_once_and_move_the_status_forward_only(db_dsn: str) -> None:
    fleet = register_fleet(db_dsn, 2)
    a, b = fleet.keys
    _commands(db_dsn, fleet, {"k1": a, "k2": a, "k3": a, "kb": b})
    first = [
        _ack(fleet, a, 1, "k1", "done"),
        _ack(fleet, a, 2, "k1", "accepted", time="2025-12-31T23:30:00Z"),  # late, out of order
        _ack(fleet, a, 3, "k2", "accepted"),
        _ack(fleet, a, 4, "k3", "refused", reason="expired"),
        _ack(fleet, a, 5, "k3", "refused", reason="expired"),  # answered again
        _ack(fleet, a, 6, "nope", "done"),  # no such command
        _ack(fleet, a, 7, "kb", "done"),  # b's command, acked by a
    ]
    _write(db_dsn, first, first)
    _write(db_dsn, [_ack(fleet, a, 8, "k2", "failed", reason="no DALI answer")])
    status = dict(_rows(db_dsn, "SELECT id, status FROM commands"))
    assert status == {"k1": "done", "k2": "failed", "k3": "refused", "kb": "pending"}
    acks = _rows(db_dsn, "SELECT command_id, status, reason FROM command_acks ORDER BY 1, 2")
    assert acks == [("k1", "accepted", None), ("k1", "done", None), ("k2", "accepted", None),
                    ("k2", "failed", "no DALI answer"), ("k3", "refused", "expired")]
    rejects = _rows(db_dsn, "SELECT reason, payload FROM ingest_rejects ORDER BY id")
    assert [(r, bytes(p)) for r, p in rejects] == [
        ("unknown_command", first[5][1]), ("unknown_command", first[6][1])]  # once each


@pytest.mark.integration
def test_record_columns_of_the_contract_are_the_schema_s(db_dsn: str) -> None:
    for record_type, columns in RECORD_COLUMNS.items():
        got = dict(_rows(db_dsn, "SELECT column_name, data_type FROM information_schema.columns"
                         " WHERE table_name = %s", (RECORD_TABLES[record_type],)))
        for field, column in columns.items():
            assert got["time" if field == "time_us" else field] == column.sql, field


# --- the database refuses a message: it alone is dead-lettered -------------------------------

TRIGGER = """
CREATE SEQUENCE flaky_failures;  -- sequences do not roll back: it counts failed attempts
CREATE FUNCTION refuse_marked() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.detail ? 'refuse' THEN
        RAISE EXCEPTION 'refused by test' USING ERRCODE = NEW.detail->>'refuse';
    END IF;
    IF NEW.detail ? 'flaky' AND nextval('flaky_failures') <= (NEW.detail->>'flaky')::int THEN
        RAISE EXCEPTION 'could not serialize access' USING ERRCODE = '40001';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER refuse_marked BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION refuse_marked();
"""


def _event(fleet: Fleet, controller: str, seq: int, **detail: object) -> tuple[str, bytes]:
    doc = {"v": 1, "id": f"e{seq}", "controller": controller, "boot_id": 9, "seq": seq,
           "kind": "tamper", "severity": "critical", "time": T0, "detail": detail}
    return fleet.topic(controller, Kind.EVENT), json.dumps(doc).encode()


@pytest.mark.integration
def test_messages_the_database_refuses_are_dead_lettered_and_the_rest_committed(
        db_dsn: str, caplog: pytest.LogCaptureFixture) -> None:
    fleet = register_fleet(db_dsn, 4)
    with psycopg.connect(db_dsn) as conn:
        conn.execute(TRIGGER)
    names = list(fleet.keys)
    telemetry = poll_payloads(fleet, polls=10, luminaires=5)  # 40 messages
    refused = {
        _event(fleet, names[0], 1, refuse="22023"): "db_rejected:invalid_parameter_value",
        _event(fleet, names[1], 2, refuse="23514"): "db_rejected:check_violation",
        _event(fleet, names[2], 3, refuse="XX000"): "internal_error",
    }
    fine = [_event(fleet, n, 10 + i, note="fine") for i, n in enumerate(names)]
    batch = telemetry[:13] + [*refused][:1] + fine[:2] + telemetry[13:30] + [*refused][1:] \
        + fine[2:] + telemetry[30:]
    writer = Writer(db_dsn)
    store = BatchStore(writer, RetryPolicy(0.01, 0.05), lambda _s: False)
    try:
        outcome = store.write(batch)
        again = store.write(batch)  # redelivered: nothing twice, no second dead letter
    finally:
        writer.close()
    assert outcome is not None and outcome.internal_errors == 1 and outcome.splits >= 2
    assert again is not None and again.result.duplicates == len(batch) and not again.splits
    assert _rows(db_dsn, "SELECT count(*) FROM luminaire_telemetry") == [(40 * 5,)]
    assert _rows(db_dsn, "SELECT count(*) FROM events") == [(len(fine),)]
    rejects = _rows(db_dsn, "SELECT payload, reason, detail FROM ingest_rejects")
    assert {(bytes(p), r) for p, r, _ in rejects} == {(m[1], r) for m, r in refused.items()}
    assert len(rejects) == 3 and all("refused by test" in d for _, _, d in rejects)
    assert any(r.levelname == "ERROR" and r.exc_info for r in caplog.records), "no traceback"


@pytest.mark.integration
def test_transient_failures_are_retried_until_the_batch_commits(db_dsn: str) -> None:
    fleet = register_fleet(db_dsn, 2)
    with psycopg.connect(db_dsn) as conn:
        conn.execute(TRIGGER)
    names = list(fleet.keys)
    batch = poll_payloads(fleet, polls=3, luminaires=2) + [_event(fleet, names[0], 1, flaky=3)]
    waits: list[float] = []

    def wait(delay_s: float) -> bool:
        waits.append(delay_s)
        return len(waits) > 10  # stop: the failures did not end

    writer = Writer(db_dsn)
    try:
        outcome = BatchStore(writer, RetryPolicy(0.01, 0.05), wait).write(batch)
    finally:
        writer.close()
    assert outcome is not None and outcome.failures == 3 and len(waits) == 3
    assert not outcome.splits and not outcome.result.rejects
    assert _rows(db_dsn, "SELECT count(*) FROM events") == [(1,)]
    assert _rows(db_dsn, "SELECT count(*) FROM luminaire_telemetry") == [(12,)]
