"""Pure parts of ingest: the binary COPY layout, batching policy, per-luminaire reduction,
message preparation and the rollup reference."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.batching import BatchPolicy, backoff
from ingest.copy_binary import HEADER, PG_EPOCH_US, TRAILER, CopyLayout, PgType
from ingest.ledger import first_occurrences
from ingest.prepare import IngestReason, LedgerKind, prepare
from ingest.rollup import reference_buckets
from ingest.writer import storable
from wire.codec import encode_luminaire
from wire.rejects import RejectReason

from ingest_helpers import T0_US, luminaire_records

LAYOUT = CopyLayout("t", (("time", PgType.TIMESTAMPTZ), ("k", PgType.INTEGER),
                          ("s", PgType.SMALLINT), ("x", PgType.REAL), ("e", PgType.DOUBLE),
                          ("b", PgType.BIGINT)))


def test_copy_buffer_layout_matches_the_postgres_binary_format() -> None:
    buf = LAYOUT.encode({"time": np.array([PG_EPOCH_US + 5]), "k": np.array([7]),
                         "s": np.array([-2]), "x": np.array([1.5]), "e": np.array([2.25]),
                         "b": np.array([-(1 << 40)])}).tobytes()
    assert buf.startswith(HEADER) and buf.endswith(TRAILER)
    row = buf[len(HEADER):-len(TRAILER)]
    expected = (struct.pack(">h", 6) + struct.pack(">iq", 8, 5) + struct.pack(">ii", 4, 7)
                + struct.pack(">ih", 2, -2) + struct.pack(">if", 4, 1.5) + struct.pack(">id", 8, 2.25)
                + struct.pack(">iq", 8, -(1 << 40)))
    assert row == expected


def test_copy_buffer_of_no_rows_is_header_and_trailer() -> None:
    empty = {name: np.zeros(0) for name, _ in LAYOUT.columns}
    assert LAYOUT.encode(empty).tobytes() == HEADER + TRAILER


def test_copy_buffer_refuses_missing_or_ragged_columns() -> None:
    with pytest.raises(ValueError, match="no values"):
        LAYOUT.encode({"time": np.zeros(1)})
    cols = {name: np.zeros(2) for name, _ in LAYOUT.columns}
    cols["k"] = np.zeros(3)
    with pytest.raises(ValueError, match="different lengths"):
        LAYOUT.encode(cols)


@pytest.mark.parametrize(
    ("messages", "records", "age", "due"),
    [(0, 0, 10.0, False), (1, 50, 0.0, False), (1, 50, 0.2, True), (400, 10, 0.0, True),
     (10, 50_000, 0.0, True), (399, 49_999, 0.19, False)],
)
def test_batch_closes_on_size_or_time(messages: int, records: int, age: float, due: bool) -> None:
    assert BatchPolicy(400, 50_000, 0.2).due(messages, records, age) is due


def test_backoff_grows_and_is_capped() -> None:
    delays = [backoff(a, 0.1, 5.0, 0.0) for a in range(10)]
    assert delays[:3] == [0.1, 0.2, 0.4] and max(delays) == 5.0
    assert 2.5 <= backoff(20, 0.1, 5.0, 0.99) <= 5.0


def test_duplicate_keys_inside_a_batch_keep_their_first_copy() -> None:
    c = np.array([1, 2, 1, 1], np.int32)
    b = np.array([9, 9, 9, 9], np.int64)
    s = np.array([0, 0, 0, 50], np.int64)
    k = np.array([1, 1, 1, 1], np.int16)
    assert first_occurrences(c, b, s, k).tolist() == [0, 1, 3]


def test_prepare_keeps_valid_records_beside_bad_ones() -> None:
    good = luminaire_records(3, T0_US)
    mixed = luminaire_records(3, T0_US)
    mixed["power_w"][1] = np.nan
    batch = [
        ("luciole/v1/t/c1/telemetry", encode_luminaire(1, 0, good)),
        ("luciole/v1/t/c1/telemetry", encode_luminaire(1, 3, mixed)),
        ("luciole/v1/t/zz/telemetry", encode_luminaire(1, 0, good)),
        ("luciole/v1/-bad/c1/telemetry", encode_luminaire(1, 0, good)),
        ("luciole/v1/t/c1/telemetry", b"LC\x02" + bytes(40)),
        ("luciole/v1/t/c1/event", b"{not json"),
    ]
    p = prepare(batch, lambda t, c: {"c1": 11}.get(c) if t == "t" else None, T0_US + 1)
    assert p.luminaire.shape[0] == 5
    assert p.lum_msg.tolist() == [0, 0, 0, 1, 1]
    assert p.lum_seq.tolist() == [0, 1, 2, 3, 5]
    assert set(p.lum_controller.tolist()) == {11}
    assert p.key_msg.tolist() == [0, 1]
    assert p.key_kind.tolist() == [LedgerKind.LUMINAIRE] * 2
    reasons = {(r.msg, r.record, r.reason) for r in p.rejects}
    assert reasons == {
        (1, 1, RejectReason.NOT_FINITE_POWER_W.value),
        (2, None, IngestReason.UNKNOWN_CONTROLLER.value),
        (3, None, IngestReason.BAD_TOPIC.value),
        (4, None, RejectReason.BAD_VERSION.value),
        (5, None, IngestReason.BAD_EVENT.value),
    }


readings = st.lists(
    st.tuples(st.integers(0, 2), st.integers(0, 7200), st.integers(0, 10**6), st.floats(0, 1e6)),
    max_size=60, unique_by=lambda r: (r[0], r[1], r[2]),
)


@settings(max_examples=200)
@given(readings)
def test_reference_rollup_is_independent_of_arrival_order(rows: list) -> None:
    forward, backward = reference_buckets(rows), reference_buckets(list(reversed(rows)))
    assert forward.keys() == backward.keys()
    for key, (energy, samples) in forward.items():
        assert backward[key][1] == samples
        assert backward[key][0] == pytest.approx(energy, rel=1e-9, abs=1e-6)


def test_reference_rollup_counts_a_reset_from_zero() -> None:
    rows = [(0, 0, 0, 100.0), (0, 60, 1, 130.0), (0, 120, 2, 5.0), (0, 1000, 3, 25.0)]
    assert reference_buckets(rows) == {(0, 0): (35.0, 3), (0, 900): (20.0, 1)}


# --- hostile JSON never escapes prepare -----------------------------------------------------

EVENT_JSON = ('{"v":1,"id":"e1","controller":"c1","boot_id":1,"seq":%d,"kind":"boot",'
              '"severity":"info","time":"%s"}')


@pytest.mark.parametrize("when", ["9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00"])
def test_prepare_survives_an_event_time_at_the_edge_of_the_calendar(when: str) -> None:
    batch = [
        ("luciole/v1/t/c1/event", (EVENT_JSON % (1, when)).encode()),
        ("luciole/v1/t/c1/telemetry", encode_luminaire(1, 0, luminaire_records(2, T0_US))),
    ]
    p = prepare(batch, lambda t, c: 11, T0_US + 1)
    assert [(r.msg, r.record, r.reason) for r in p.rejects] == [(0, None, IngestReason.BAD_EVENT)]
    assert p.luminaire.shape[0] == 2 and not p.events


def test_prepare_refuses_event_times_outside_the_telemetry_window() -> None:
    inside = ["2015-01-01T00:00:00Z", "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"]
    outside = ["0001-01-01T00:00:00Z", "2014-12-31T23:59:59Z", "2026-01-02T00:00:01Z",
               "9999-12-31T23:59:59Z"]
    batch = [("luciole/v1/t/c1/event", (EVENT_JSON % (i, when)).encode())
             for i, when in enumerate(inside + outside)]
    p = prepare(batch, lambda t, c: 11, T0_US)  # now = 2026-01-01T00:00:00Z
    assert [m for m, _, _ in p.events] == [0, 1, 2]
    assert [(r.msg, r.reason) for r in p.rejects] == [
        (i, IngestReason.BAD_EVENT) for i in range(3, 7)]


def test_copy_buffer_refuses_integers_its_column_cannot_hold() -> None:
    layout = CopyLayout("t", (("s", PgType.SMALLINT), ("i", PgType.INTEGER)))
    fits = {"s": np.array([0, 32767], np.uint16), "i": np.array([0, 65535], np.uint16)}
    assert layout.encode(fits).shape[0] > 0
    with pytest.raises(ValueError, match=r"t\.s: values 0\.\.40000 do not fit int16"):
        layout.encode({"s": np.array([0, 40000], np.uint16), "i": np.zeros(2, np.uint16)})
    with pytest.raises(ValueError, match="do not fit int32"):
        layout.encode({"s": np.zeros(1, np.int16), "i": np.array([2**31], np.int64)})


@pytest.mark.parametrize(
    ("text", "stored"),
    [("luciole/v1/t/c/event", "luciole/v1/t/c/event"), ("a\x00b", "a\ufffdb"),
     ("x\ud800y", "x?y"), ("é\U0001f4a1", "é\U0001f4a1"), (None, None)],
)
def test_dead_letter_text_is_made_storable(text: str | None, stored: str | None) -> None:
    assert storable(text) == stored
