"""Vectorised validation of decoded records: one reject reason per bad record.

The checks are derived from `wire.records`: each field's valid range within what its database
column holds (`LUMINAIRE_LIMITS`, `SENSOR_LIMITS`), so a field that could be stored other than as
sent is always checked. A derived check without its reject reason fails at import."""

from __future__ import annotations

import numpy as np

from wire.kernels import within_limits
from wire.records import LUMINAIRE_DTYPE, LUMINAIRE_LIMITS, SENSOR_DTYPE, SENSOR_LIMITS, Quantity
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
    for field, low, high in LUMINAIRE_LIMITS
)

_SENSOR_INT_CHECKS: tuple[tuple[str, int, int, int], ...] = tuple(
    (field, int(low), int(high), RejectReason(f"out_of_range:{field}").code)
    for field, low, high in SENSOR_LIMITS
    if SENSOR_DTYPE[field].kind in "iu"  # the value's range depends on its quantity (below)
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


def _column_plan(dtype: np.dtype, limits) -> tuple:
    """Group (field, low, high) by field type, as column indices into 2-D views of a record.

    A record of `dtype` viewed as an (n, itemsize // size) array of one field type holds
    each field of that type at column offset // size (all fields are naturally aligned).
    """
    plan = {}
    for field, low, high in limits:
        ftype, offset = dtype.fields[field][:2]
        assert offset % ftype.itemsize == 0, field
        cols, lows, highs = plan.setdefault(ftype, ([], [], []))
        cols.append(offset // ftype.itemsize)
        lows.append(low)
        highs.append(high)
    return tuple(
        (ftype, np.array(c, dtype=np.int64), np.array(lo, dtype=ftype), np.array(hi, dtype=ftype))
        for ftype, (c, lo, hi) in plan.items()
    )


_LUMINAIRE_PLAN = _column_plan(LUMINAIRE_DTYPE, LUMINAIRE_LIMITS)
for _ftype, _cols, _low, _high in _LUMINAIRE_PLAN:  # limits must survive the field's type
    assert all(float(a) == float(b) for a, b in zip(_low, [r[1] for r in LUMINAIRE_LIMITS
                                                           if LUMINAIRE_DTYPE[r[0]] == _ftype]))
    assert all(float(a) == float(b) for a, b in zip(_high, [r[2] for r in LUMINAIRE_LIMITS
                                                            if LUMINAIRE_DTYPE[r[0]] == _ftype]))
_TIME_COL = np.array([LUMINAIRE_DTYPE.fields["time_us"][1] // 8], dtype=np.int64)


def _luminaire_ok(records: np.ndarray, time_low: int, time_high: int) -> np.ndarray:
    """Fast path: one bool per record, true when every field is valid.

    Runs the `within_limits` kernel over cache-sized chunks, once per field type, on
    2-D views of the records (one column per field of that type).
    """
    n = records.shape[0]
    ok = np.ones(n, dtype=bool)
    raw = records.view(np.uint8).reshape(n, LUMINAIRE_DTYPE.itemsize)
    time_limits = np.array([time_low], np.int64), np.array([time_high], np.int64)
    plan = ((np.dtype(np.int64), _TIME_COL, *time_limits), *_LUMINAIRE_PLAN)
    views = [raw.view(ftype) for ftype, *_ in plan]
    for start in range(0, n, CHUNK_RECORDS):  # chunks stay in cache across the passes
        stop = start + CHUNK_RECORDS
        for view, (_ftype, cols, low, high) in zip(views, plan):
            within_limits(view[start:stop], cols, low, high, ok[start:stop])
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
    found = codes != _OK  # the reasons above are authoritative over the fast path
    return bad[found], codes[found]


def sensor_rejects(
    records: np.ndarray, time_low: int, time_high: int
) -> tuple[np.ndarray, np.ndarray]:
    """Return (indices, reason codes) of invalid sensor records, in index order."""
    # a signalling NaN from the wire raises numpy's "invalid value" warning when widened to
    # float64 for the comparison; it stays NaN and is rejected as not finite
    with np.errstate(invalid="ignore"):
        return _sensor_rejects(records, time_low, time_high)


def _sensor_rejects(
    records: np.ndarray, time_low: int, time_high: int
) -> tuple[np.ndarray, np.ndarray]:
    slot = np.minimum(records["quantity"], _QUANTITY_SLOTS - 1)
    values = records["value"]
    ok = _time_ok(records["time_us"], time_low, time_high)
    for field, low, high, _code in _SENSOR_INT_CHECKS:
        column = records[field]
        if low > np.iinfo(column.dtype).min:
            ok &= column >= low
        ok &= column <= high
    ok &= values >= _QUANTITY_LOW[slot]  # False for NaN and for unknown quantities
    ok &= values <= _QUANTITY_HIGH[slot]
    bad = np.flatnonzero(~ok)
    codes = np.zeros(bad.shape[0], dtype=np.uint8)
    if bad.shape[0] == 0:
        return bad, codes
    sub = records[bad]
    times, slot, values = sub["time_us"], slot[bad], sub["value"]
    _first(codes, (times < time_low) | (times > time_high), RejectReason.OUT_OF_RANGE_TIME_US.code)
    for field, low, high, code in _SENSOR_INT_CHECKS:
        _first(codes, (sub[field] < low) | (sub[field] > high), code)
    _first(codes, ~_QUANTITY_KNOWN[slot], RejectReason.OUT_OF_RANGE_QUANTITY.code)
    _first(codes, ~np.isfinite(values), RejectReason.NOT_FINITE_VALUE.code)
    _first(codes, ~(values >= _QUANTITY_LOW[slot]) | ~(values <= _QUANTITY_HIGH[slot]),
           RejectReason.OUT_OF_RANGE_VALUE.code)
    return bad, codes
