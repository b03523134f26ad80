"""Receipts of a committed batch, without services: per controller, exactly the items stored
(duplicates included) and dead-lettered, never one more."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from ingest.receipts import build
from wire.messages import Receipt, Stream, loads
from wire.receipts import MessageKey, covered
from wire.topics import Kind, topic

KIND = {Stream.LUMINAIRE: 1, Stream.SENSOR: 2, Stream.MESSAGE: 3}


def _arrays(entries: list[tuple[int, MessageKey]]) -> tuple[np.ndarray, ...]:
    msg = np.array([m for m, _ in entries], dtype=np.int64)
    kind = np.array([KIND[k.stream] for _, k in entries], dtype=np.int16)
    boot = np.array([k.boot_id for _, k in entries], dtype=np.uint64).view(np.int64)
    first = np.array([k.first_seq for _, k in entries], dtype=np.uint64).view(np.int64)
    count = np.array([k.length for _, k in entries], dtype=np.int32)
    return msg, kind, boot, first, count


def _parsed(out: list[tuple[str, bytes]]) -> dict[str, list[Receipt]]:
    got: dict[str, list[Receipt]] = {}
    for name, payload in out:
        got.setdefault(name, []).append(loads(Receipt, payload))
    return got


def test_a_batch_gives_one_receipt_per_controller_with_merged_ranges() -> None:
    tel, big = Kind.TELEMETRY, 2**64 - 1
    topics = [topic("t", "a", tel), topic("t", "b", tel), topic("t", "a", tel),
              topic("t", "a", Kind.EVENT), "bad/topic", topic("t", "b", tel)]
    entries = [(0, MessageKey(Stream.LUMINAIRE, big, 0, 50)), (1, MessageKey(Stream.LUMINAIRE, 7, 0, 4)),
               (2, MessageKey(Stream.LUMINAIRE, big, 50, 50)), (3, MessageKey(Stream.MESSAGE, 9, 3, 1))]
    rejected = [(5, MessageKey(Stream.SENSOR, 7, 10, 2), "time_out_of_range"),
                (4, MessageKey(Stream.SENSOR, 1, 1, 1), "x"),
                (1, MessageKey(Stream.MESSAGE, 7, 9, 1), "db_rejected:Untranslatable Character")]
    got = _parsed(build(topics, *_arrays(entries), rejected=rejected))
    assert set(got) == {topic("t", "a", Kind.RECEIPT), topic("t", "b", Kind.RECEIPT)}
    (a,) = got[topic("t", "a", Kind.RECEIPT)]
    assert a.controller == "a" and a.rejected == ()
    assert [(r.stream, r.boot_id, r.first_seq, r.last_seq) for r in a.stored] == [
        (Stream.LUMINAIRE, big, 0, 99), (Stream.MESSAGE, 9, 3, 3)]
    (b,) = got[topic("t", "b", Kind.RECEIPT)]
    assert [(r.first_seq, r.last_seq) for r in b.stored] == [(0, 3)]
    assert sorted((r.stream, r.first_seq, r.last_seq, r.reason) for r in b.rejected) == [
        (Stream.MESSAGE, 9, 9, "db_rejected:untranslatable_character"),
        (Stream.SENSOR, 10, 11, "time_out_of_range")]


def test_an_empty_batch_gives_no_receipt() -> None:
    assert build([], *_arrays([])) == []


key_st = st.builds(MessageKey, st.sampled_from(list(Stream)), st.integers(0, 2),
                   st.integers(0, 300), st.integers(1, 40))


@given(st.lists(st.tuples(st.integers(0, 2), key_st), max_size=80), st.lists(key_st, max_size=30))
def test_receipts_cover_exactly_what_was_stored(entries: list[tuple[int, MessageKey]],
                                                probes: list[MessageKey]) -> None:
    topics = [topic("t", f"c{i}", Kind.TELEMETRY) for i in range(3)]
    got = _parsed(build(topics, *_arrays(entries)))
    for c in range(3):
        receipts = got.get(topic("t", f"c{c}", Kind.RECEIPT), [])
        mine = [k for m, k in entries if m == c]
        items = {(k.stream, k.boot_id, s) for k in mine for s in range(k.first_seq, k.last_seq + 1)}
        for key in mine:
            assert any(covered(r, key) == "stored" for r in receipts)
        for key in probes:
            whole = all((key.stream, key.boot_id, s) in items for s in range(key.first_seq, key.last_seq + 1))
            assert any(covered(r, key) for r in receipts) == whole
