"""Property: whatever a controller publishes — arbitrary bytes or JSON, any unicode, number or
date string, nested or huge — every message of a batch goes through decode_batch, prepare and
the real Writer into the real database and is either stored (as sent) or dead-lettered with a
reason; the batch commits without a failed write, and a valid message beside them is stored.

A few hundred generated messages per kind run always; 10,000 per kind behind the `fuzz` marker
(`make test` runs it; `-m "not fuzz"` leaves it out)."""

from __future__ import annotations

import json
import random
from collections import Counter
from datetime import datetime

import numpy as np
import psycopg
import pytest
from hostile_messages import Hostile, records_of, telemetry_identity
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from ingest_helpers import luminaire_records, register_fleet

from ingest.isolation import BatchStore, RetryPolicy
from ingest.prepare import IngestReason, LedgerKind
from ingest.writer import Writer
from wire.codec import encode_luminaire
from wire.records import RecordType
from wire.rejects import RejectReason

pytestmark = pytest.mark.integration

KINDS = ("telemetry", "event", "ack", "state")
QUICK, LONG = 300, 10_000
REASONS = {str(r) for r in RejectReason} | {str(r) for r in IngestReason}
LEDGER_KIND = {"event": LedgerKind.EVENT, "ack": LedgerKind.ACK, "state": LedgerKind.STATE}
LUMINAIRE_COLUMNS = ("luminaire", "level", "status", "power_w", "energy_wh", "voltage_v",
                     "current_a", "power_factor", "driver_temp_c", "ambient_lux", "presence",
                     "failure")
STATUS_RANK = {"pending": 0, "accepted": 1, "expired": 1, "done": 2, "failed": 2, "refused": 2}


def _signed(value: int) -> int:
    return value - (1 << 64) if value >> 63 else value


def _epoch_us(when: datetime) -> int:
    return round(when.timestamp() * 1_000_000)


class Oracle:
    """Checks one stored batch against what was sent, from the database alone."""

    def __init__(self, conn: psycopg.Connection, keys: dict[str, int]) -> None:
        self.conn = conn
        self.keys = keys
        # ledger key -> (payload of the message that claimed it, whether it was dead-lettered)
        self.claimed: dict[tuple[int, int, int, int], tuple[bytes, bool]] = {}
        self.record_rejects: dict[tuple[str, bytes], set[int]] = {}  # with a message's first copy
        self.last_reject = 0

    def key(self, topic: str, payload: bytes) -> tuple[int, int, int, int] | None:
        """The ledger key the message claims, read without the code under test."""
        kind = topic.rsplit("/", 1)[1]
        key = self.keys.get(topic.split("/")[3])
        if key is None:
            return None
        if kind == "telemetry":
            found = telemetry_identity(payload)
            return None if found is None else (key, _signed(found[2]), _signed(found[3]), found[0])
        try:
            doc = json.loads(payload)
        except ValueError:
            return None
        if not isinstance(doc, dict):
            return None
        boot, seq = doc.get("boot_id"), doc.get("seq")
        if not all(type(v) is int and 0 <= v < 2**64 for v in (boot, seq)):
            return None
        return key, _signed(boot), _signed(seq), int(LEDGER_KIND[kind])

    def check(self, batch: list[tuple[str, bytes]]) -> Counter[str]:
        rows = self.conn.execute(
            "SELECT id, topic, payload, reason, record_index FROM ingest_rejects WHERE id > %s",
            (self.last_reject,)).fetchall()
        self.last_reject = max([self.last_reject, *(r[0] for r in rows)])
        assert all(r[3] in REASONS for r in rows), [r[3] for r in rows]
        whole = {(t, bytes(p)): r for _, t, p, r, i in rows if i is None}
        for _, t, p, _, i in rows:
            if i is not None:
                self.record_rejects.setdefault((t, bytes(p)), set()).add(i)
        keys = [self.key(t, p) for t, p in batch]
        wanted = [k for k in keys if k is not None]
        in_ledger = set(self.conn.execute(
            "SELECT controller_key, boot_id, first_seq, kind FROM message_ledger"
            " WHERE (controller_key, boot_id, first_seq, kind) IN"
            " (SELECT * FROM unnest(%s::int[], %s::bigint[], %s::bigint[], %s::smallint[]))",
            [list(c) for c in zip(*wanted, strict=True)] if wanted else [[], [], [], []],
        ).fetchall())
        outcomes: Counter[str] = Counter()
        telemetry: list[tuple[tuple, bytes, set[int]]] = []
        for (topic, payload), key in zip(batch, keys, strict=True):
            if (topic, payload) in whole:
                outcomes["dead-lettered"] += 1
                if whole[topic, payload] == IngestReason.UNKNOWN_COMMAND:
                    assert key in in_ledger  # claimed: a copy of it is a duplicate
                    self.claimed.setdefault(key, (payload, True))
                continue
            assert key is not None and key in in_ledger, (topic, payload[:200])
            first, dead = self.claimed.setdefault(key, (payload, False))
            if first != payload or dead:
                outcomes["duplicate"] += 1
                continue
            outcomes["stored"] += 1
            rejected = self.record_rejects.get((topic, payload), set())
            if topic.endswith("/telemetry"):
                telemetry.append((key, payload, rejected))
            else:
                getattr(self, "_" + topic.rsplit("/", 1)[1])(key, payload)
        self._telemetry(telemetry)
        return outcomes

    # ---------------------------------------------------------------- stored as sent
    def _telemetry(self, stored: list[tuple[tuple, bytes, set[int]]]) -> None:
        """Each record of each message is stored with its sequence number and its values, or
        dead-lettered with its index."""
        for rtype, table, fields in (
                (RecordType.LUMINAIRE, "luminaire_telemetry", LUMINAIRE_COLUMNS),
                (RecordType.SENSOR, "sensor_readings", ("sensor", "quantity", "value"))):
            mine = [m for m in stored if m[0][3] == rtype]
            if not mine:
                continue
            rows: dict[tuple[int, int, int], tuple] = {}
            for row in self.conn.execute(
                    f"SELECT controller_key, boot_id, seq,"
                    f" (extract(epoch FROM time) * 1000000)::bigint, {', '.join(fields)}"
                    f" FROM {table} WHERE (controller_key, boot_id) IN"
                    " (SELECT * FROM unnest(%s::int[], %s::bigint[]))",
                    ([k[0] for k, _, _ in mine], [k[1] for k, _, _ in mine])).fetchall():
                assert row[:3] not in rows, ("a record stored twice", row[:3])
                rows[row[:3]] = row[3:]
            for key, payload, rejected in mine:
                records = records_of(payload)
                first = telemetry_identity(payload)[3]  # type: ignore[index]
                for i, record in enumerate(records):
                    got = rows.get((key[0], key[1], _signed((first + i) % 2**64)))
                    assert (got is None) == (i in rejected), (payload[:64], i, got)
                    if got is None:
                        continue
                    assert got[0] == int(record["time_us"])
                    for name, value in zip(fields, got[1:], strict=True):
                        want = record[name]
                        same = (np.float32(value) == want if want.dtype == np.float32
                                else value == want)
                        assert same, (name, value, want)

    def _event(self, key: tuple, payload: bytes) -> None:
        doc = json.loads(payload)
        [(event_id, kind, severity, luminaire, detail, when)] = self.conn.execute(
            "SELECT event_id, kind, severity, luminaire, detail, time FROM events"
            " WHERE controller_key = %s AND boot_id = %s AND seq = %s", key[:3]).fetchall()
        assert (kind, severity, luminaire) == (doc["kind"], doc["severity"], doc.get("luminaire"))
        assert detail == doc.get("detail", {}) and event_id == doc.get("id", event_id)
        assert _epoch_us(when) == _epoch_us(datetime.fromisoformat(doc["time"]))

    def _ack(self, key: tuple, payload: bytes) -> None:
        doc = json.loads(payload)
        rows = self.conn.execute(
            "SELECT c.status FROM command_acks a JOIN commands c ON c.id = a.command_id"
            " WHERE a.command_id = %s AND a.status = %s", (doc["command_id"], doc["status"])
        ).fetchall()
        assert len(rows) == 1, ("ack not stored", doc)
        assert STATUS_RANK[rows[0][0]] >= STATUS_RANK[doc["status"]]

    def _state(self, key: tuple, payload: bytes) -> None:
        doc = json.loads(payload)
        [(online, reason, firmware, luminaires)] = self.conn.execute(
            "SELECT online, reason, firmware, luminaires FROM controller_states"
            " WHERE controller_key = %s AND boot_id = %s AND seq = %s", key[:3]).fetchall()
        assert (online, reason, firmware, luminaires) == (
            doc["online"], doc.get("reason"), doc["firmware"], doc.get("luminaires", 0))


def _register(dsn: str) -> tuple[Hostile, dict[str, int]]:
    fleet = register_fleet(dsn, 3)
    commands = {f"{c}-k{j}": c for c in fleet.keys for j in range(4)}
    with psycopg.connect(dsn) as conn:
        for command_id, controller in commands.items():
            conn.execute(
                "INSERT INTO commands (id, tenant_id, controller_id, type, body, issued_at,"
                " expires_at) VALUES (%s, %s, %s, 'reboot', '{}', now() - interval '1 day',"
                " now() + interval '1 day')", (command_id, fleet.tenant, controller))
    import time

    now_us = int(time.time() * 1_000_000)
    return Hostile(fleet.tenant, list(fleet.keys), commands, now_us - 60_000_000), fleet.keys


def run_hostile(dsn: str, kind: str, messages: int) -> Counter[str]:
    hostile, keys = _register(dsn)
    strategy = hostile.telemetry() if kind == "telemetry" else hostile.json_message(kind)
    sentinel_controller = next(iter(keys))
    writer = Writer(dsn, registry_refresh_min_s=3600)
    store = BatchStore(writer, RetryPolicy(0.01, 0.1), lambda _s: True)  # no retry expected
    totals: Counter[str] = Counter()
    per_example = 40
    conn = psycopg.connect(dsn, autocommit=True)

    # no shrinking: against a database that keeps what earlier examples stored it is slow, and
    # the failing batch is reported as generated
    @settings(max_examples=-(-messages // per_example), deadline=None, database=None,
              suppress_health_check=list(HealthCheck), phases=(Phase.generate,))
    @given(st.lists(strategy, min_size=per_example, max_size=per_example + 10), st.randoms())
    def one_batch(batch: list[tuple[str, bytes]], rnd: random.Random) -> None:
        seq = totals["sentinels"] * 4
        sentinel = (hostile.topic(sentinel_controller, "telemetry"),
                    encode_luminaire(424242, seq, luminaire_records(4, hostile.now_us)))
        batch = list(batch)
        batch.insert(rnd.randrange(len(batch) + 1), sentinel)
        outcome = store.write(batch)
        assert outcome is not None, "the batch did not commit"
        assert (outcome.failures, outcome.internal_errors, outcome.unstorable) == (0, 0, 0)
        totals.update(oracle.check(batch))
        totals["sentinels"] += 1
        totals["generated"] += len(batch) - 1

    oracle = Oracle(conn, keys)
    try:
        one_batch()
    finally:
        conn.close()
        writer.close()
    assert totals["generated"] >= messages
    assert totals["stored"] > totals["sentinels"] and totals["dead-lettered"] > 0, totals
    return totals


@pytest.mark.parametrize("kind", KINDS)
def test_hostile_messages_are_stored_or_dead_lettered(db_dsn: str, kind: str) -> None:
    run_hostile(db_dsn, kind, QUICK)


@pytest.mark.fuzz
@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_ten_thousand_hostile_messages_of_each_kind(db_dsn: str, kind: str) -> None:
    run_hostile(db_dsn, kind, LONG)
