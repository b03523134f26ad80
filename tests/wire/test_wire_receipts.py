"""Receipts: the key that names a message sent up, keys merged into ranges, and what a receipt
covers."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from wire import messages
from wire.codec import encode_luminaire, encode_sensor
from wire.messages import MAX_RECEIPT_RANGES, Ack, AckStatus, Receipt, SeqRange, Stream
from wire.receipts import MessageKey, covered, key_of, merge, receipt_json, receipts_for
from wire.records import LUMINAIRE_DTYPE, SENSOR_DTYPE
from wire.topics import Kind, topic

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_receipt_topic_is_part_of_the_contract() -> None:
    assert topic("ixelles", "ctl-1", Kind.RECEIPT) == "luciole/v1/ixelles/ctl-1/receipt"


def test_keys_of_telemetry_events_and_acks() -> None:
    lum = np.zeros(3, dtype=LUMINAIRE_DTYPE)
    sen = np.zeros(2, dtype=SENSOR_DTYPE)
    assert key_of(Kind.TELEMETRY, encode_luminaire(7, 100, lum)) == MessageKey(Stream.LUMINAIRE, 7, 100, 3)
    assert key_of(Kind.TELEMETRY, encode_sensor(2**64 - 1, 5, sen)) == MessageKey(
        Stream.SENSOR, 2**64 - 1, 5, 2)
    ack = Ack(controller="c", boot_id=7, seq=43, command_id="x", status=AckStatus.DONE, time=NOW)
    assert key_of(Kind.ACK, messages.dumps(ack)) == MessageKey(Stream.MESSAGE, 7, 43, 1)


@pytest.mark.parametrize(("kind", "payload"), [
    (Kind.TELEMETRY, b""), (Kind.TELEMETRY, b"XX" + bytes(30)), (Kind.EVENT, b"{not json"),
    (Kind.EVENT, b"[1, 2]"), (Kind.EVENT, b'{"boot_id": -1, "seq": 3}'),
    (Kind.ACK, b'{"boot_id": true, "seq": 3}'), (Kind.STATE, b'{"boot_id": 1, "seq": 3}'),
])
def test_payloads_that_cannot_name_themselves_have_no_key(kind: Kind, payload: bytes) -> None:
    assert key_of(kind, payload) is None


def test_merge_joins_adjacent_and_overlapping_keys_per_stream_and_boot() -> None:
    keys = [MessageKey(Stream.LUMINAIRE, 7, 50, 50), MessageKey(Stream.LUMINAIRE, 7, 0, 50),
            MessageKey(Stream.LUMINAIRE, 7, 150, 4), MessageKey(Stream.LUMINAIRE, 8, 100, 1),
            MessageKey(Stream.MESSAGE, 7, 3, 1), MessageKey(Stream.MESSAGE, 7, 3, 1)]
    assert merge(keys) == [(Stream.LUMINAIRE, 7, 0, 99), (Stream.LUMINAIRE, 7, 150, 153),
                           (Stream.LUMINAIRE, 8, 100, 100), (Stream.MESSAGE, 7, 3, 3)]


keys_st = st.lists(st.builds(MessageKey, st.sampled_from(list(Stream)), st.integers(0, 3),
                             st.integers(0, 500), st.integers(1, 60)), max_size=60)


@given(keys_st, keys_st)
def test_a_receipt_covers_exactly_the_keys_it_was_built_from(stored: list[MessageKey],
                                                           others: list[MessageKey]) -> None:
    receipts = receipts_for("ctl-1", stored, [], NOW)
    for key in stored:
        assert any(covered(r, key) == "stored" for r in receipts)
    items = {(k.stream, k.boot_id, s) for k in stored for s in range(k.first_seq, k.last_seq + 1)}
    for key in others:
        whole = all((key.stream, key.boot_id, s) in items for s in range(key.first_seq, key.last_seq + 1))
        assert any(covered(r, key) for r in receipts) == whole


def test_rejected_keys_carry_their_reason_and_big_receipts_are_split() -> None:
    stored = [MessageKey(Stream.MESSAGE, 1, 2 * i, 1) for i in range(MAX_RECEIPT_RANGES + 5)]
    bad = MessageKey(Stream.SENSOR, 1, 0, 2)
    receipts = receipts_for("ctl-1", stored, [(bad, "unknown_controller")], NOW)
    assert len(receipts) == 2
    assert sum(len(r.stored) for r in receipts) == MAX_RECEIPT_RANGES + 5
    assert covered(receipts[0], bad) == "unknown_controller"
    for r in receipts:  # each is a valid message on the wire
        assert messages.loads(Receipt, messages.dumps(r)) == r


def test_a_range_must_be_ordered() -> None:
    with pytest.raises(ValueError):
        SeqRange(stream=Stream.LUMINAIRE, boot_id=1, first_seq=5, last_seq=4)


@given(keys_st, keys_st, st.sampled_from(["unknown_controller", "bad_event", "length_mismatch"]))
def test_the_fast_receipt_json_is_the_models_own(stored: list[MessageKey], bad: list[MessageKey],
                                                 reason: str) -> None:
    model = receipts_for("ctl-1", stored, [(k, reason) for k in bad], NOW)
    for r in model:
        fast = receipt_json(r.id, r.controller, "2026-01-01T00:00:00Z",
                            [(x.stream.value, x.boot_id, x.first_seq, x.last_seq) for x in r.stored],
                            [(x.stream.value, x.boot_id, x.first_seq, x.last_seq, x.reason)
                             for x in r.rejected])
        assert fast == messages.dumps(r)
        assert messages.loads(Receipt, fast) == r


def test_the_largest_receipt_fits_a_json_message() -> None:
    big = 2**64 - 1 - 4 * MAX_RECEIPT_RANGES
    stored = [MessageKey(Stream.LUMINAIRE, 2**64 - 1, big + 2 * i, 1) for i in range(MAX_RECEIPT_RANGES)]
    refused = [(MessageKey(Stream.SENSOR, 2**64 - 1, big + 2 * i, 1), "x" * 64)
               for i in range(MAX_RECEIPT_RANGES)]
    (receipt,) = receipts_for("c" * 64, stored, refused, NOW)
    assert len(messages.dumps(receipt)) <= messages.MAX_JSON_BYTES
    assert messages.loads(Receipt, messages.dumps(receipt)) == receipt
