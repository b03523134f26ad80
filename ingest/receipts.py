"""Receipts of a committed batch, purely: per controller, the ranges of what is now in the
database (first copies and duplicates alike: a duplicate was stored before) and of what was
dead-lettered, as (receipt topic, JSON payload) pairs ready to publish.

A controller keeps a reading in its outbox until a receipt names it (end-to-end confirmation),
so a receipt must never name what the transaction did not store; it may omit anything (the
controller then sends it again and the ledger drops the copy).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np

from wire.messages import MAX_RECEIPT_RANGES, Stream
from wire.receipts import MessageKey, key_of, receipt_json, receipt_reason
from wire.topics import Kind, parse_topic, topic

# message_ledger.kind -> the controller's stream (telemetry kinds are wire RecordType codes;
# events, acks and states share the controller's message numbering)
STREAM_OF_LEDGER_KIND = {1: Stream.LUMINAIRE.value, 2: Stream.SENSOR.value, 3: Stream.MESSAGE.value,
                         4: Stream.MESSAGE.value, 5: Stream.MESSAGE.value}


def rejected_keys(batch: Sequence[tuple[str, bytes]], whole: Sequence[tuple[int, str]],
                  identified: np.ndarray) -> list[tuple[int, MessageKey, str]]:
    """(message index, key, reason) of messages dead-lettered whole that name themselves; those
    the ledger identified are confirmed with the stored ones. `whole`: (message index, reason)."""
    out: list[tuple[int, MessageKey, str]] = []
    seen: set[int] = set()
    for m, reason in whole:
        if m in seen or identified[m]:
            continue
        seen.add(m)
        name, payload = batch[m]
        try:
            kind = parse_topic(name).kind
        except ValueError:
            continue
        key = key_of(kind, bytes(payload))
        if key is not None:
            out.append((m, key, reason))
    return out

EMPTY = (np.zeros(0, np.int64), np.zeros(0, np.int16), np.zeros(0, np.int64), np.zeros(0, np.int64),
         np.zeros(0, np.int32))
"""No ledger entries: the key columns of `build` for a batch that stored nothing."""

_Stored = tuple[str, int, int, int]  # stream, boot id, first seq, last seq
_Refused = tuple[str, int, int, int, str]  # the same and the reason


def _receipt_topic(message_topic: str, cache: dict[str, tuple[str, str] | None]) -> tuple[str, str] | None:
    """(receipt topic, controller) of a message's topic, or None for a topic outside the contract."""
    if message_topic not in cache:
        try:
            parts = parse_topic(message_topic)
        except ValueError:
            cache[message_topic] = None
        else:
            cache[message_topic] = (topic(parts.tenant, parts.controller, Kind.RECEIPT), parts.controller)
        if len(cache) > 100_000:
            cache.clear()
    return cache.get(message_topic)


def build(topics: Sequence[str], msg: np.ndarray, kind: np.ndarray, boot: np.ndarray,
          first_seq: np.ndarray, count: np.ndarray,
          rejected: Sequence[tuple[int, MessageKey, str]] = (), now: datetime | None = None,
          cache: dict[str, tuple[str, str] | None] | None = None) -> list[tuple[str, bytes]]:
    """Receipts for a committed batch of messages with these `topics`.

    `msg`, `kind`, `boot` (int64, a u64 boot id in two's complement), `first_seq` (int64),
    `count`: one entry per message the ledger holds after the commit (new or duplicate), `msg`
    its index in the batch; `rejected`: (message index, key, reason) of dead-lettered messages
    that could name themselves."""
    cache = cache if cache is not None else {}
    now = now or datetime.now(UTC)
    when = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    per_topic: dict[str, tuple[str, list[_Stored], list[_Refused]]] = {}

    n = int(msg.shape[0])
    if n:
        # controller of each entry, as an integer, to sort and merge ranges in numpy
        topic_ids: dict[str, int] = {}
        names = [topics[m] for m in msg.tolist()]
        tid = np.fromiter((topic_ids.setdefault(name, len(topic_ids)) for name in names),
                          dtype=np.int64, count=n)
        by_id = list(topic_ids)
        boot_u = np.ascontiguousarray(boot, dtype=np.int64).view(np.uint64)
        first_u = np.ascontiguousarray(first_seq, dtype=np.int64).view(np.uint64)
        stream = np.asarray(kind, dtype=np.int64)
        order = np.lexsort((first_u, boot_u, stream, tid))
        t, s, b, f = tid[order], stream[order], boot_u[order], first_u[order]
        last = f + np.asarray(count, dtype=np.uint64)[order] - np.uint64(1)
        # a range starts where the controller, stream or boot changes, or where an item is skipped
        # (sorted by first: items up to the previous entry's last are all in the range so far)
        joins = np.zeros(n, dtype=bool)
        joins[1:] = ((t[1:] == t[:-1]) & (s[1:] == s[:-1]) & (b[1:] == b[:-1])
                     & (f[1:] <= last[:-1] + np.uint64(1)))
        starts = np.flatnonzero(~joins)
        range_last = np.maximum.reduceat(last, starts).tolist()
        for ti, si, bi, fi, li in zip(t[starts].tolist(), s[starts].tolist(), b[starts].tolist(),
                                      f[starts].tolist(), range_last, strict=True):
            target = _receipt_topic(by_id[ti], cache)
            name_kind = STREAM_OF_LEDGER_KIND.get(si)
            if target is None or name_kind is None:
                continue
            entry = per_topic.get(target[0])
            if entry is None:
                entry = per_topic[target[0]] = (target[1], [], [])
            entry[1].append((name_kind, bi, fi, li))
    for m, key, reason in rejected:
        target = _receipt_topic(topics[m], cache)
        if target is None:
            continue
        entry = per_topic.setdefault(target[0], (target[1], [], []))
        entry[2].append((key.stream.value, key.boot_id, key.first_seq, key.last_seq,
                         receipt_reason(reason)))

    batch_id = uuid.uuid4().hex[:16]
    out: list[tuple[str, bytes]] = []
    step = MAX_RECEIPT_RANGES
    for i, (receipt_topic, (controller, stored, refused)) in enumerate(per_topic.items()):
        for part in range(0, max(len(stored), len(refused)), step):
            out.append((receipt_topic, receipt_json(f"{batch_id}:{i}:{part}", controller, when,
                                                    stored[part:part + step], refused[part:part + step])))
    return out


def keys_of(kind: np.ndarray, boot: np.ndarray, first_seq: np.ndarray,
            count: np.ndarray) -> list[MessageKey]:
    """Ledger key columns (int64 two's complement for boot and first seq) as MessageKeys."""
    boot_u = np.ascontiguousarray(boot, dtype=np.int64).view(np.uint64).tolist()
    first_u = np.ascontiguousarray(first_seq, dtype=np.int64).view(np.uint64).tolist()
    return [MessageKey(Stream(STREAM_OF_LEDGER_KIND[int(k)]), int(b), int(f), int(n))
            for k, b, f, n in zip(np.asarray(kind).tolist(), boot_u, first_u,
                                  np.asarray(count).tolist(), strict=True)
            if int(k) in STREAM_OF_LEDGER_KIND]
