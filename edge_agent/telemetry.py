"""Readings to binary telemetry, purely: LUMINAIRE_DTYPE / SENSOR_DTYPE records and payloads.

Each stream (luminaire records, sensor records, JSON messages) numbers its items from 0 in each
boot; a process start is a new boot with a new boot id, so (controller, boot id, seq) names a
reading for ever and a replay or a QoS 1 redelivery is recognised downstream.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from wire.codec import encode_luminaire, encode_sensor
from wire.records import LEVEL_UNKNOWN, LUMINAIRE_DTYPE, LuminaireFailure
from wire.sensor_channels import METER_QUANTITIES, meter_records  # noqa: F401 - re-exported


@dataclass(frozen=True)
class LuminaireReading:
    """What one poll of one luminaire found: unknown level 255; None for a measurement the gear
    does not make (or did not give this time), sent as 0 with its ABSENT_* failure bit."""

    time_us: int
    luminaire: int  # bus * 64 + short address
    level: int = LEVEL_UNKNOWN
    status: int = 0  # QUERY STATUS byte
    power_w: float | None = None
    energy_wh: float | None = None
    voltage_v: float | None = None
    current_a: float | None = None
    power_factor: float | None = None
    driver_temp_c: float | None = None
    ambient_lux: float = 0.0
    presence: int = 0
    failure: LuminaireFailure = LuminaireFailure.NONE

    def absent(self) -> LuminaireFailure:
        """The ABSENT_* bits of what this reading lacks (power and energy go together, as the
        energy accounting needs both)."""
        bits = LuminaireFailure.NONE
        if _missing(self.power_w, self.energy_wh):
            bits |= LuminaireFailure.ABSENT_POWER
        if _missing(self.voltage_v, self.current_a, self.power_factor, self.driver_temp_c):
            bits |= LuminaireFailure.ABSENT_DIAGNOSTICS
        return bits


def _missing(*values: float | None) -> bool:
    return any(v is None or not math.isfinite(v) for v in values)


class SeqCounter:
    """Sequence numbers of one stream within one boot: take(n) reserves n consecutive ones."""

    def __init__(self, start: int = 0) -> None:
        self.next = start

    def take(self, n: int = 1) -> int:
        first = self.next
        self.next += n
        return first


def _finite(value: float | None, low: float, high: float) -> float:
    if value is None or value != value or value in (float("inf"), float("-inf")):
        return 0.0
    return min(max(float(value), low), high)


def luminaire_records(readings: Sequence[LuminaireReading]) -> np.ndarray:
    """Readings as LUMINAIRE_DTYPE records, values clamped into the contract's ranges; what a
    reading lacks is 0 with its ABSENT_* bit set in `failure`."""
    out = np.zeros(len(readings), dtype=LUMINAIRE_DTYPE)
    for i, r in enumerate(readings):
        out[i] = (
            r.time_us, r.luminaire, r.level, r.status,
            _finite(r.power_w, 0, 2000), _finite(r.energy_wh, 0, 1e12),
            _finite(r.voltage_v, 0, 500), _finite(r.current_a, 0, 20),
            _finite(r.power_factor, 0, 1), _finite(r.driver_temp_c, -50, 150),
            _finite(r.ambient_lux, 0, 200_000), min(max(r.presence, 0), 65_535),
            int(r.failure | r.absent()),
        )
    return out


def payloads(records: np.ndarray, boot_id: int, seq: SeqCounter,
             per_message: int) -> Iterable[tuple[int, bytes]]:
    """Split records into payloads of at most `per_message`; yields (first_seq, payload)."""
    encode = encode_luminaire if records.dtype == LUMINAIRE_DTYPE else encode_sensor
    for start in range(0, records.shape[0], per_message):
        chunk = records[start:start + per_message]
        first = seq.take(chunk.shape[0])
        yield first, encode(boot_id, first, chunk)
