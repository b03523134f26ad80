"""Poison messages against the real broker and two `python -m ingest` workers: one bad message
of each kind, interleaved with 10,000 valid records, stops nothing, kills nothing and corrupts
nothing; each poison is dead-lettered once, with its reason."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import psycopg
import pytest
from ingest_helpers import (
    T0_US,
    ProcessWorker,
    Publisher,
    luminaire_records,
    register_fleet,
    scalar,
    unique_group,
    worker_env,
)

from luciole.stack import Endpoints, wait_for
from wire.codec import SENSOR_DTYPE, Quantity, encode_luminaire, encode_sensor
from wire.topics import Kind

pytestmark = [pytest.mark.integration, pytest.mark.slow]

T0 = "2026-01-01T00:00:00Z"


def _json(fields: dict) -> bytes:
    return json.dumps(fields, separators=(",", ":")).encode()


def _event(controller: str, seq: int, **overrides: object) -> bytes:
    return _json({"v": 1, "id": f"e{seq}", "controller": controller, "boot_id": 5, "seq": seq,
                  "kind": "lamp_failure", "severity": "warning", "time": T0, "luminaire": 1,
                  "detail": {"note": "ok"}} | overrides)


def _ack(controller: str, seq: int, command_id: str, **overrides: object) -> bytes:
    return _json({"v": 1, "id": f"a{seq}", "controller": controller, "boot_id": 5, "seq": seq,
                  "command_id": command_id, "status": "done", "time": T0} | overrides)


def _state(controller: str, seq: int, **overrides: object) -> bytes:
    return _json({"v": 1, "id": f"s{seq}", "controller": controller, "boot_id": 5, "seq": seq,
                  "online": True, "firmware": "2.1.0", "time": T0, "luminaires": 40} | overrides)


def _sensor_payload(seq: int, index: int) -> bytes:
    records = np.zeros(2, dtype=SENSOR_DTYPE)
    records["time_us"] = T0_US
    records["sensor"] = [1, index]
    records["quantity"] = Quantity.NOISE_DBA
    records["value"] = 60.0
    return encode_sensor(5, seq, records)


def _register_commands(dsn: str, tenant: str, controllers: list[str]) -> None:
    with psycopg.connect(dsn) as conn:
        for c in controllers:
            conn.execute(
                "INSERT INTO commands (id, tenant_id, controller_id, type, body, issued_at,"
                " expires_at) VALUES (%s, %s, %s, 'set_level', '{}', %s, %s)",
                (f"cmd-{c}", tenant, c, "2025-12-31T23:00:00Z", "2026-01-02T00:00:00Z"))


def test_one_poison_of_each_kind_stops_nothing(db_dsn: str, mqtt: Endpoints,
                                               tmp_path: Path) -> None:
    fleet = register_fleet(db_dsn, 10)
    names = list(fleet.keys)
    _register_commands(db_dsn, fleet.tenant, names)
    # 10,000 valid luminaire records: 10 controllers x 25 polls x 40 luminaires
    valid: list[tuple[str, bytes]] = []
    for k in range(25):
        records = luminaire_records(40, T0_US + k * 60_000_000, 1000.0 + k)
        valid += [(fleet.topic(c), encode_luminaire(5, k * 40, records)) for c in names]
    # and valid JSON of each kind, one of each per controller
    valid += [(fleet.topic(c, Kind.EVENT), _event(c, 100)) for c in names]
    valid += [(fleet.topic(c, Kind.ACK), _ack(c, 101, f"cmd-{c}")) for c in names]
    valid += [(fleet.topic(c, Kind.STATE), _state(c, 102)) for c in names]
    c0, c1 = names[0], names[1]
    poisons: list[tuple[str, bytes, str, int | None]] = [  # topic, payload, reason, record index
        (fleet.topic(c0, Kind.EVENT), _event(c0, 200, detail={"note": "a\u0000b"}), "bad_event",
         None),
        (fleet.topic(c0, Kind.EVENT), _event(c0, 201, time="9999-12-31T23:59:59-01:00"),
         "bad_event", None),
        (fleet.topic(c0, Kind.EVENT), _event(c0, 202, time="0001-01-01T00:00:00+01:00"),
         "bad_event", None),
        (fleet.topic(c0, Kind.TELEMETRY), _sensor_payload(203, 40000), "out_of_range:sensor", 1),
        (fleet.topic(c0, Kind.EVENT), _event(c0, 204, time="0001-01-01T00:00:00Z"), "bad_event",
         None),
        (fleet.topic(c0, Kind.EVENT), _event(c0, 205, time="9999-12-31T23:59:59Z"), "bad_event",
         None),
        (fleet.topic(c0, Kind.EVENT), _event(c0, 206).replace(b'"ok"', b'"\xed\xa0\x80"'),
         "bad_event", None),  # a lone surrogate as raw bytes: invalid UTF-8
        (fleet.topic(c1, Kind.ACK), _ack(c1, 207, f"cmd-{c1}", status="failed", reason="x\u0000"),
         "bad_ack", None),
        (fleet.topic(c1, Kind.ACK), _ack(c1, 208, f"cmd-{c1}", time="9999-12-31T23:59:59-01:00"),
         "bad_ack", None),
        (fleet.topic(c1, Kind.ACK), _ack(c1, 209, "no-such-command"), "unknown_command", None),
        (fleet.topic(c1, Kind.ACK), _ack(c1, 210, f"cmd-{c0}"), "unknown_command", None),
        (fleet.topic(c1, Kind.STATE), _state(c1, 211, firmware="1\u0000"), "bad_state", None),
        (fleet.topic(c1, Kind.STATE), _state(c1, 212, time="0001-01-01T00:00:00+01:00"),
         "bad_state", None),
        (fleet.topic(c1, Kind.STATE), _state(c1, 213, luminaires=40000), "bad_state", None),
    ]
    stream = list(valid)
    step = len(valid) // (len(poisons) + 1)
    for i, (topic, payload, _, _) in enumerate(poisons):  # spread over the stream
        stream.insert((i + 1) * step + i, (topic, payload))

    group = unique_group()
    log = tmp_path / "workers.log"
    workers = [ProcessWorker(worker_env(mqtt, db_dsn, group, f"poison-{i}"), log) for i in (1, 2)]
    publisher = Publisher(mqtt)
    try:
        publisher.publish(stream)
        published_at = time.monotonic()
        wait_for(lambda: scalar(db_dsn, "SELECT count(*) FROM luminaire_telemetry") >= 10_000
                 and scalar(db_dsn, "SELECT count(*) FROM events") >= len(names)
                 and scalar(db_dsn, "SELECT count(*) FROM command_acks") >= len(names)
                 and scalar(db_dsn, "SELECT count(*) FROM controller_states") >= len(names)
                 and scalar(db_dsn, "SELECT count(*) FROM ingest_rejects") >= len(poisons),
                 10, "every valid message stored and every poison dead-lettered")
        stored_within_s = time.monotonic() - published_at
        assert all(w.proc.poll() is None for w in workers), "a worker exited"
    finally:
        publisher.close()
        for w in workers:
            w.stop()
    assert stored_within_s <= 10
    with psycopg.connect(db_dsn) as conn:
        assert conn.execute("SELECT count(*), min(luminaire), max(luminaire)"
                            " FROM luminaire_telemetry").fetchone() == (10_000, 0, 39)
        assert conn.execute("SELECT count(*), min(sensor) FROM sensor_readings"
                            ).fetchone() == (1, 1)
        assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == len(names)
        assert conn.execute("SELECT count(*) FROM command_acks").fetchone()[0] == len(names)
        statuses = conn.execute("SELECT status, count(*) FROM commands GROUP BY 1").fetchall()
        assert statuses == [("done", len(names))]
        online = conn.execute("SELECT count(*) FROM controllers WHERE online").fetchone()[0]
        assert online == len(names)
        rejects = conn.execute("SELECT topic, payload, reason, record_index FROM ingest_rejects"
                               ).fetchall()
    got = sorted((t, bytes(p), r, i) for t, p, r, i in rejects)
    assert got == sorted(poisons)  # each poison once, with its reason
