"""Pollers: one per DALI bus and one per Modbus device; each polls once and fans out.

A poller keeps the latest reading of each thing it watches for whoever wants it (telemetry,
the control loop, diagnostics commands). Typed hardware errors never escape a poller: they
become fault events on the transition (raised once, cleared once), readings flagged with the
failure, and a capped exponential backoff with jitter before the next try.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from dali.address import GearBroadcast, GearGroup, GearShort
from dali.gear import general as g

from edge_agent.cancellation import raise_if_cancelled
from edge_agent.clock import Clock, to_us
from edge_agent.telemetry import LuminaireReading
from hardware.dali import (
    DaliBus,
    DaliCollision,
    DaliError,
    DaliFramingError,
    DaliNoAnswer,
    DaliNotImplemented,
    Diagnostics,
    GearCapabilities,
    RetryPolicy,
    actual_level,
    present_short_addresses,
    probe,
    query,
    read_diagnostics,
    read_energy,
    set_level,
    status,
)
from hardware.modbus import ModbusDevice, ModbusError
from wire.messages import EventKind, Severity
from wire.records import LEVEL_UNKNOWN, LuminaireFailure
from wire.retry import Backoff

log = logging.getLogger(__name__)

LUMINAIRES_PER_BUS = 64
DALI_RETRY = RetryPolicy(attempts=2, backoff=Backoff(initial_s=0.02, max_s=0.2))
GEAR_ERRORS = (DaliNoAnswer, DaliFramingError, DaliCollision)
"""Errors of one gear (silent, garbled, two gear on one address); any other `DaliError` is the
bus or its interface."""

Emit = Callable[..., None]
"""emit(kind, severity, luminaire=None, **detail): record an event (the agent's outbox)."""


@dataclass
class FaultTracker:
    """Which faults are active; reports only transitions, so a stuck fault is one event."""

    active: dict[tuple, str] = field(default_factory=dict)

    def failed(self, key: tuple, why: str) -> bool:
        """Mark `key` faulty; True when it was not already."""
        new = key not in self.active
        self.active[key] = why
        return new

    def recovered(self, key: tuple) -> bool:
        """Mark `key` healthy; True when it was faulty."""
        return self.active.pop(key, None) is not None


def poll_wait_s(interval_s: float, streak: int, rng: random.Random, cap_factor: float = 8.0) -> float:
    """Wait before the next poll after `streak` failures in a row (0: the plain interval): the
    project's one backoff, from twice the interval up to `cap_factor` times it."""
    if streak <= 0:
        return interval_s
    return Backoff(initial_s=2 * interval_s, max_s=cap_factor * interval_s).delay(streak, rng)


class DaliPoller:
    """One DALI bus: discovers its gear and what each implements, then polls level and status
    (mandatory: unanswered, the gear is not answering) and, where the gear has them, D4i energy
    and diagnostics (optional: a bank the gear lacks is a capability, never a fault)."""

    def __init__(self, bus: DaliBus, bus_index: int, clock: Clock, emit: Emit,
                 interval_s: float = 10.0, diagnostics_every: int = 6,
                 rng: random.Random | None = None, rediscover_s: float = 900.0,
                 on_inventory: Callable[[], None] | None = None) -> None:
        self.bus = bus
        self.bus_index = bus_index
        self.clock = clock
        self.emit = emit
        self.interval_s = interval_s
        self.diagnostics_every = diagnostics_every
        self.rediscover_s = rediscover_s
        self.on_inventory = on_inventory
        self.addresses: list[int] = []  # short addresses found, in order; a silent gear stays
        self.groups: dict[int, frozenset[int]] = {}  # luminaire index -> DALI groups
        self.capabilities: dict[int, GearCapabilities] = {}  # luminaire index -> what it has
        self.latest: dict[int, LuminaireReading] = {}
        self.on_hours: dict[int, float] = {}
        self.faults = FaultTracker()
        self.polls = 0
        self.optional_misses = 0  # optional reads (energy, diagnostics) that got no answer
        self.lock = asyncio.Lock()  # a read sequence and a command must not interleave
        self.discovered = asyncio.Event()
        self.attempted = asyncio.Event()  # the first discovery was tried, gear found or not
        self._rng = rng or random.Random()
        self._streak = 0
        self._discovered_at = float("-inf")
        self._to_probe: set[int] = set()  # short addresses whose capabilities must be (re)read

    def index(self, short_address: int) -> int:
        return self.bus_index * LUMINAIRES_PER_BUS + short_address

    def owns(self, index: int) -> bool:
        return index // LUMINAIRES_PER_BUS == self.bus_index

    # --------------------------------------------------------------------- the loop
    async def run(self) -> None:
        while True:
            due = self.clock.monotonic() - self._discovered_at >= self.rediscover_s
            if not self.discovered.is_set() or due:
                await self.discover()
            if self.discovered.is_set():
                await self.poll_once()
            raise_if_cancelled()
            await self.clock.sleep(poll_wait_s(self.interval_s, self._streak, self._rng))

    async def discover(self) -> None:
        """Find the gear on the bus and probe what the new ones implement. Gear found before
        stays known even when it is silent now (its polls report it not answering)."""
        try:
            async with self.lock:
                present = await present_short_addresses(self.bus)
                groups = {self.index(a): await self._groups(a) for a in present}
        except DaliError as exc:
            self._bus_failed(exc)
            self.attempted.set()
            return
        finally:
            self._discovered_at = self.clock.monotonic()
        self._bus_ok()
        known = set(self.addresses)
        new = [a for a in present if a not in known]
        self.addresses = sorted(known | set(present))
        self.groups.update(groups)
        self._to_probe.update(new)
        changed = bool(new)
        try:
            for short in sorted(self._to_probe & set(present)):
                changed |= await self._probe(short)
        except DaliError as exc:  # the bus itself: the gear not probed yet are probed later
            self._bus_failed(exc)
        self.discovered.set()
        self.attempted.set()
        log.info("dali bus=%d gear=%d new=%s", self.bus_index, len(self.addresses), new)
        if changed and self.on_inventory is not None:
            self.on_inventory()

    async def _groups(self, short: int) -> frozenset[int]:
        try:
            low = await query(self.bus, g.QueryGroupsZeroToSeven(GearShort(short)), DALI_RETRY)
            high = await query(self.bus, g.QueryGroupsEightToFifteen(GearShort(short)), DALI_RETRY)
        except GEAR_ERRORS:  # a gear's own trouble: its polls report it
            return frozenset()
        bits = low.raw_value.as_integer | high.raw_value.as_integer << 8
        return frozenset(i for i in range(16) if bits >> i & 1)

    async def _probe(self, short: int) -> bool:
        """(Re)read what a gear implements; an INVENTORY event and True when it changed. A gear
        that falls silent keeps what was known and is probed again on a later poll."""
        index = self.index(short)
        try:
            async with self.lock:
                found = await probe(self.bus, short, DALI_RETRY)
        except GEAR_ERRORS as exc:
            log.info("dali probe failed bus=%d short=%d: %s", self.bus_index, short, exc)
            return False
        known = self.capabilities.get(index)
        if found.complete:
            self._to_probe.discard(short)
        elif known is not None:  # fell silent half-way: keep the full picture from before
            return False
        if found == known:
            return False
        self.capabilities[index] = found
        self.emit(EventKind.INVENTORY, Severity.INFO, index, bus=self.bus_index,
                  short_address=short, **found.detail())
        log.info("dali gear bus=%d short=%d %s", self.bus_index, short, found.detail())
        return True

    def _bus_failed(self, exc: DaliError) -> None:
        self._streak += 1
        if self.faults.failed(("bus",), str(exc)):
            self.emit(EventKind.DALI_ERROR, Severity.CRITICAL, None, bus=self.bus_index,
                      error=type(exc).__name__, message=str(exc)[:200])
        for index, reading in self.latest.items():
            self.latest[index] = replace(reading, level=LEVEL_UNKNOWN,
                                         failure=reading.failure | LuminaireFailure.COMM)

    def _bus_ok(self) -> None:
        self._streak = 0
        if self.faults.recovered(("bus",)):
            self.emit(EventKind.FAULT_CLEARED, Severity.INFO, None, bus=self.bus_index,
                      fault=str(EventKind.DALI_ERROR))

    async def poll_once(self) -> None:
        """Read every gear once; errors become events and flagged readings, never exceptions."""
        self.polls += 1
        every = self.diagnostics_every
        with_diag = every > 0 and (self.polls - 1) % every == 0
        changed = False
        try:
            for short in self.addresses:
                if short in self._to_probe:
                    changed |= await self._probe(short)
                async with self.lock:
                    self.latest[self.index(short)] = await self._read_gear(short, with_diag)
        except DaliError as exc:  # the bus itself (connection, timeout), not one gear
            self._bus_failed(exc)
            return
        finally:
            if changed and self.on_inventory is not None:
                self.on_inventory()
        self._bus_ok()

    async def _read_gear(self, short: int, with_diag: bool) -> LuminaireReading:
        index = self.index(short)
        now_us = to_us(self.clock)
        previous = self.latest.get(index, LuminaireReading(now_us, index))
        try:  # mandatory: a gear that does not answer these is not answering
            level = await actual_level(self.bus, short, DALI_RETRY)
            st = await status(self.bus, short, DALI_RETRY)
        except (DaliNoAnswer, DaliFramingError) as exc:  # silent, or two gear on its address
            if self.faults.failed(("gear", index), str(exc)):
                self.emit(EventKind.DALI_ERROR, Severity.WARNING, index, bus=self.bus_index,
                          short_address=short, error=type(exc).__name__, message=str(exc)[:200])
            return replace(previous, time_us=now_us, level=LEVEL_UNKNOWN,
                           failure=previous.failure | LuminaireFailure.COMM)
        if self.faults.recovered(("gear", index)):
            self.emit(EventKind.FAULT_CLEARED, Severity.INFO, index, bus=self.bus_index,
                      short_address=short, fault=str(EventKind.DALI_ERROR))
            self._to_probe.add(short)  # silent for a while: the driver may have been swapped
        failure = LuminaireFailure.NONE
        if st.lamp_failure:
            failure |= LuminaireFailure.LAMP
        if st.gear_failure:
            failure |= LuminaireFailure.DRIVER
        self._status_events(index, short, st.lamp_failure, st.gear_failure)
        caps = self.capabilities.get(index, GearCapabilities())
        power, energy_wh = await self._read_energy(short, caps)
        # diagnostics read at another level are stale: power factor and current follow the load
        due = with_diag or level != previous.level
        voltage, pf, temp = await self._read_diagnostics(short, caps, previous, due)
        current = None
        if power is not None and voltage and pf:
            current = power / (voltage * pf)
        status_byte = sum(int(v) << i for i, v in enumerate(
            (st.gear_failure, st.lamp_failure, st.lamp_on, st.limit_error, st.fade_running,
             st.reset_state, st.missing_short_address, st.power_cycle_seen)))
        return LuminaireReading(
            time_us=now_us, luminaire=index, level=level, status=status_byte, power_w=power,
            energy_wh=energy_wh, voltage_v=voltage, current_a=current, power_factor=pf,
            driver_temp_c=temp, failure=failure)

    async def _read_energy(self, short: int,
                           caps: GearCapabilities) -> tuple[float | None, float | None]:
        """(active power W, active energy Wh) from bank 202 where the gear has it, else absent."""
        if not caps.energy:
            return None, None
        try:
            report = await read_energy(self.bus, short, retry=DALI_RETRY)
        except DaliNotImplemented:  # it had bank 202 when probed: not the same driver any more?
            self._to_probe.add(short)
            return None, None
        except GEAR_ERRORS as exc:  # level and status answered: a missed read, not a fault
            self.optional_misses += 1
            log.debug("dali energy read missed bus=%d short=%d: %s", self.bus_index, short, exc)
            return None, None
        return report.active_power_w, report.active_energy_wh

    async def _read_diagnostics(
        self, short: int, caps: GearCapabilities, previous: LuminaireReading, due: bool,
    ) -> tuple[float | None, float | None, float | None]:
        """(supply voltage, power factor, gear temperature) from banks 205/206 when `due`,
        else the last values read; absent for a gear without them."""
        if not caps.diagnostics:
            return None, None, None
        kept = previous.voltage_v, previous.power_factor, previous.driver_temp_c
        if not due:
            return kept
        try:
            diag = await read_diagnostics(self.bus, short, DALI_RETRY, caps.banks)
        except DaliNotImplemented:
            self._to_probe.add(short)
            return None, None, None
        except GEAR_ERRORS as exc:
            self.optional_misses += 1
            log.debug("dali diagnostics read missed bus=%d short=%d: %s", self.bus_index, short,
                      exc)
            return kept
        if diag.light_source_on_time_s is not None:
            self.on_hours[self.index(short)] = diag.light_source_on_time_s / 3600
        temp = diag.gear_temperature_c
        return diag.supply_voltage_v, diag.power_factor, None if temp is None else float(temp)

    def _status_events(self, index: int, short: int, lamp: bool, gear: bool) -> None:
        for key, bad, kind in (("lamp", lamp, EventKind.LAMP_FAILURE),
                               ("driver", gear, EventKind.DRIVER_FAILURE)):
            if bad and self.faults.failed((key, index), key):
                self.emit(kind, Severity.CRITICAL, index, short_address=short)
            elif not bad and self.faults.recovered((key, index)):
                self.emit(EventKind.FAULT_CLEARED, Severity.INFO, index, short_address=short,
                          fault=str(kind))

    # --------------------------------------------------------------------- actuation
    async def drive(self, levels: dict[int, int]) -> None:
        """Send DAPC to each of this bus's luminaires in `levels` (index -> arc level);
        all at once by broadcast when they all get the same level."""
        mine = {i: lv for i, lv in levels.items() if self.owns(i) and i in self.groups}
        if not mine:
            return
        async with self.lock:
            if len(set(mine.values())) == 1 and len(mine) == len(self.groups):
                await set_level(self.bus, GearBroadcast(), next(iter(mine.values())))
                return
            for index, level in mine.items():
                await set_level(self.bus, GearShort(index % LUMINAIRES_PER_BUS), level)

    async def drive_group(self, group: int, level: int) -> None:
        async with self.lock:
            await set_level(self.bus, GearGroup(group), level)

    async def diagnostics(self, index: int) -> Diagnostics:
        """Read a luminaire's Part 253 diagnostics now; `DaliNotImplemented` for gear without."""
        caps = self.capabilities.get(index)
        banks = caps.banks if caps is not None and caps.complete else None
        async with self.lock:
            return await read_diagnostics(self.bus, index % LUMINAIRES_PER_BUS, DALI_RETRY, banks)


class PeriodicPoller:
    """Polls one device every interval_s, backing off while it fails; a failure is reported once
    as an event and its recovery once. Subclasses say how to read and what to keep."""

    fault_key: tuple[str, ...] = ("device",)
    read_errors: tuple[type[BaseException], ...] = ()

    def __init__(self, index: int, clock: Clock, emit: Emit, interval_s: float,
                 rng: random.Random | None = None) -> None:
        self.index = index
        self.clock = clock
        self.emit = emit
        self.interval_s = interval_s
        self.faults = FaultTracker()
        self.polls = 0
        self.errors = 0
        self._rng = rng or random.Random()
        self._streak = 0

    async def run(self) -> None:
        while True:
            await self.poll_once()
            raise_if_cancelled()  # a pymodbus request may swallow our cancellation
            await self.clock.sleep(poll_wait_s(self.interval_s, self._streak, self._rng))

    async def poll_once(self) -> None:
        self.polls += 1
        try:
            values = await self._read()
        except self.read_errors as exc:
            self.errors += 1
            self._streak += 1
            if self.faults.failed(self.fault_key, str(exc)):
                self._report_failure(exc)
            return
        self._streak = 0
        if self.faults.recovered(self.fault_key):
            self._report_recovery()
        self._keep(values)

    async def _read(self) -> dict[str, float]:
        raise NotImplementedError

    def _report_failure(self, exc: BaseException) -> None:
        raise NotImplementedError

    def _report_recovery(self) -> None:
        raise NotImplementedError

    def _keep(self, values: dict[str, float]) -> None:
        raise NotImplementedError


class ModbusPoller(PeriodicPoller):
    """One Modbus device (a cabinet's energy meter): reads its profile, keeps the latest values."""

    fault_key = ("meter",)
    read_errors = (ModbusError,)

    def __init__(self, device: ModbusDevice, index: int, clock: Clock, emit: Emit,
                 interval_s: float = 15.0, rng: random.Random | None = None) -> None:
        super().__init__(index, clock, emit, interval_s, rng)
        self.device = device
        self.latest: tuple[int, dict[str, float]] | None = None

    async def _read(self) -> dict[str, float]:
        return await self.device.read()

    def _report_failure(self, exc: BaseException) -> None:
        self.emit(EventKind.MODBUS_ERROR, Severity.WARNING, None, device=self.index,
                  profile=self.device.profile.id, error=type(exc).__name__, message=str(exc)[:200])

    def _report_recovery(self) -> None:
        self.emit(EventKind.FAULT_CLEARED, Severity.INFO, None, device=self.index,
                  fault=str(EventKind.MODBUS_ERROR))

    def _keep(self, values: dict[str, float]) -> None:
        self.latest = (to_us(self.clock), {k: float(v) for k, v in values.items()
                                           if isinstance(v, int | float)})
