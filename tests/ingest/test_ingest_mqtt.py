"""Ingest end to end through the real Mosquitto and TimescaleDB: rejects, a worker killed with
SIGKILL mid-stream, PostgreSQL stopped under load."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from pathlib import Path

import numpy as np
import psycopg
import pytest
from ingest_helpers import (
    T0_US,
    ProcessWorker,
    Publisher,
    ThreadWorker,
    luminaire_records,
    own_rejects,
    poll_payloads,
    register_fleet,
    scalar,
    unique_group,
    worker_env,
    worker_settings,
)

from ingest.prepare import IngestReason
from luciole.migrate import migrate
from luciole.stack import Endpoints, pid_alive, wait_for
from tests.conftest import throwaway_stack
from wire import messages
from wire.codec import MAX_PAYLOAD_BYTES, encode_luminaire
from wire.rejects import RejectReason
from wire.topics import Kind

pytestmark = pytest.mark.integration

COUNT_STORED = "SELECT count(*) FROM luminaire_telemetry"
COUNT_DISTINCT = (
    "SELECT count(*) FROM (SELECT DISTINCT controller_key, boot_id, seq FROM luminaire_telemetry) d"
)


def _malformed(fleet, rng: np.random.Generator, i: int) -> tuple[str, bytes, str, int | None]:
    """The i-th bad message: (topic, payload, expected reason, expected record index)."""
    controller = list(fleet.keys)[i % len(fleet.keys)]
    good = luminaire_records(4, T0_US + i * 1_000_000, 10.0)
    payload = encode_luminaire(99, 10_000 + i * 4, good)
    kind = i % 9
    if kind == 0:
        return fleet.topic(controller), payload[: int(rng.integers(1, 24))], RejectReason.TRUNCATED, None
    if kind == 1:
        return fleet.topic(controller), payload[:2] + b"\x09" + payload[3:], RejectReason.BAD_VERSION, None
    if kind == 2:
        good["power_w"][2] = np.nan
        return fleet.topic(controller), encode_luminaire(99, 10_000 + i * 4, good), (
            RejectReason.NOT_FINITE_POWER_W), 2
    if kind == 3:
        good["voltage_v"][1] = 9999.0
        return fleet.topic(controller), encode_luminaire(99, 10_000 + i * 4, good), (
            RejectReason.OUT_OF_RANGE_VOLTAGE_V), 1
    if kind == 4:
        return f"luciole/v1/{fleet.tenant}/ghost{i}/telemetry", payload, IngestReason.UNKNOWN_CONTROLLER, None
    if kind == 5:
        return fleet.topic(controller), payload + bytes(MAX_PAYLOAD_BYTES), RejectReason.OVERSIZED, None
    if kind == 6:
        return f"luciole/v1/{fleet.tenant}/-{controller}/telemetry", payload, IngestReason.BAD_TOPIC, None
    if kind == 7:  # binary telemetry published on the event topic
        return fleet.topic(controller, Kind.EVENT), payload, IngestReason.BAD_EVENT, None
    return f"luciole/v1/other-tenant/{controller}/telemetry", payload, IngestReason.UNKNOWN_CONTROLLER, None


def test_malformed_payloads_are_dead_lettered_and_valid_ones_stored(
    db_dsn: str, mqtt: Endpoints, publisher: Publisher
) -> None:
    fleet = register_fleet(db_dsn, 10)
    rng = np.random.default_rng(7)
    valid = poll_payloads(fleet, polls=50, luminaires=4)  # 500 valid messages, 2000 records
    bad = [_malformed(fleet, rng, i) for i in range(1000)]
    event = messages.Event(controller=list(fleet.keys)[0], boot_id=1, seq=5, kind="boot",
                           severity="info", time="2026-01-01T00:00:00Z")
    stream: list[tuple[str, bytes]] = [*valid, *((t, p) for t, p, _, _ in bad),
                                       (fleet.topic(event.controller, Kind.EVENT), messages.dumps(event))]
    order = rng.permutation(len(stream))
    worker = ThreadWorker(worker_settings(unique_group(), "rejects-w1"), mqtt, db_dsn)
    try:
        publisher.publish([stream[i] for i in order])
        wait_for(lambda: scalar(db_dsn, "SELECT count(*) FROM ingest_rejects WHERE "
                                + own_rejects(fleet.tenant)) >= 1000
                 and scalar(db_dsn, "SELECT count(*) FROM message_ledger") >= 500 + 222 + 1, 60,
                 "rejects and records stored")
    finally:
        worker.stop()
    record_bad = sum(1 for _, _, _, rec in bad if rec is not None)
    with psycopg.connect(db_dsn) as conn:
        got = conn.execute("SELECT topic, reason, record_index, payload FROM ingest_rejects WHERE "
                           + own_rejects(fleet.tenant)).fetchall()
        foreign = conn.execute("SELECT count(*) FROM ingest_rejects WHERE NOT "
                               + own_rejects(fleet.tenant)).fetchone()[0]
        stored = conn.execute(COUNT_STORED).fetchone()[0]
        events = conn.execute("SELECT kind, seq FROM events").fetchall()
    assert len(got) == 1000
    expected = sorted((t, str(reason), rec, p) for t, p, reason, rec in bad)
    assert sorted((t, r, rec, bytes(p)) for t, r, rec, p in got) == expected
    assert stored == 2000 + 3 * record_bad  # valid records beside a bad one are kept
    assert events == [("boot", 5)]
    counts = worker.consumer.totals
    assert counts.rejects == 1000 + foreign


def _publish_in_background(ep: Endpoints, stream, chunk: int = 200):
    done, failed = threading.Event(), []

    def run() -> None:
        pub = Publisher(ep)
        try:
            for start in range(0, len(stream), chunk):
                pub.publish(stream[start : start + chunk])
        except Exception as exc:  # noqa: BLE001 - reported by the test
            failed.append(exc)
        finally:
            pub.close()
            done.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, done, failed


def test_sigkill_mid_stream_then_restart_stores_every_record_exactly_once(
    db_dsn: str, mqtt: Endpoints, tmp_path: Path
) -> None:
    fleet = register_fleet(db_dsn, 20)
    stream = poll_payloads(fleet, polls=150, luminaires=10)  # 3000 messages, 30,000 records
    total = len(stream) * 10
    group = unique_group()
    log = tmp_path / "workers.log"
    workers = {name: ProcessWorker(worker_env(mqtt, db_dsn, group, name), log) for name in ("k1", "k2")}
    try:
        thread, done, failed = _publish_in_background(mqtt, stream, chunk=100)
        wait_for(lambda: scalar(db_dsn, COUNT_STORED) >= total // 4, 60, "a quarter stored")
        workers["k1"].kill()
        killed_at = scalar(db_dsn, COUNT_STORED)
        assert killed_at < total, "the stream ended before the kill"
        # a controller's store-and-forward replay of messages already stored
        replay = Publisher(mqtt)
        replay.publish(stream[:300])
        replay.close()
        workers["k1"] = ProcessWorker(worker_env(mqtt, db_dsn, group, "k1"), log)
        assert done.wait(120) and not failed
        wait_for(lambda: scalar(db_dsn, COUNT_STORED) >= total, 90, "every record stored")
        # nothing more arrives: both workers drained their sessions
        wait_for(lambda: b"duplicates=" in log.read_bytes(), 10, "progress lines")
    finally:
        for w in workers.values():
            w.stop()
    assert scalar(db_dsn, COUNT_STORED) == total
    assert scalar(db_dsn, COUNT_DISTINCT) == total
    assert scalar(db_dsn, "SELECT count(*) FROM message_ledger") == len(stream)
    assert scalar(db_dsn, "SELECT count(*) FROM ingest_rejects WHERE "
                  + own_rejects(fleet.tenant)) == 0


def _metric(port: int, name: str) -> float:
    import urllib.request

    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
    for line in body.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise KeyError(name)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_postgres_stopped_under_load_loses_nothing_and_memory_stays_bounded(tmp_path: Path) -> None:
    stack = throwaway_stack(tmp_path / "var")
    ep = stack.up()
    worker = None
    try:
        migrate(ep.dsn())
        fleet = register_fleet(ep.dsn(), 20)
        stream = poll_payloads(fleet, polls=400, luminaires=10)  # 8000 messages, 80,000 records
        total = len(stream) * 10
        port = _free_port()
        receive_max = 200
        worker = ProcessWorker(
            worker_env(ep, ep.dsn(), unique_group(), "pg-w1",
                       LUCIOLE_INGEST_RECEIVE_MAXIMUM=str(receive_max),
                       LUCIOLE_INGEST_BATCH_MAX_MESSAGES="100",
                       LUCIOLE_INGEST_METRICS_PORT=str(port)),
            tmp_path / "worker.log")
        thread, done, failed = _publish_in_background(ep, stream, chunk=100)
        wait_for(lambda: scalar(ep.dsn(), COUNT_STORED) >= total // 10, 60, "some records stored")
        baseline_rss = worker.rss_bytes()

        pg_pid = stack.endpoints().postgres_pid
        os.kill(pg_pid, signal.SIGINT)  # fast shutdown, under load
        wait_for(lambda: not pid_alive(pg_pid), 30, "postgres to stop")
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pg_pid, 0)
        peak_rss, peak_inflight = 0, 0.0

        def retried_a_while() -> bool:
            nonlocal peak_rss, peak_inflight
            peak_rss = max(peak_rss, worker.rss_bytes())
            peak_inflight = max(peak_inflight, _metric(port, "luciole_ingest_inflight_messages"))
            return worker.log_path.read_text().count("not committed") >= 6 and done.is_set()

        wait_for(retried_a_while, 120, "worker retrying while the publisher finishes")
        stored_during_outage = None
        stack.up()  # starts PostgreSQL again on its port; the broker kept running
        stored_during_outage = scalar(ep.dsn(), COUNT_STORED)
        assert not failed
        wait_for(lambda: scalar(ep.dsn(), COUNT_STORED) >= total, 120, "every record stored")
        assert scalar(ep.dsn(), COUNT_STORED) == total
        assert scalar(ep.dsn(), COUNT_DISTINCT) == total
        assert stored_during_outage < total
        assert peak_inflight <= receive_max
        assert peak_rss - baseline_rss < 64 * 2**20, (baseline_rss, peak_rss)
    finally:
        if worker is not None:
            worker.stop()
        stack.down()
