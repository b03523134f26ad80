"""End-to-end confirmation, purely: the key that names a message sent up (stream, boot id, first
sequence number, length), keys merged into the ranges a Receipt carries, and whether a receipt
covers a key. Ingest builds receipts with `receipts_for`; a sender matches them with `covered`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import NamedTuple

import numpy as np

from wire.messages import MAX_RECEIPT_RANGES, Receipt, RejectedRange, SeqRange, Stream
from wire.records import HEADER_DTYPE, HEADER_SIZE, MAGIC, RecordType
from wire.topics import Kind

_STREAM_OF_RECORD_TYPE = {int(RecordType.LUMINAIRE): Stream.LUMINAIRE,
                          int(RecordType.SENSOR): Stream.SENSOR}
_U64 = 1 << 64


class MessageKey(NamedTuple):
    """What names one message sent up: items first_seq .. first_seq + length - 1 of a stream."""

    stream: Stream
    boot_id: int
    first_seq: int
    length: int  # items in the message: records of a telemetry payload, 1 for a JSON message

    @property
    def last_seq(self) -> int:
        return self.first_seq + self.length - 1


def key_of(kind: Kind | str, payload: bytes) -> MessageKey | None:
    """The key of a telemetry, event or ack payload; None when it has none (another kind, or a
    payload too broken to name itself)."""
    if kind == Kind.TELEMETRY:
        if len(payload) < HEADER_SIZE or payload[:2] != MAGIC:
            return None
        header = np.frombuffer(payload, dtype=HEADER_DTYPE, count=1)[0]
        stream = _STREAM_OF_RECORD_TYPE.get(int(header["record_type"]))
        count = int(header["record_count"])
        if stream is None or count == 0:
            return None
        return MessageKey(stream, int(header["boot_id"]), int(header["first_seq"]), count)
    if kind in (Kind.EVENT, Kind.ACK):
        try:
            doc = json.loads(payload)
        except (ValueError, UnicodeDecodeError):
            return None
        if not isinstance(doc, dict):
            return None
        boot, seq = doc.get("boot_id"), doc.get("seq")
        if not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < _U64 for v in (boot, seq)):
            return None
        return MessageKey(Stream.MESSAGE, int(boot), int(seq), 1)  # type: ignore[arg-type]
    return None


def merge(keys: Iterable[MessageKey]) -> list[tuple[Stream, int, int, int]]:
    """Keys as few (stream, boot_id, first_seq, last_seq) ranges as cover exactly their items:
    sorted, overlapping and adjacent ones joined."""
    out: list[tuple[Stream, int, int, int]] = []
    for stream, boot, first, count in sorted(keys):
        last = first + count - 1
        if out:
            s, b, f, la = out[-1]
            if s == stream and b == boot and first <= la + 1:
                out[-1] = (s, b, f, max(la, last))
                continue
        out.append((stream, boot, first, last))
    return out


def receipts_for(controller: str, stored: Iterable[MessageKey],
                 rejected: Sequence[tuple[MessageKey, str]], now: datetime) -> list[Receipt]:
    """The receipts that name `stored` and `rejected` (key, reason) of one controller: one, or
    several when there are more than MAX_RECEIPT_RANGES ranges."""
    ranges = [SeqRange(stream=s, boot_id=b, first_seq=f, last_seq=la) for s, b, f, la in merge(stored)]
    by_reason: dict[str, list[MessageKey]] = {}
    for key, reason in rejected:
        by_reason.setdefault(reason, []).append(key)
    refused = [RejectedRange(stream=s, boot_id=b, first_seq=f, last_seq=la, reason=reason)
               for reason, keys in sorted(by_reason.items()) for s, b, f, la in merge(keys)]
    out: list[Receipt] = []
    step = MAX_RECEIPT_RANGES
    for start in range(0, max(len(ranges), len(refused), 1), step):
        part_stored, part_refused = ranges[start:start + step], refused[start:start + step]
        if part_stored or part_refused:
            out.append(Receipt(controller=controller, time=now, stored=tuple(part_stored),
                               rejected=tuple(part_refused)))
    return out


def covered(receipt: Receipt, key: MessageKey) -> str | None:
    """'stored' or the reject reason when the receipt covers every item of `key`, else None."""
    for r in receipt.stored:
        if r.stream == key.stream and r.boot_id == key.boot_id and \
                r.first_seq <= key.first_seq and key.last_seq <= r.last_seq:
            return "stored"
    for rr in receipt.rejected:
        if rr.stream == key.stream and rr.boot_id == key.boot_id and \
                rr.first_seq <= key.first_seq and key.last_seq <= rr.last_seq:
            return rr.reason
    return None


_REASON_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_.:-")


def receipt_reason(reason: str) -> str:
    """A reject reason as a receipt carries it: lower case, [a-z0-9_.:-], at most 64 characters."""
    text = "".join(c if c in _REASON_CHARS else "_" for c in reason.lower())[:64]
    return text or "unknown"


def _range_json(stream: str, boot: int, first: int, last: int, reason: str | None) -> str:
    tail = "" if reason is None else f',"reason":"{reason}"'
    return f'{{"stream":"{stream}","boot_id":{boot},"first_seq":{first},"last_seq":{last}{tail}}}'


def receipt_json(receipt_id: str, controller: str, time_iso: str,
                 stored: Sequence[tuple[str, int, int, int]],
                 rejected: Sequence[tuple[str, int, int, int, str]] = ()) -> bytes:
    """The JSON of a Receipt, written directly for ingest's hot path (a receipt per controller
    per batch): the same bytes as `dumps(Receipt(...))` for valid arguments (a test holds it to
    that); ranges as (stream, boot_id, first_seq, last_seq[, reason]), at most
    MAX_RECEIPT_RANGES of each, identifiers and reasons already valid, time as
    `YYYY-MM-DDTHH:MM:SS[.ffffff]Z`."""
    s = ",".join(_range_json(a, b, c, d, None) for a, b, c, d in stored)
    r = ",".join(_range_json(a, b, c, d, e) for a, b, c, d, e in rejected)
    return (f'{{"v":1,"id":"{receipt_id}","controller":"{controller}","time":"{time_iso}",'
            f'"stored":[{s}],"rejected":[{r}]}}').encode()
