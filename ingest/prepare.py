"""Turn a batch of MQTT messages into columns: topics resolved, telemetry decoded in one
vectorised pass (wire.codec.decode_batch), events, acks and states parsed, and every problem a
reject with its reason."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum

import numpy as np

from wire import messages
from wire.codec import LUMINAIRE_DTYPE, SENSOR_DTYPE, Batch, RecordType, decode_batch
from wire.rejects import reason_of
from wire.sensor_channels import SENSOR_LAST
from wire.topics import UPWARD_KINDS, Kind, TopicError, parse_topic

log = logging.getLogger(__name__)

Resolve = Callable[[str, str], "int | None"]
"""(tenant, controller) -> controllers.key, or None when unknown."""


class LedgerKind(IntEnum):
    """message_ledger.kind: what a message carried (telemetry kinds are wire RecordType codes)."""

    LUMINAIRE = int(RecordType.LUMINAIRE)
    SENSOR = int(RecordType.SENSOR)
    EVENT = 3
    ACK = 4
    STATE = 5


class IngestReason(StrEnum):
    """Reject reasons of ingest itself, beside wire.rejects.RejectReason."""

    UNKNOWN_CONTROLLER = "unknown_controller"  # not registered, or under another tenant
    BAD_TOPIC = "bad_topic"  # not a luciole/v1/{tenant}/{controller}/{telemetry|event|ack|state}
    BAD_EVENT = "bad_event"  # event payload that is not a valid wire.messages.Event
    BAD_ACK = "bad_ack"  # ack payload that is not a valid wire.messages.Ack
    BAD_STATE = "bad_state"  # state payload that is not a valid wire.messages.State
    TOPIC_MISMATCH = "topic_mismatch"  # a JSON message names another controller than its topic
    UNKNOWN_COMMAND = "unknown_command"  # an ack of no command of this controller
    UNDECLARED_SENSOR = "undeclared:sensor"  # a sensor index no channel of the contract has
    INTERNAL_ERROR = "internal_error"  # ingest failed on it unexpectedly (traceback in the log)


BAD_REPORT = {Kind.EVENT: IngestReason.BAD_EVENT, Kind.ACK: IngestReason.BAD_ACK,
              Kind.STATE: IngestReason.BAD_STATE}
REPORT_LEDGER_KIND = {Kind.EVENT: LedgerKind.EVENT, Kind.ACK: LedgerKind.ACK,
                      Kind.STATE: LedgerKind.STATE}


@dataclass(frozen=True)
class RejectRow:
    msg: int  # index of the message in the batch
    record: int | None  # record index inside the payload; None for the whole message
    reason: str
    detail: str | None = None  # why, in words (a MessageError's text), when there is more to say


Report = tuple[int, int, "messages.Event | messages.Ack | messages.State"]
"""(batch message index, controller key, parsed message)."""


@dataclass(eq=False)
class Prepared:
    """One batch as columns. Record arrays hold valid records of known controllers only."""

    n_messages: int
    # ledger rows, one per message that has an identity (telemetry with a valid header, events)
    key_msg: np.ndarray
    key_controller: np.ndarray  # int32
    key_boot: np.ndarray  # int64 (u64 boot ids stored as their two's complement)
    key_first_seq: np.ndarray  # int64
    key_count: np.ndarray  # int32
    key_kind: np.ndarray  # int16
    luminaire: np.ndarray  # LUMINAIRE_DTYPE
    lum_msg: np.ndarray  # int64 batch message index of each record
    lum_controller: np.ndarray  # int32
    lum_boot: np.ndarray  # int64
    lum_seq: np.ndarray  # int64
    sensor: np.ndarray  # SENSOR_DTYPE
    sensor_msg: np.ndarray
    sensor_controller: np.ndarray
    sensor_boot: np.ndarray
    sensor_seq: np.ndarray
    events: list[tuple[int, int, messages.Event]] = field(default_factory=list)  # (msg, key, event)
    acks: list[tuple[int, int, messages.Ack]] = field(default_factory=list)
    states: list[tuple[int, int, messages.State]] = field(default_factory=list)
    rejects: list[RejectRow] = field(default_factory=list)

    def reject_counts(self) -> Counter[str]:
        return Counter(r.reason for r in self.rejects)


_EMPTY_I64 = np.zeros(0, dtype=np.int64)


def _topic_parts(topic: str, cache: dict[str, object]) -> tuple[str, str, Kind] | None:
    found = cache.get(topic)
    if found is None:
        try:
            parts = parse_topic(topic)
        except TopicError:
            parts = None
        found = (parts.tenant, parts.controller, parts.kind) if parts is not None and (
            parts.kind in UPWARD_KINDS) else False
        if len(cache) > 100_000:
            cache.clear()
        cache[topic] = found
    return found or None  # type: ignore[return-value]


def _parse_report(kind: Kind, payload: bytes, now_us: int) -> messages.Event | messages.Ack | \
        messages.State:
    return messages.loads(messages.REPORTS[kind], bytes(payload), now_us=now_us)


def prepare(
    batch: Sequence[tuple[str, bytes]],
    resolve: Resolve,
    now_us: int,
    topic_cache: dict[str, object] | None = None,
) -> Prepared:
    """Classify and decode `batch` ((topic, payload) pairs). Never raises on message contents:
    a message ingest fails on unexpectedly is an `internal_error` reject (traceback logged)."""
    cache = topic_cache if topic_cache is not None else {}
    n = len(batch)
    rejects: list[RejectRow] = []
    tele_msgs: list[int] = []
    tele_keys: list[int] = []
    reports: dict[Kind, list] = {Kind.EVENT: [], Kind.ACK: [], Kind.STATE: []}
    for i, (topic, payload) in enumerate(batch):  # per message, never per record
        parts = _topic_parts(topic, cache)
        if parts is None:
            rejects.append(RejectRow(i, None, IngestReason.BAD_TOPIC))
            continue
        tenant, controller, kind = parts
        key = resolve(tenant, controller)  # may raise a database error: not about this message
        if key is None:
            rejects.append(RejectRow(i, None, IngestReason.UNKNOWN_CONTROLLER))
            continue
        if kind is Kind.TELEMETRY:
            tele_msgs.append(i)
            tele_keys.append(key)
            continue
        try:
            report = _parse_report(kind, payload, now_us)
        except messages.MessageError as exc:
            rejects.append(RejectRow(i, None, BAD_REPORT[kind], str(exc)))
            continue
        except Exception as exc:  # a bug met on this message: it alone is dead-lettered
            log.exception("internal error preparing a %s message topic=%r", kind, topic)
            rejects.append(RejectRow(i, None, IngestReason.INTERNAL_ERROR,
                                     f"{type(exc).__name__}: {exc}"))
            continue
        if report.controller != controller:
            rejects.append(RejectRow(i, None, IngestReason.TOPIC_MISMATCH))
            continue
        reports[kind].append((i, key, report))
    events, acks, states = reports[Kind.EVENT], reports[Kind.ACK], reports[Kind.STATE]
    identified = [(LedgerKind(REPORT_LEDGER_KIND[k]), r) for k in (Kind.EVENT, Kind.ACK, Kind.STATE)
                  for r in reports[k]]

    msg_index = np.asarray(tele_msgs, dtype=np.int64)
    msg_key = np.asarray(tele_keys, dtype=np.int32)
    decoded = decode_batch([batch[i][1] for i in tele_msgs], now_us)
    # rejects of the wire decoder, mapped back to batch message indices
    if len(decoded.rejects):
        r = decoded.rejects
        for p, rec, code in zip(
            msg_index[r.payload].tolist(), r.record.tolist(), r.code.tolist(), strict=True
        ):
            rejects.append(RejectRow(p, None if rec < 0 else rec, reason_of(code).value))

    declared = _declared_sensors(decoded, msg_index, rejects)

    ok = np.flatnonzero(decoded.msg_ok)
    ev_msg = np.asarray([m for _, (m, _, _) in identified], dtype=np.int64)
    ev_key = np.asarray([k for _, (_, k, _) in identified], dtype=np.int32)
    ev_boot = np.asarray([e.boot_id for _, (_, _, e) in identified], dtype=np.uint64)
    ev_seq = np.asarray([e.seq for _, (_, _, e) in identified], dtype=np.uint64)
    ev_kind = np.asarray([kind for kind, _ in identified], dtype=np.int16)

    def i64(a: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(a, dtype=np.uint64).view(np.int64)

    return Prepared(
        n_messages=n,
        key_msg=np.concatenate([msg_index[ok], ev_msg]),
        key_controller=np.concatenate([msg_key[ok], ev_key]),
        key_boot=np.concatenate([i64(decoded.msg_boot[ok]), i64(ev_boot)]),
        key_first_seq=np.concatenate([i64(decoded.msg_first_seq[ok]), i64(ev_seq)]),
        key_count=np.concatenate(
            [decoded.msg_count[ok].astype(np.int32), np.ones(len(identified), dtype=np.int32)]
        ),
        key_kind=np.concatenate([decoded.msg_type[ok].astype(np.int16), ev_kind]),
        luminaire=decoded.luminaire,
        lum_msg=msg_index[decoded.lum_msg] if len(msg_index) else _EMPTY_I64,
        lum_controller=msg_key[decoded.lum_msg] if len(msg_key) else np.zeros(0, np.int32),
        lum_boot=i64(decoded.lum_boot),
        lum_seq=i64(decoded.lum_seq),
        sensor=decoded.sensor[declared],
        sensor_msg=msg_index[decoded.sensor_msg[declared]] if len(msg_index) else _EMPTY_I64,
        sensor_controller=(msg_key[decoded.sensor_msg[declared]] if len(msg_key)
                           else np.zeros(0, np.int32)),
        sensor_boot=i64(decoded.sensor_boot[declared]),
        sensor_seq=i64(decoded.sensor_seq[declared]),
        events=events,
        acks=acks,
        states=states,
        rejects=rejects,
    )


def _declared_sensors(decoded: Batch, msg_index: np.ndarray,
                      rejects: list[RejectRow]) -> np.ndarray:
    """The mask of sensor records on a channel of the contract (wire.sensor_channels: meters and
    sensor boxes, 0..SENSOR_LAST); each other record becomes an `undeclared:sensor` reject, so a
    controller cannot grow the sensor inventory with series nothing reads."""
    declared = decoded.sensor["sensor"] <= SENSOR_LAST
    if declared.all():
        return declared
    bad = np.flatnonzero(~declared)
    payload = decoded.sensor_msg[bad]
    record = decoded.sensor_seq[bad] - decoded.msg_first_seq[payload]  # uint64: wraps like seq
    for m, rec, index in zip(msg_index[payload].tolist(), record.tolist(),
                             decoded.sensor["sensor"][bad].tolist(), strict=True):
        rejects.append(RejectRow(m, rec, IngestReason.UNDECLARED_SENSOR,
                                 f"sensor index {index}: the contract's channels end at {SENSOR_LAST}"))
    return declared


assert LUMINAIRE_DTYPE.names is not None and SENSOR_DTYPE.names is not None


def warm_up() -> None:
    """Decode one payload of each record type, so the numba kernels are loaded (from their
    cache, about a second) before the first real batch waits on them."""
    from wire.codec import encode_luminaire, encode_sensor

    now_us = 1_767_225_600_000_000
    lum = np.zeros(1, dtype=LUMINAIRE_DTYPE)
    lum["time_us"] = now_us
    sen = np.zeros(1, dtype=SENSOR_DTYPE)
    sen["time_us"], sen["quantity"] = now_us, 1
    decode_batch([encode_luminaire(1, 0, lum), encode_sensor(1, 0, sen)], now_us)
