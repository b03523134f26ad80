"""Why a telemetry payload or record was rejected: stable reason strings and their arrays."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

import numpy as np


class RejectReason(StrEnum):
    """Stable reject reasons, usable as Prometheus label values and dead-letter causes."""

    # whole payload (record index -1), in the order they are checked
    EMPTY = "empty"  # zero bytes
    TRUNCATED = "truncated"  # shorter than the 24-byte header
    OVERSIZED = "oversized"  # longer than MAX_PAYLOAD_BYTES
    BAD_MAGIC = "bad_magic"
    BAD_VERSION = "bad_version"
    BAD_RECORD_TYPE = "bad_record_type"
    BAD_RECORD_SIZE = "bad_record_size"  # record_size differs from the type's size
    NO_RECORDS = "no_records"  # record_count == 0
    TOO_MANY_RECORDS = "too_many_records"  # record_count > MAX_RECORDS_PER_MESSAGE
    LENGTH_MISMATCH = "length_mismatch"  # 24 + count * size != payload length
    # one record, first failing check in field order
    OUT_OF_RANGE_TIME_US = "out_of_range:time_us"
    OUT_OF_RANGE_LUMINAIRE = "out_of_range:luminaire"
    NOT_FINITE_POWER_W = "not_finite:power_w"
    OUT_OF_RANGE_POWER_W = "out_of_range:power_w"
    NOT_FINITE_ENERGY_WH = "not_finite:energy_wh"
    OUT_OF_RANGE_ENERGY_WH = "out_of_range:energy_wh"
    NOT_FINITE_VOLTAGE_V = "not_finite:voltage_v"
    OUT_OF_RANGE_VOLTAGE_V = "out_of_range:voltage_v"
    NOT_FINITE_CURRENT_A = "not_finite:current_a"
    OUT_OF_RANGE_CURRENT_A = "out_of_range:current_a"
    NOT_FINITE_POWER_FACTOR = "not_finite:power_factor"
    OUT_OF_RANGE_POWER_FACTOR = "out_of_range:power_factor"
    NOT_FINITE_DRIVER_TEMP_C = "not_finite:driver_temp_c"
    OUT_OF_RANGE_DRIVER_TEMP_C = "out_of_range:driver_temp_c"
    NOT_FINITE_AMBIENT_LUX = "not_finite:ambient_lux"
    OUT_OF_RANGE_AMBIENT_LUX = "out_of_range:ambient_lux"
    OUT_OF_RANGE_QUANTITY = "out_of_range:quantity"  # unknown quantity code
    NOT_FINITE_VALUE = "not_finite:value"
    OUT_OF_RANGE_VALUE = "out_of_range:value"  # outside the quantity's range
    OUT_OF_RANGE_SENSOR = "out_of_range:sensor"  # beyond its smallint column (added last: codes stay)

    @property
    def code(self) -> int:
        """Small integer code (1-based) used in reject arrays."""
        return REASON_CODES[self]

    @property
    def whole_payload(self) -> bool:
        return self.code <= RejectReason.LENGTH_MISMATCH.code


REASONS: tuple[RejectReason, ...] = tuple(RejectReason)
REASON_CODES: dict[RejectReason, int] = {r: i for i, r in enumerate(REASONS, start=1)}


def reason_of(code: int) -> RejectReason:
    """Return the reason for a 1-based code from a reject array."""
    return REASONS[int(code) - 1]


class Reject(NamedTuple):
    """One rejected payload (record == -1) or record."""

    payload: int
    record: int
    reason: RejectReason


@dataclass(frozen=True, eq=False)
class Rejects:
    """Rejects of one batch as parallel arrays, sorted by payload then record."""

    payload: np.ndarray  # int64 index into the batch's payloads
    record: np.ndarray  # int64 record index inside the payload, -1 for the whole payload
    code: np.ndarray  # uint8 reason code, see `reason_of`

    def __len__(self) -> int:
        return int(self.payload.shape[0])

    def __iter__(self) -> Iterator[Reject]:
        for p, r, c in zip(self.payload.tolist(), self.record.tolist(), self.code.tolist()):
            yield Reject(p, r, REASONS[c - 1])

    def counts(self) -> dict[RejectReason, int]:
        """Number of rejects per reason (only reasons that occurred)."""
        counts = np.bincount(self.code, minlength=len(REASONS) + 1)
        return {REASONS[c - 1]: int(counts[c]) for c in np.flatnonzero(counts)}
