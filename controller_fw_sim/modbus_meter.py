"""A cabinet's Modbus TCP energy meter: a pure three-phase meter model and a pymodbus server.

The model (`MeterModel.update`) turns the luminaires' power into what a meter at the
cabinet would measure: per-phase voltage, current, active/reactive/apparent power,
power factor, frequency, and an imported-energy counter integrated exactly (the power
of a step is held over that step). The server (`MeterServer`) only exposes registers:
it encodes the latest reading with the register map of a device profile from
`hardware/modbus/profiles` (the SDM630 by default), so the simulator and the edge
agent share one register map.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from functools import partial

import numpy as np
from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from hardware.modbus import DeviceProfile, ExceptionCode, RegisterFunction, encode_image, load_profile

log = logging.getLogger(__name__)

SDM630_PROFILE = "eastron_sdm630"
PHASES = ("l1", "l2", "l3")
_SECONDS_PER_HOUR = 3600.0

PowerSource = np.ndarray | Callable[[float], np.ndarray]


@dataclass(frozen=True)
class MeterConfig:
    """Electrical set-up of one cabinet's feeder.

    ``cable_resistance_ohm`` is the resistance of each phase's feeder loop (line out
    and back), so a phase carrying I amperes loses I**2 * R watts before the poles.
    Voltage deviates from nominal as an AR(1) process (standard deviation
    ``voltage_sigma_frac`` of nominal, correlation time ``voltage_tau_s``).
    """

    nominal_voltage_v: float = 230.0
    voltage_sigma_frac: float = 0.01
    voltage_tau_s: float = 600.0
    cable_resistance_ohm: float = 0.5
    luminaire_power_factor: float = 0.95
    frequency_hz: float = 50.0
    frequency_sigma_hz: float = 0.01
    seed: int = 0


@dataclass(frozen=True)
class MeterReading:
    """What the meter measures at one instant (per-phase arrays have 3 entries)."""

    elapsed_s: float
    voltage_v: np.ndarray
    current_a: np.ndarray
    power_w: np.ndarray
    reactive_power_var: np.ndarray
    apparent_power_va: np.ndarray
    power_factor: np.ndarray
    frequency_hz: float
    energy_import_kwh: float
    reactive_energy_import_kvarh: float
    #: Ground truth, not visible on the wire: how the step's power splits.
    luminaire_power_w: float
    cable_loss_w: float
    leakage_power_w: float

    @property
    def power_total_w(self) -> float:
        return float(self.power_w.sum())

    def register_values(self) -> dict[str, float]:
        """The reading under the canonical register names used by the profiles."""
        v, i, p, q, s = (self.voltage_v, self.current_a, self.power_w,
                         self.reactive_power_var, self.apparent_power_va)
        values: dict[str, float] = {}
        for k, ph in enumerate(PHASES):
            values[f"voltage_{ph}"] = float(v[k])
            values[f"current_{ph}"] = float(i[k])
            values[f"power_{ph}"] = float(p[k])
            values[f"reactive_power_{ph}"] = float(q[k])
            values[f"apparent_power_{ph}"] = float(s[k])
            values[f"power_factor_{ph}"] = float(self.power_factor[k])
            values[f"phase_angle_{ph}"] = math.degrees(math.atan2(q[k], p[k])) if s[k] else 0.0
        # Line-to-line voltages from phasors 120 degrees apart.
        phasors = v * np.exp(-2j * np.pi * np.arange(3) / 3)
        line = np.abs(phasors - np.roll(phasors, -1))
        for k, name in enumerate(("l1_l2", "l2_l3", "l3_l1")):
            values[f"voltage_{name}"] = float(line[k])
        p_tot, q_tot, s_tot = float(p.sum()), float(q.sum()), float(s.sum())
        values.update(
            voltage_ln_avg=float(v.mean()),
            voltage_ll_avg=float(line.mean()),
            current_avg=float(i.mean()),
            current_sum=float(i.sum()),
            power_total=p_tot,
            reactive_power_total=q_tot,
            apparent_power_total=s_tot,
            power_factor_total=p_tot / s_tot if s_tot else 1.0,
            phase_angle_total=math.degrees(math.atan2(q_tot, p_tot)) if s_tot else 0.0,
            phase_sequence=0.0,
            frequency=self.frequency_hz,
            energy_import_kwh=self.energy_import_kwh,
            energy_export_kwh=0.0,
            reactive_energy_import_kvarh=self.reactive_energy_import_kvarh,
        )
        return values


def phase_currents(
    voltage_v: np.ndarray, load_w: np.ndarray, load_var: np.ndarray, resistance_ohm: float
) -> np.ndarray:
    """Current per phase at the meter for a load (P, Q) at the end of a resistive feeder.

    Solves |S| = V*I with P = P_load + I**2 R, Q = Q_load, i.e.
    R**2 x**2 + (2 P_load R - V**2) x + P_load**2 + Q**2 = 0 for x = I**2 (smaller
    root, written in the form that stays exact as R -> 0).
    """
    s2 = load_w**2 + load_var**2
    b = voltage_v**2 - 2.0 * load_w * resistance_ohm
    disc = np.maximum(b**2 - 4.0 * resistance_ohm**2 * s2, 0.0)
    denom = b + np.sqrt(disc)
    x = np.divide(2.0 * s2, denom, out=np.zeros_like(s2), where=denom > 0)
    return np.sqrt(x)


class MeterModel:
    """Pure model of a three-phase cabinet meter; luminaires spread over the phases."""

    def __init__(self, config: MeterConfig, phase_of_luminaire: np.ndarray | int) -> None:
        """``phase_of_luminaire``: phase index (0..2) per luminaire, or a count of
        luminaires to spread round-robin over L1, L2, L3."""
        if isinstance(phase_of_luminaire, (int, np.integer)):
            phase_of_luminaire = np.arange(int(phase_of_luminaire)) % 3
        phases = np.asarray(phase_of_luminaire, dtype=np.int64)
        if phases.ndim != 1 or (phases.size and (phases.min() < 0 or phases.max() > 2)):
            raise ValueError("phase_of_luminaire must be a 1-D array of 0, 1 or 2")
        self.config = config
        self.phase_of_luminaire = phases
        self._rng = np.random.default_rng(config.seed)
        self._voltage_dev = np.zeros(3)
        self.elapsed_s = 0.0
        self.energy_import_kwh = 0.0
        self.reactive_energy_import_kvarh = 0.0
        #: Ground-truth energy split (kWh): luminaires, cable losses, leakage.
        self.energy_luminaires_kwh = 0.0
        self.energy_cable_loss_kwh = 0.0
        self.energy_leakage_kwh = 0.0
        self.reading = self._measure(np.zeros(phases.size), None, 0.0, 0.0)

    @property
    def n_luminaires(self) -> int:
        return int(self.phase_of_luminaire.size)

    def update(
        self,
        dt_s: float,
        luminaire_power_w: PowerSource,
        *,
        luminaire_power_factor: float | np.ndarray | None = None,
        leakage_a: float | np.ndarray = 0.0,
    ) -> MeterReading:
        """Advance by ``dt_s`` with the given luminaire power held over the step.

        ``luminaire_power_w`` is an array (W per luminaire) or a callable of the
        model's elapsed time (s) evaluated at the step's midpoint. ``leakage_a`` is a
        resistive earth-leakage current on L1 (scalar) or per phase (3 values): the
        meter sees it, the luminaires do not.
        """
        if dt_s < 0:
            raise ValueError("dt_s must be >= 0")
        if callable(luminaire_power_w):
            luminaire_power_w = luminaire_power_w(self.elapsed_s + dt_s / 2)
        power = np.asarray(luminaire_power_w, dtype=np.float64)
        if power.shape != self.phase_of_luminaire.shape:
            raise ValueError(f"expected {self.n_luminaires} luminaire powers, got {power.shape}")
        self._step_voltage(dt_s)
        self.reading = self._measure(power, luminaire_power_factor, leakage_a, dt_s)
        return self.reading

    def _step_voltage(self, dt_s: float) -> None:
        cfg = self.config
        if cfg.voltage_sigma_frac <= 0 or dt_s == 0:
            return
        a = math.exp(-dt_s / cfg.voltage_tau_s)
        noise = self._rng.standard_normal(3) * cfg.voltage_sigma_frac * math.sqrt(1 - a * a)
        self._voltage_dev = a * self._voltage_dev + noise

    def _measure(
        self,
        power: np.ndarray,
        power_factor: float | np.ndarray | None,
        leakage_a: float | np.ndarray,
        dt_s: float,
    ) -> MeterReading:
        cfg = self.config
        pf = np.clip(np.broadcast_to(
            cfg.luminaire_power_factor if power_factor is None else power_factor, power.shape
        ), 1e-3, 1.0)
        lum_w = np.bincount(self.phase_of_luminaire, weights=power, minlength=3)
        lum_var = np.bincount(
            self.phase_of_luminaire, weights=power * np.tan(np.arccos(pf)), minlength=3
        )
        voltage = cfg.nominal_voltage_v * (1.0 + self._voltage_dev)
        leak = np.zeros(3)
        if np.ndim(leakage_a) == 0:
            leak[0] = float(leakage_a)
        else:
            leak[:] = np.asarray(leakage_a, dtype=np.float64)
        leak_w = voltage * leak
        load_w = lum_w + leak_w
        current = phase_currents(voltage, load_w, lum_var, cfg.cable_resistance_ohm)
        loss_w = current**2 * cfg.cable_resistance_ohm
        p = load_w + loss_w
        s = voltage * current
        pf_meter = np.divide(p, s, out=np.ones(3), where=s > 0)
        freq = cfg.frequency_hz + (self._rng.standard_normal() * cfg.frequency_sigma_hz if dt_s else 0.0)

        hours = dt_s / _SECONDS_PER_HOUR
        self.elapsed_s += dt_s
        self.energy_import_kwh += float(p.sum()) * hours / 1000.0
        self.reactive_energy_import_kvarh += float(lum_var.sum()) * hours / 1000.0
        self.energy_luminaires_kwh += float(lum_w.sum()) * hours / 1000.0
        self.energy_cable_loss_kwh += float(loss_w.sum()) * hours / 1000.0
        self.energy_leakage_kwh += float(leak_w.sum()) * hours / 1000.0
        return MeterReading(
            elapsed_s=self.elapsed_s,
            voltage_v=voltage,
            current_a=current,
            power_w=p,
            reactive_power_var=lum_var,
            apparent_power_va=s,
            power_factor=np.minimum(pf_meter, 1.0),
            frequency_hz=float(freq),
            energy_import_kwh=self.energy_import_kwh,
            reactive_energy_import_kvarh=self.reactive_energy_import_kvarh,
            luminaire_power_w=float(lum_w.sum()),
            cable_loss_w=float(loss_w.sum()),
            leakage_power_w=float(leak_w.sum()),
        )


class MeterFaultMode(str, Enum):
    """How the served meter misbehaves."""

    NONE = "none"
    TIMEOUT = "timeout"  # requests are received and never answered
    EXCEPTION = "exception"  # every read answers a Modbus exception code


@dataclass
class _Fault:
    mode: MeterFaultMode = MeterFaultMode.NONE
    code: ExceptionCode = ExceptionCode.SLAVE_DEVICE_FAILURE


def _spans(addresses: list[int], max_gap: int) -> list[tuple[int, int]]:
    """Sorted addresses -> [(start, count)] runs, holes of up to ``max_gap`` filled."""
    spans: list[tuple[int, int]] = []
    for addr in addresses:
        if spans and addr - (spans[-1][0] + spans[-1][1]) <= max_gap:
            start, _ = spans[-1]
            spans[-1] = (start, addr - start + 1)
        else:
            spans.append((addr, 1))
    return spans


@dataclass
class MeterServer:
    """A Modbus TCP server exposing one meter's registers, mapped by a device profile.

    ``publish(reading)`` replaces the register image; reads are answered from it.
    Addresses the profile does not map answer ILLEGAL_DATA_ADDRESS, except holes of
    up to the profile's ``max_read_gap`` (answered as 0), like the real meter.
    """

    profile: DeviceProfile = field(default_factory=lambda: load_profile(SDM630_PROFILE))
    host: str = "127.0.0.1"
    port: int = 0
    device_id: int = 1
    requests_received: int = field(default=0, init=False)
    _fault: _Fault = field(default_factory=_Fault, init=False, repr=False)
    _image: dict[RegisterFunction, dict[int, int]] = field(default_factory=dict, init=False, repr=False)
    _server: ModbusTcpServer | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self._image = encode_image(self.profile, {})

    # -- register image -------------------------------------------------
    def publish(self, values: MeterReading | Mapping[str, float]) -> None:
        """Expose a reading (or {register name: value}); names the profile lacks are ignored."""
        if isinstance(values, MeterReading):
            values = values.register_values()
        names = set(self.profile.names)
        self._image = encode_image(self.profile, {k: v for k, v in values.items() if k in names})

    # -- fault hooks ----------------------------------------------------
    def set_timeout_mode(self) -> None:
        """Stop answering (requests are read and dropped), until `clear_fault`."""
        self._fault = _Fault(MeterFaultMode.TIMEOUT)

    def set_exception_mode(self, code: int | ExceptionCode = ExceptionCode.SLAVE_DEVICE_FAILURE) -> None:
        """Answer every read with Modbus exception ``code``, until `clear_fault`."""
        self._fault = _Fault(MeterFaultMode.EXCEPTION, ExceptionCode(code))

    def clear_fault(self) -> None:
        self._fault = _Fault()

    @property
    def fault_mode(self) -> MeterFaultMode:
        return self._fault.mode

    # -- lifecycle ------------------------------------------------------
    async def start(self) -> int:
        """Listen on ``host:port`` (port 0 picks a free one); return the actual port."""
        if self._server is not None:
            raise RuntimeError("meter server already started")
        server = ModbusTcpServer(
            self._sim_device(),
            address=(self.host, self.port),
            trace_packet=self._trace_packet,
        )
        await server.serve_forever(background=True)
        self._server = server
        self.port = server.transport.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        log.info("modbus meter listening host=%s port=%d profile=%s", self.host, self.port, self.profile.id)
        return self.port

    async def stop(self) -> None:
        if self._server is None:
            return
        server, self._server = self._server, None
        await server.shutdown()
        await asyncio.sleep(0)  # let the transports run their close callbacks

    async def __aenter__(self) -> MeterServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # -- pymodbus plumbing ----------------------------------------------
    def _sim_device(self) -> SimDevice:
        blocks: dict[RegisterFunction, list[SimData]] = {}
        for function in RegisterFunction:
            addresses = sorted(self._image[function])
            blocks[function] = [
                SimData(start, values=[0] * count, datatype=DataType.REGISTERS, readonly=True)
                for start, count in _spans(addresses, self.profile.max_read_gap)
            ] or [SimData(0, datatype=DataType.INVALID)]
        no_bits = [SimData(0, values=[False] * 16, datatype=DataType.BITS)]
        return SimDevice(
            id=self.device_id,
            simdata=(
                no_bits,
                list(no_bits),
                blocks[RegisterFunction.HOLDING],
                blocks[RegisterFunction.INPUT],
            ),
            action=partial(MeterServer._on_access, self),
        )

    async def _on_access(
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        self.requests_received += 1
        if self._fault.mode is MeterFaultMode.EXCEPTION:
            return ExcCodes(int(self._fault.code))
        function = RegisterFunction.INPUT if function_code == 4 else RegisterFunction.HOLDING
        image = self._image[function]
        for offset in range(count):
            registers[address - start_address + offset] = image.get(address + offset, 0)
        return None

    def _trace_packet(self, sending: bool, data: bytes) -> bytes:
        if sending and self._fault.mode is MeterFaultMode.TIMEOUT:
            return b""
        return data
