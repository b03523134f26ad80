"""Pole sensors (PIR presence counter, ambient light): a pluggable source, a poller, pure arithmetic.

A `SensorSource` is anything that answers `read()` with named values; the one shipped reads a
Modbus device through `hardware.modbus` and a register map given as a profile file (by default
the shipped profile `luciole_pole_sensor` (hardware/modbus/profiles/); any profile with the two
named registers works).

Presence is read as a cumulative detection counter (a PIR's pulse counter): the poller turns
the increase since the last read into new detections, so none is missed between polls, and a
counter that wraps or restarts (a sensor power cycle) is recognised rather than read as a
huge jump. New detections call `on_presence` (the agent's presence boost) and are added to the
count reported with the next telemetry; ambient light is the latest reading.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Protocol

from edge_agent.clock import Clock, to_us
from edge_agent.poller import Emit, PeriodicPoller
from edge_agent.telemetry import LuminaireReading
from hardware.modbus import ModbusDevice, ModbusError
from wire.messages import EventKind, Severity

log = logging.getLogger(__name__)

DEFAULT_PROFILE = "luciole_pole_sensor"
PRESENCE_REGISTER = "presence_count"
LUX_REGISTER = "ambient_lux"


class SensorError(RuntimeError):
    """A sensor source could not be read (a transport error; the text says which)."""


class SensorSource(Protocol):
    """Where a pole's sensor values come from."""

    name: str
    counter_modulus: int  # where the presence counter wraps (1 << 16 for a 16-bit register)

    async def read(self) -> dict[str, float]:
        """{"presence_count": cumulative detections, "ambient_lux": lux}; either may be missing.
        Raises SensorError or a typed hardware error."""
        ...

    def close(self) -> None: ...


class ModbusSensorSource:
    """A sensor behind Modbus: the profile's `presence_register` and `lux_register`."""

    def __init__(self, device: ModbusDevice, presence_register: str | None = PRESENCE_REGISTER,
                 lux_register: str | None = LUX_REGISTER) -> None:
        names = [n for n in (presence_register, lux_register) if n]
        missing = [n for n in names if n not in device.profile.names]
        if not names or missing:
            raise SensorError(f"profile {device.profile.id} lacks sensor registers {missing or names}")
        self.device = device
        self.name = device.profile.id
        self.counter_modulus = 1 << 32
        if presence_register:
            spec = device.profile.register(presence_register)
            if not spec.type.is_float:
                self.counter_modulus = 1 << (16 * spec.word_count)
        named = {presence_register: PRESENCE_REGISTER, lux_register: LUX_REGISTER}
        self._names = {register: name for register, name in named.items() if register is not None}

    async def read(self) -> dict[str, float]:
        values = await self.device.read(list(self._names))
        return {self._names[k]: float(v) for k, v in values.items() if isinstance(v, int | float)}

    def close(self) -> None:
        self.device.close()


def new_detections(previous: int | None, current: int, modulus: int = 1 << 32) -> int:
    """Detections between two readings of a cumulative counter that wraps at `modulus`.

    The first reading counts nothing (the counter's history is not ours). A counter that went
    back is taken to have restarted from 0 (a power cycle), unless going round the modulus gives
    a small step, which is a wrap.
    """
    if previous is None or current == previous:
        return 0
    if current > previous:
        return current - previous
    wrapped = current + modulus - previous
    return wrapped if wrapped <= modulus // 2 and previous > modulus // 2 else current


@dataclass(frozen=True)
class SensorValues:
    """What a sensor contributes to one telemetry round."""

    ambient_lux: float | None
    presence: int  # detections since the previous round


def with_sensors(readings: Iterable[LuminaireReading],
                 values: Iterable[tuple[frozenset[int] | None, SensorValues]]) -> list[LuminaireReading]:
    """Readings with the ambient light and presence of the sensors that cover each luminaire
    (`None` covers all): presence adds up, ambient light is the first sensor's that has one."""
    values = list(values)
    out = []
    for reading in readings:
        mine = [v for covers, v in values if covers is None or reading.luminaire in covers]
        if not mine:
            out.append(reading)
            continue
        lux = next((v.ambient_lux for v in mine if v.ambient_lux is not None), reading.ambient_lux)
        out.append(replace(reading, ambient_lux=lux, presence=sum(v.presence for v in mine)))
    return out


class SensorPoller(PeriodicPoller):
    """Polls one sensor source; new detections call `on_presence(covers)` at once."""

    fault_key = ("sensor",)
    read_errors = (ModbusError, SensorError)

    def __init__(self, source: SensorSource, index: int, clock: Clock, emit: Emit,
                 on_presence: Callable[[frozenset[int] | None], None], interval_s: float = 1.0,
                 covers: frozenset[int] | None = None, rng: random.Random | None = None) -> None:
        super().__init__(index, clock, emit, interval_s, rng)
        self.source = source
        self.on_presence = on_presence
        self.covers = covers
        self.counter: int | None = None
        self.ambient_lux: float | None = None
        self.detections_total = 0
        self.last_read_us: int | None = None
        self._window = 0

    async def _read(self) -> dict[str, float]:
        return await self.source.read()

    def _report_failure(self, exc: BaseException) -> None:
        kind = EventKind.MODBUS_ERROR if isinstance(exc, ModbusError) else EventKind.FAULT_RAISED
        self.emit(kind, Severity.WARNING, None, sensor=self.index, source=self.source.name,
                  error=type(exc).__name__, message=str(exc)[:200])

    def _report_recovery(self) -> None:
        self.emit(EventKind.FAULT_CLEARED, Severity.INFO, None, sensor=self.index,
                  fault="sensor_unreadable")

    def _keep(self, values: dict[str, float]) -> None:
        self.last_read_us = to_us(self.clock)
        if LUX_REGISTER in values:
            self.ambient_lux = max(0.0, values[LUX_REGISTER])
        if PRESENCE_REGISTER in values:
            current = int(values[PRESENCE_REGISTER])
            seen = new_detections(self.counter, current, self.source.counter_modulus)
            self.counter = current
            if seen > 0:
                self.detections_total += seen
                self._window += seen
                log.debug("presence sensor=%d detections=%d", self.index, seen)
                self.on_presence(self.covers)

    def take(self) -> SensorValues:
        """This round's values; the presence count starts again from 0."""
        seen, self._window = self._window, 0
        return SensorValues(self.ambient_lux, seen)
