"""The ingest transaction: ledger claim, binary COPY of the new records and of their queue entries
for the fold (latest state, energy rollups), events, states and acks, rejects, committed together
(then the caller acknowledges). Row locks, always in this order: the ledger's, the controllers' of
state messages, the commands' of acks."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import psycopg
from psycopg.types.json import Jsonb

from ingest import acks, ledger, receipts, rollup, segments, sensor_state, states
from ingest.copy_binary import CopyLayout, PgType
from ingest.copy_binary import write as copy_write
from ingest.prepare import IngestReason, Prepared, RejectRow, prepare
from ingest.registry import Registry
from wire.records import RECORD_COLUMNS, RECORD_TABLES, RecordType
from wire.sim_clock import SimClock

log = logging.getLogger(__name__)

_T = PgType


def _record_rows(record_type: RecordType) -> CopyLayout:
    """The COPY layout of a record table: each record field in the column type the contract
    declares for it (wire.records.RECORD_COLUMNS, checked there), then the message's identity."""
    fields = tuple(("time" if name == "time_us" else name, PgType[column.name])
                   for name, column in RECORD_COLUMNS[record_type].items())
    return CopyLayout(RECORD_TABLES[record_type],
                      (fields[0], ("controller_key", _T.INTEGER), *fields[1:],
                       ("boot_id", _T.BIGINT), ("seq", _T.BIGINT)))


LUMINAIRE_ROWS = _record_rows(RecordType.LUMINAIRE)
SENSOR_ROWS = _record_rows(RecordType.SENSOR)
SEGMENT_ROWS = CopyLayout(
    "ingest_segments",
    (
        ("controller_key", _T.INTEGER), ("luminaire", _T.SMALLINT), ("time", _T.TIMESTAMPTZ),
        ("seq", _T.BIGINT), ("level", _T.SMALLINT), ("status", _T.SMALLINT), ("power_w", _T.REAL),
        ("energy_wh", _T.DOUBLE), ("voltage_v", _T.REAL), ("power_factor", _T.REAL),
        ("driver_temp_c", _T.REAL), ("failure", _T.INTEGER), ("readings", _T.INTEGER),
        ("m_first_time", _T.TIMESTAMPTZ), ("m_first_seq", _T.BIGINT), ("m_first_wh", _T.DOUBLE),
        ("m_last_time", _T.TIMESTAMPTZ), ("m_last_seq", _T.BIGINT), ("m_last_wh", _T.DOUBLE),
        ("m_inner_wh", _T.DOUBLE), ("m_samples", _T.INTEGER),
    ),
)

TEMP_TABLES = ";".join((ledger.TEMP_TABLE, rollup.TEMP_TABLES, acks.TEMP_TABLE, states.TEMP_TABLE,
                         sensor_state.TEMP_TABLE))

EVENTS_COPY = (
    "COPY events (time, controller_key, event_id, kind, severity, luminaire, detail, boot_id, seq)"
    " FROM STDIN"
)
REJECTS_COPY = "COPY ingest_rejects (topic, reason, record_index, payload, detail) FROM STDIN"


def storable(text: str | None, limit: int = 1000) -> str | None:
    """`text` as PostgreSQL can store it (at most `limit` characters): NUL becomes U+FFFD, an
    unpaired surrogate '?'."""
    if text is None:
        return None
    text = text[:limit]
    if "\x00" in text or not text.isascii():
        text = text.encode("utf-8", "replace").decode("utf-8").replace("\x00", "\ufffd")
    return text


def _signed(value: int) -> int:
    """A u64 boot id or sequence number as the bigint it is stored as (two's complement)."""
    return value - (1 << 64) if value >> 63 else value


@dataclass
class WriteResult:
    """What one committed batch did."""

    messages: int = 0
    new_messages: int = 0
    duplicates: int = 0
    luminaire_records: int = 0
    sensor_records: int = 0
    events: int = 0
    acks: int = 0
    states: int = 0
    rejects: Counter[str] = field(default_factory=Counter)
    newest_record_us: int | None = None
    lag_s: np.ndarray = field(default_factory=lambda: np.zeros(0))  # now - record time, per record
    commit_s: float = 0.0
    # (receipt topic, payload) to publish once committed: what each controller may let go of
    receipts: list[tuple[str, bytes]] = field(default_factory=list)

    @property
    def records(self) -> int:
        return self.luminaire_records + self.sensor_records + self.events + self.acks + self.states

    def add(self, other: WriteResult) -> None:
        """Count `other` (another part of the same batch) in this result."""
        for name in ("messages", "new_messages", "duplicates", "luminaire_records",
                     "sensor_records", "events", "acks", "states"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.rejects.update(other.rejects)
        if other.newest_record_us is not None:
            self.newest_record_us = max(self.newest_record_us or other.newest_record_us,
                                        other.newest_record_us)
        if other.lag_s.shape[0]:
            self.lag_s = np.concatenate([self.lag_s, other.lag_s])
        self.commit_s += other.commit_s
        self.receipts += other.receipts


class Writer:
    """Owns one database connection; `write` is one batch, all or nothing."""

    def __init__(self, dsn: str, registry_refresh_min_s: float = 2.0, receipts: bool = True,
                 sim_clock: SimClock | None = None) -> None:
        self.dsn = dsn
        self.sim_clock = sim_clock  # a simulated fleet's clock: the accepted window moves with it
        self.receipts = receipts  # build receipts after each commit
        self.registry = Registry(registry_refresh_min_s)
        self.conn: psycopg.Connection | None = None
        self._topics: dict[str, object] = {}
        self._receipt_topics: dict[str, tuple[str, str] | None] = {}

    # ------------------------------------------------------------------ connection
    def connect(self) -> psycopg.Connection:
        if self.conn is not None and not self.conn.closed and not self.conn.broken:
            return self.conn
        self.close()
        conn = psycopg.connect(self.dsn, autocommit=False, connect_timeout=5)
        try:
            conn.execute(TEMP_TABLES)
            conn.commit()
            self.registry.load(conn)
        except BaseException:
            conn.close()
            raise
        self._topics.clear()
        self.conn = conn
        return conn

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except psycopg.Error:
                pass
        self.conn = None

    def _accept_now_us(self, now_us: int) -> int:
        """The 'now' record times are validated against (the wall clock's, unless a simulated
        clock runs ahead of it)."""
        return now_us if self.sim_clock is None else self.sim_clock.accept_now_us(now_us)

    def _resolve(self, tenant: str, controller: str) -> int | None:
        assert self.conn is not None
        return self.registry.lookup(self.conn, tenant, controller)

    # ------------------------------------------------------------------ the batch
    def write(self, batch: Sequence[tuple[str, bytes]], now_us: int | None = None) -> WriteResult:
        """Store a batch of (topic, payload) messages exactly once, in one transaction.

        Raises psycopg.Error when the database fails; nothing of the batch is then committed
        (or, if the commit itself was cut off, it may be: a retry is dropped by the ledger).
        """
        now_us = int(time.time() * 1_000_000) if now_us is None else now_us
        conn = self.connect()
        try:
            prepared = prepare(batch, self._resolve, self._accept_now_us(now_us), self._topics)
            started = time.perf_counter()
            result = self._transaction(conn, prepared, batch, now_us)
            result.commit_s = time.perf_counter() - started
        except BaseException:
            self._abandon()
            raise
        return result

    def dead_letter(self, message: tuple[str, bytes], reason: str, detail: str | None = None,
                    now_us: int | None = None) -> WriteResult:
        """Dead-letter one message in a transaction of its own. When it has an identity
        (controller, boot id, sequence, kind), it is claimed in the ledger too, so a redelivery is
        a duplicate, not a second dead letter. Raises psycopg.Error when the database fails."""
        now_us = int(time.time() * 1_000_000) if now_us is None else now_us
        conn = self.connect()
        result = WriteResult(messages=1)
        try:
            try:
                p: Prepared | None = prepare([message], self._resolve,
                                             self._accept_now_us(now_us), self._topics)
            except psycopg.Error:
                raise
            except Exception:  # noqa: BLE001 - it failed before: dead-letter it without identity
                p = None
            with conn.cursor() as cur:
                new = True
                if p is not None and p.key_msg.shape[0]:
                    new = bool(ledger.claim(cur, 1, p.key_msg, p.key_controller, p.key_boot,
                                            p.key_first_seq, p.key_count, p.key_kind)[0])
                if new:
                    self._rejects(cur, [RejectRow(0, None, reason, detail)], [message])
                    result.new_messages, result.rejects = 1, Counter({reason: 1})
                else:
                    result.duplicates = 1
            conn.commit()
            if self.receipts:
                result.receipts = _dead_letter_receipts(message, p, reason, new)
        except BaseException:
            self._abandon()
            raise
        return result

    def _abandon(self) -> None:
        """Roll back after a failure; drop a broken connection."""
        if self.conn is not None and not self.conn.closed:
            try:
                self.conn.rollback()
            except psycopg.Error:
                self.close()
        if self.conn is not None and self.conn.broken:
            self.close()

    @staticmethod
    def _rejects(cur: psycopg.Cursor, rows: Sequence[RejectRow],
                 batch: Sequence[tuple[str, bytes]]) -> None:
        with cur.copy(REJECTS_COPY) as copy:
            for r in rows:
                topic, payload = batch[r.msg]
                copy.write_row((storable(topic), r.reason, r.record, bytes(payload),
                                storable(r.detail)))

    def _transaction(self, conn: psycopg.Connection, p: Prepared,
                     batch: Sequence[tuple[str, bytes]], now_us: int) -> WriteResult:
        result = WriteResult(messages=p.n_messages)
        with conn.cursor() as cur:
            new = ledger.claim(cur, p.n_messages, p.key_msg, p.key_controller, p.key_boot,
                               p.key_first_seq, p.key_count, p.key_kind)
            identified = np.zeros(p.n_messages, dtype=bool)
            identified[p.key_msg] = True
            result.new_messages = int(new.sum())
            result.duplicates = int((identified & ~new).sum())

            lum_new = new[p.lum_msg]
            result.luminaire_records = self._luminaires(cur, p, lum_new, now_us, result)
            result.sensor_records = self._sensors(cur, p, new[p.sensor_msg])
            events = [(m, k, e) for m, k, e in p.events if new[m]]
            if events:
                with cur.copy(EVENTS_COPY) as copy:
                    for _m, key, e in events:  # events are few; a row loop is fine here
                        copy.write_row((e.time, key, e.id, e.kind.value, e.severity.value,
                                        e.luminaire, Jsonb(e.detail), _signed(e.boot_id),
                                        _signed(e.seq)))
            result.events = len(events)
            result.states = states.write(cur, [s for s in p.states if new[s[0]]])
            result.acks, unknown = acks.write(cur, [a for a in p.acks if new[a[0]]])
            # whole-message rejects always; record rejects only with their message's first copy
            rejects = [r for r in p.rejects if r.record is None or new[r.msg]]
            rejects += [RejectRow(m, None, IngestReason.UNKNOWN_COMMAND) for m in unknown]
            if rejects:
                self._rejects(cur, rejects, batch)
                result.rejects = Counter(r.reason for r in rejects)
        conn.commit()
        if not self.receipts:
            return result
        # the ledger holds every identified message now (new or duplicate): confirmed as stored
        whole = [(r.msg, str(r.reason)) for r in rejects if r.record is None]
        result.receipts = receipts.build(
            [t for t, _ in batch], p.key_msg, p.key_kind, p.key_boot, p.key_first_seq, p.key_count,
            receipts.rejected_keys(batch, whole, identified), cache=self._receipt_topics)
        return result

    def _luminaires(self, cur: psycopg.Cursor, p: Prepared, keep: np.ndarray, now_us: int,
                    result: WriteResult) -> int:
        records = p.luminaire[keep]
        n = records.shape[0]
        if n == 0:
            return 0
        controller, boot, seq = p.lum_controller[keep], p.lum_boot[keep], p.lum_seq[keep]
        times = records["time_us"]
        copy_write(cur, LUMINAIRE_ROWS, {
            "time": times, "controller_key": controller, "luminaire": records["luminaire"],
            "level": records["level"], "status": records["status"], "power_w": records["power_w"],
            "energy_wh": records["energy_wh"], "voltage_v": records["voltage_v"],
            "current_a": records["current_a"], "power_factor": records["power_factor"],
            "driver_temp_c": records["driver_temp_c"], "ambient_lux": records["ambient_lux"],
            "presence": records["presence"], "failure": records["failure"], "boot_id": boot, "seq": seq,
        })
        queue_segments(cur, controller, records, seq)  # the fold's queue, in this transaction
        result.newest_record_us = int(times.max())
        result.lag_s = (now_us - times) / 1e6
        return n

    @staticmethod
    def _sensors(cur: psycopg.Cursor, p: Prepared, keep: np.ndarray) -> int:
        """COPY the new sensor readings and merge them into the sensor inventory."""
        columns = {
            "time": p.sensor["time_us"][keep], "controller_key": p.sensor_controller[keep],
            "sensor": p.sensor["sensor"][keep], "quantity": p.sensor["quantity"][keep],
            "value": p.sensor["value"][keep], "boot_id": p.sensor_boot[keep],
            "seq": p.sensor_seq[keep],
        }
        n = copy_write(cur, SENSOR_ROWS, columns)
        sensor_state.merge(cur, columns["controller_key"], columns["sensor"], columns["quantity"],
                           columns["time"], columns["boot_id"], columns["seq"], columns["value"])
        return n

    # ------------------------------------------------------------------ rollup
    def refresh_rollups(self) -> rollup.RefreshResult | None:
        return rollup.refresh(self.connect())


def queue_segments(cur: psycopg.Cursor, controller: np.ndarray, records: np.ndarray,
                   seq: np.ndarray) -> int:
    """Queue the fold's segments of stored luminaire readings (ingest/segments.py); returns how
    many rows that took."""
    seg = segments.build(controller, records, seq)
    copy_write(cur, SEGMENT_ROWS, {
        "controller_key": seg.controller_key, "luminaire": seg.luminaire, "time": seg.time_us,
        "seq": seg.seq, **seg.state, "readings": seg.readings,
        "m_first_time": seg.m_first_time_us, "m_first_seq": seg.m_first_seq,
        "m_first_wh": seg.m_first_wh, "m_last_time": seg.m_last_time_us,
        "m_last_seq": seg.m_last_seq, "m_last_wh": seg.m_last_wh, "m_inner_wh": seg.m_inner_wh,
        "m_samples": seg.m_samples,
    })
    return len(seg)


def _dead_letter_receipts(message: tuple[str, bytes], p: Prepared | None, reason: str,
                          new: bool) -> list[tuple[str, bytes]]:
    """The receipt of one dead-lettered message: rejected with its reason, or stored when the
    ledger already held it (a copy of a message stored or dead-lettered before)."""
    topics = [message[0]]
    if p is not None and p.key_msg.shape[0]:
        if not new:
            return receipts.build(topics, p.key_msg, p.key_kind, p.key_boot, p.key_first_seq,
                                  p.key_count)
        keys = receipts.keys_of(p.key_kind, p.key_boot, p.key_first_seq, p.key_count)
        return receipts.build(topics, *receipts.EMPTY, rejected=[(0, k, reason) for k in keys])
    rejected = receipts.rejected_keys([message], [(0, reason)], np.zeros(1, dtype=bool))
    return receipts.build(topics, *receipts.EMPTY, rejected=rejected)
