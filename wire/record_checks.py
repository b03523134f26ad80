"""Vectorised validation of decoded records: one reject reason per bad record."""

from __future__ import annotations

import numpy as np

from wire.records import LUMINAIRE_DTYPE, LUMINAIRE_RANGES, Quantity
from wire.rejects import RejectReason

_OK = 0
CHUNK_RECORDS = 32_768  # 1.5 MB of luminaire records: each field pass reads from cache

_LUMINAIRE_CHECKS: tuple[tuple[str, float, float, bool, bool, int, int], ...] = tuple(
    (
        field,
        low,
        high,
        LUMINAIRE_DTYPE[field].kind == "f",
        # a low bound at or below the type's minimum cannot fail: skip it on the hot path
        LUMINAIRE_DTYPE[field].kind == "f" or low > np.iinfo(LUMINAIRE_DTYPE[field]).min,
        RejectReason(f"not_finite:{field}").code if LUMINAIRE_DTYPE[field].kind == "f" else 0,
        RejectReason(f"out_of_range:{field}").code,
    )
    for field, low, high in LUMINAIRE_RANGES
)

_QUANTITY_SLOTS = max(Quantity) + 2  # codes past the table share the last, unknown slot
_QUANTITY_LOW = np.full(_QUANTITY_SLOTS, np.inf)
_QUANTITY_HIGH = np.full(_QUANTITY_SLOTS, -np.inf)
_QUANTITY_KNOWN = np.zeros(_QUANTITY_SLOTS, dtype=bool)
for _q in Quantity:
    _QUANTITY_LOW[_q] = _q.low
    _QUANTITY_HIGH[_q] = _q.high
    _QUANTITY_KNOWN[_q] = True


def _time_ok(times: np.ndarray, time_low: int, time_high: int) -> np.ndarray:
    ok = times >= time_low
    ok &= times <= time_high
    return ok


def _first(codes: np.ndarray, failed: np.ndarray, code: int) -> None:
    """Give `code` to records that failed this check and no earlier one."""
    codes[failed & (codes == _OK)] = code


def _luminaire_ok(records: np.ndarray, time_low: int, time_high: int) -> np.ndarray:
    """Fast path: one bool per record, true when every field is valid."""
    ok = np.empty(records.shape[0], dtype=bool)
    passed = np.empty(min(records.shape[0], CHUNK_RECORDS), dtype=bool)
    for start in range(0, records.shape[0], CHUNK_RECORDS):  # chunks stay in cache
        chunk = records[start : start + CHUNK_RECORDS]
        chunk_ok, chunk_passed = ok[start : start + CHUNK_RECORDS], passed[: chunk.shape[0]]
        times = chunk["time_us"]
        np.greater_equal(times, time_low, out=chunk_ok)
        np.less_equal(times, time_high, out=chunk_passed)
        chunk_ok &= chunk_passed
        for field, low, high, _is_float, check_low, _nf, _oor in _LUMINAIRE_CHECKS:
            values = chunk[field]
            if check_low:  # False for NaN: finiteness comes for free
                np.greater_equal(values, low, out=chunk_passed)
                chunk_ok &= chunk_passed
            np.less_equal(values, high, out=chunk_passed)
            chunk_ok &= chunk_passed
    return ok


def luminaire_rejects(
    records: np.ndarray, time_low: int, time_high: int
) -> tuple[np.ndarray, np.ndarray]:
    """Return (indices, reason codes) of invalid luminaire records, in index order."""
    bad = np.flatnonzero(~_luminaire_ok(records, time_low, time_high))
    codes = np.zeros(bad.shape[0], dtype=np.uint8)
    if bad.shape[0] == 0:
        return bad, codes
    sub = records[bad]
    times = sub["time_us"]
    _first(codes, (times < time_low) | (times > time_high), RejectReason.OUT_OF_RANGE_TIME_US.code)
    for field, low, high, is_float, _check_low, not_finite, out_of_range in _LUMINAIRE_CHECKS:
        values = sub[field]
        if is_float:
            _first(codes, ~np.isfinite(values), not_finite)
        _first(codes, (values < low) | (values > high), out_of_range)
    return bad, codes


def sensor_rejects(
    records: np.ndarray, time_low: int, time_high: int
) -> tuple[np.ndarray, np.ndarray]:
    """Return (indices, reason codes) of invalid sensor records, in index order."""
    slot = np.minimum(records["quantity"], _QUANTITY_SLOTS - 1)
    values = records["value"]
    ok = _time_ok(records["time_us"], time_low, time_high)
    ok &= values >= _QUANTITY_LOW[slot]  # False for NaN and for unknown quantities
    ok &= values <= _QUANTITY_HIGH[slot]
    bad = np.flatnonzero(~ok)
    codes = np.zeros(bad.shape[0], dtype=np.uint8)
    if bad.shape[0] == 0:
        return bad, codes
    sub = records[bad]
    times, slot, values = sub["time_us"], slot[bad], sub["value"]
    _first(codes, (times < time_low) | (times > time_high), RejectReason.OUT_OF_RANGE_TIME_US.code)
    _first(codes, ~_QUANTITY_KNOWN[slot], RejectReason.OUT_OF_RANGE_QUANTITY.code)
    _first(codes, ~np.isfinite(values), RejectReason.NOT_FINITE_VALUE.code)
    _first(codes, ~(values >= _QUANTITY_LOW[slot]) | ~(values <= _QUANTITY_HIGH[slot]),
           RejectReason.OUT_OF_RANGE_VALUE.code)
    return bad, codes
