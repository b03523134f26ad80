"""Hypothesis strategies of what a hostile or buggy controller could publish: arbitrary bytes and
JSON, and messages shaped like the contract's with any field replaced by something else (any
unicode, NUL and lone surrogates included, any number, any date string, nested and huge values).
"""

from __future__ import annotations

import json
import random
import struct
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import numpy as np
from hypothesis import strategies as st

from wire.codec import LUMINAIRE_DTYPE, SENSOR_DTYPE, encode_luminaire, encode_sensor
from wire.messages import AckStatus, EventKind, OfflineReason, Severity
from wire.records import (
    HEADER_DTYPE,
    LUMINAIRE_RANGES,
    MAGIC,
    TIME_MIN_US,
    VERSION,
    Quantity,
    RecordType,
)

Draw = Callable[..., Any]

ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=40)  # NUL, lone surrogates too
ANY_NUMBER = st.one_of(
    st.integers(), st.floats(),  # NaN and ±Infinity are written as such: not JSON
    st.sampled_from([2**53, -(2**53), 2**63, 2**64, -(2**63) - 1, 10**30, 10**400, 1e308, -0.0]),
)
SCALARS = st.one_of(st.none(), st.booleans(), ANY_NUMBER, ANY_TEXT)
ANY_JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(ANY_TEXT, inner, max_size=5),
    max_leaves=15,
)
OFFSETS = st.builds(timezone, st.timedeltas(min_value=-timedelta(hours=23, minutes=59),
                                            max_value=timedelta(hours=23, minutes=59)))
ANY_DATETIME = st.datetimes(min_value=datetime(1, 1, 1),
                            max_value=datetime(9999, 12, 31, 23, 59, 59),
                            timezones=st.one_of(st.none(), OFFSETS))
ANY_TIME = st.one_of(ANY_DATETIME.map(datetime.isoformat), ANY_TEXT, ANY_NUMBER,
                     st.sampled_from(["9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00",
                                      "2014-12-31T23:59:59Z", "2026-02-30T00:00:00Z",
                                      "2026-01-01T24:00:00Z", "2026-01-01T00:00:60Z"]))
HUGE = st.one_of(
    st.integers(60_000, 70_000).map(lambda n: "x" * n),  # past the 64 KiB limit
    st.integers(100, 2000).map(lambda n: [[]] * n),
    st.integers(30, 300).map(lambda n: json.loads("[" * n + "]" * n)),
)
ANYTHING = st.one_of(SCALARS, ANY_JSON, ANY_TIME, HUGE)


_ID_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:-"
_UNICODE = [chr(c) for c in (*range(1, 0x250), *range(0x370, 0x3ff), *range(0x4e00, 0x4e40),
                             0x1F4A1, 0x1F6A8, 0xFFFD, 0x200B, 0xFEFF)]  # no NUL, no surrogates


def _text(rng: random.Random, alphabet: str | list[str], low: int, high: int) -> str:
    return "".join(rng.choices(alphabet, k=rng.randint(low, high)))


def _detail_value(rng: random.Random) -> Any:
    return rng.choice([rng.random() < 0.5, rng.randint(-(2**53) + 1, 2**53 - 1),
                       rng.uniform(-1e6, 1e6), _text(rng, _UNICODE, 0, 40)])


def _iso(us: int) -> str:
    return datetime.fromtimestamp(us / 1e6, UTC).isoformat().replace("+00:00", "Z")


class Hostile:
    """Strategies for one test database's fleet: `controllers` are registered, `commands` maps
    each command id to its controller; valid times fall in the days before `now_us`."""

    def __init__(self, tenant: str, controllers: list[str], commands: dict[str, str],
                 now_us: int) -> None:
        self.tenant = tenant
        self.controllers = controllers
        self.commands = commands
        self.now_us = now_us
        # one message in ten on the topic of an unknown controller
        self.topic_controller = st.sampled_from([*controllers * 3, "ghost"])

    def topic(self, controller: str, kind: str) -> str:
        return f"luciole/v1/{self.tenant}/{controller}/{kind}"

    # ------------------------------------------------------------------ JSON kinds
    def _valid(self, kind: str, rng: random.Random, controller: str) -> dict[str, Any]:
        """A valid message of `kind` (its values from `rng`: fast; hypothesis draws the hostile
        values that replace some of them)."""
        doc: dict[str, Any] = {
            "v": 1, "id": _text(rng, _ID_CHARS, 1, 64), "controller": controller,
            "boot_id": rng.choice([rng.getrandbits(64), rng.getrandbits(16)]),
            "seq": rng.choice([rng.getrandbits(64), rng.getrandbits(24)]),
            "time": _iso(rng.randrange(self.now_us - 30 * 86_400_000_000, self.now_us)),
        }
        if kind == "event":
            doc |= {"kind": str(rng.choice(list(EventKind))),
                    "severity": str(rng.choice(list(Severity))),
                    "luminaire": rng.choice([None, rng.randrange(1024)]),
                    "detail": {_text(rng, _UNICODE, 1, 20): _detail_value(rng)
                               for _ in range(rng.randrange(6))}}
        elif kind == "ack":
            status = rng.choice(list(AckStatus))
            own = sorted(c for c, owner in self.commands.items() if owner == controller)
            others = sorted(self.commands)
            choices = [rng.choice(others), _text(rng, _ID_CHARS, 1, 64)]
            if own:
                choices += [rng.choice(own)] * 4  # mostly a command of its own
            doc |= {"command_id": rng.choice(choices), "status": str(status)}
            if status in (AckStatus.FAILED, AckStatus.REFUSED) or rng.random() < 0.3:
                doc["reason"] = _text(rng, _UNICODE, 1, 40)
        else:
            online = rng.random() < 0.5
            doc |= {"online": online, "firmware": _text(rng, _UNICODE, 1, 20),
                    "luminaires": rng.randrange(1025)}
            if not online and rng.random() < 0.8:
                doc["reason"] = str(rng.choice(list(OfflineReason)))
        return doc

    def json_message(self, kind: str) -> st.SearchStrategy[tuple[str, bytes]]:
        @st.composite
        def build(draw: Draw) -> tuple[str, bytes]:
            controller = draw(self.topic_controller)
            form = draw(st.integers(0, 99))
            if form < 5:
                return self.topic(controller, kind), draw(st.binary(max_size=300))
            if form < 12:
                data = json.dumps(draw(ANY_JSON)).encode("utf-8", "surrogatepass")
                return self.topic(controller, kind), data
            rng = random.Random(draw(st.integers(0, 2**64)))
            named = controller if rng.random() < 0.9 else rng.choice(self.controllers)
            doc = self._valid(kind, rng, named)
            for name in list(doc):
                roll = rng.random()
                if roll < 0.02:
                    del doc[name]  # missing
                elif roll < 0.08:
                    doc[name] = draw(ANYTHING)  # any unicode, number, date string, nesting, size
            if kind == "event" and "detail" in doc and rng.random() < 0.2 and isinstance(
                    doc["detail"], dict):
                doc["detail"][draw(ANY_TEXT)] = draw(ANYTHING)
            if rng.random() < 0.05:
                doc[draw(ANY_TEXT)] = draw(ANYTHING)  # an extra field
            text = json.dumps(doc, ensure_ascii=rng.random() < 0.5)  # NaN, Infinity as such
            return self.topic(controller, kind), text.encode("utf-8", "surrogatepass")

        return build()

    # ------------------------------------------------------------------ telemetry
    def _records(self, draw: Draw, record_type: RecordType, n: int) -> np.ndarray:
        """n records: any bytes at all, or fields each drawn from a palette of valid values,
        edges and just beyond, NaN, infinities and the type's extremes. One seed is drawn and
        numpy fills the fields: a draw per field would make the run ten times slower."""
        dtype = record_type.dtype
        rng = np.random.default_rng(draw(st.integers(0, 2**63)))
        if draw(st.integers(0, 3)) == 0:
            return np.frombuffer(rng.bytes(n * dtype.itemsize), dtype=dtype).copy()
        records = np.zeros(n, dtype=dtype)
        recent = rng.integers(self.now_us - 30 * 86_400_000_000, self.now_us, n)
        times = np.array([TIME_MIN_US, TIME_MIN_US - 1, self.now_us + 86_400_000_000,
                          self.now_us + 86_400_000_001, -(2**63), 2**63 - 1], dtype=np.int64)
        records["time_us"] = np.where(rng.random(n) < 0.8, recent, rng.choice(times, n))
        limits = {name: (low, high) for name, low, high in (
            LUMINAIRE_RANGES if record_type is RecordType.LUMINAIRE else ())}
        for name in dtype.names or ():
            if name == "time_us":
                continue
            if record_type is RecordType.SENSOR and name == "value":
                quantity = records["quantity"]
                lows = np.array([Quantity(q).low if q in _QUANTITIES else 0.0 for q in quantity])
                highs = np.array([Quantity(q).high if q in _QUANTITIES else 1.0 for q in quantity])
                records[name] = _palette(rng, dtype[name], lows, highs, n)
                continue
            if record_type is RecordType.SENSOR and name == "quantity":
                records[name] = rng.choice([*_QUANTITIES, 0, 15, 99, 65535], n)
                continue
            kind_info = np.iinfo(dtype[name]) if dtype[name].kind in "iu" else None
            low, high = limits.get(name, (kind_info.min, kind_info.max) if kind_info else (0, 1))
            records[name] = _palette(rng, dtype[name], np.full(n, low), np.full(n, high), n)
        return records

    def telemetry(self) -> st.SearchStrategy[tuple[str, bytes]]:
        @st.composite
        def build(draw: Draw) -> tuple[str, bytes]:
            controller = draw(self.topic_controller)
            form = draw(st.integers(0, 99))
            if form < 8:
                return self.topic(controller, "telemetry"), draw(st.binary(max_size=200))
            record_type = draw(st.sampled_from(RecordType))
            n = draw(st.integers(1, 8))
            records = self._records(draw, record_type, n)
            encode = encode_luminaire if record_type is RecordType.LUMINAIRE else encode_sensor
            # boot id and sequence at random: a controller that reuses sequence numbers within a
            # boot has its overlapping records stored twice (the ledger keys a message by its
            # first one), which the oracle could not tell apart
            ids = np.random.default_rng(draw(st.integers(0, 2**63)))
            boot = int(ids.integers(0, 2**64, dtype=np.uint64))
            first = [int(ids.integers(0, 2**62)), 2**63 - 4, 2**64 - 9][int(ids.integers(0, 3))]
            payload = bytearray(encode(boot, first, records))
            if form < 20:  # a header field or a few bytes changed
                header = np.frombuffer(bytes(payload[:24]), dtype=HEADER_DTYPE).copy()
                name = draw(st.sampled_from(HEADER_DTYPE.names))
                header[name] = {"magic": draw(st.sampled_from([MAGIC, b"XX"])),
                                "version": draw(st.sampled_from([VERSION, 0, 2, 255])),
                                }.get(name, draw(st.integers(0, 255)))
                payload[:24] = header.tobytes()
            elif form < 28:
                for _ in range(draw(st.integers(1, 4))):
                    payload[draw(st.integers(0, len(payload) - 1))] = draw(st.integers(0, 255))
            elif form < 32:
                payload = payload[: draw(st.integers(0, len(payload)))]
            return self.topic(controller, "telemetry"), bytes(payload)

        return build()


_QUANTITIES = [int(q) for q in Quantity]


def _palette(rng: np.random.Generator, dtype: np.dtype, low: np.ndarray, high: np.ndarray,
             n: int) -> np.ndarray:
    """n values of `dtype`: mostly inside [low, high], else an edge, just beyond one, or an
    extreme of the type (NaN and infinities for floats)."""
    if dtype.kind == "f":
        inside = low + rng.random(n) * (high - low)
        info = np.finfo(dtype)
        odd = np.stack([low, high, np.nextafter(low, -np.inf), np.nextafter(high, np.inf),
                        np.full(n, np.nan), np.full(n, np.inf), np.full(n, -np.inf),
                        np.full(n, info.max), np.full(n, -0.0)])
    else:
        info = np.iinfo(dtype)
        top = np.minimum(high + 1, info.max)
        inside = rng.integers(low, top, n, endpoint=True) if n else low
        odd = np.stack([low, high, np.maximum(low - 1, info.min), top, np.full(n, info.max),
                        np.full(n, info.min), np.full(n, 32768), np.full(n, 40000)])
        odd = np.clip(odd, info.min, info.max)
    pick = odd[rng.integers(0, odd.shape[0], n), np.arange(n)]
    return np.where(rng.random(n) < 0.75, inside, pick).astype(dtype)


def telemetry_identity(payload: bytes) -> tuple[int, int, int, int] | None:
    """(record type, count, boot id, first seq) of a payload with a plausible header."""
    if len(payload) < 24:
        return None
    _magic, _version, rtype, count, _size, boot, first = struct.unpack("<2sBBHHQQ", payload[:24])
    return rtype, count, boot, first


def records_of(payload: bytes) -> np.ndarray:
    rtype = payload[3]
    dtype = LUMINAIRE_DTYPE if rtype == RecordType.LUMINAIRE else SENSOR_DTYPE
    return np.frombuffer(payload[24:], dtype=dtype)
