"""Fleet sensor records: one Modbus meter per cabinet and urban sensors on multifunction poles.

A cabinet's meter is a `modbus_meter.MeterModel` fed with the mean power of the cabinet's
luminaires over each step (their energy counters' increase, so the meter's kWh follow the
luminaires' exactly, plus the feeder's cable losses and any earth leakage), read by the
cabinet's first controller (its segment controller) at each of its reports and published as
the agent publishes a meter: `wire.sensor_channels.meter_records`, sensor index 0. A fraction
of the poles are multifunction poles that also carry noise, air and weather sensors
(`SensorField.urban`), published as five records with sensor index `URBAN_SENSOR_INDEX`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from controller_fw_sim.fleet_inventory import URBAN_SENSOR_KINDS, Inventory
from controller_fw_sim.modbus_meter import MeterConfig, MeterModel
from controller_fw_sim.sensors import SensorField
from wire import sensor_channels as wire_sensor_channels
from wire.records import (
    SENSOR_DTYPE,
    Quantity,
)
from wire.sensor_channels import METER_QUANTITIES, URBAN_SENSOR_BASE, meter_records, meter_sensor

METER_SENSOR_INDEX = meter_sensor(0)  # the cabinet's one meter
URBAN_SENSOR_INDEX = URBAN_SENSOR_BASE  # the multifunction pole's sensor box
#: SensorField.urban key and wire quantity of each urban reading, in record order
URBAN_QUANTITIES: tuple[tuple[str, Quantity], ...] = tuple(wire_sensor_channels.URBAN_QUANTITIES.items())
assert len(URBAN_QUANTITIES) == len(URBAN_SENSOR_KINDS)
METER_RECORDS = len(METER_QUANTITIES)
DEFAULT_MULTIFUNCTION_FRACTION = 0.05

_U8 = np.uint8


class CabinetMeters:
    """The meters of every cabinet, each read by its cabinet's segment controller."""

    def __init__(self, inventory: Inventory, *, seed: int = 0, config: MeterConfig | None = None,
                 skip: np.ndarray | None = None) -> None:
        """`skip`: controllers (a mask) that cannot read a meter here (played by hosted agents):
        a cabinet's meter is read by its first controller not skipped, and a cabinet of skipped
        controllers only has no meter reading."""
        config = config or MeterConfig()
        n_cab = len(inventory.cabinet_ids)
        ctl_cab = inventory.controller_cabinet.astype(np.int64)
        n = ctl_cab.shape[0]
        segment = np.full(n_cab, n, dtype=np.int64)
        readers = np.arange(n) if skip is None else np.flatnonzero(~skip)
        np.minimum.at(segment, ctl_cab[readers], readers)
        self.segment = segment  # controller index reading each cabinet's meter (n: none)
        self.cabinet_of = np.full(n, -1, dtype=np.int64)  # cabinet a controller reads, or -1
        read = segment < n
        self.cabinet_of[segment[read]] = np.arange(n_cab)[read]
        lum_cab = ctl_cab[inventory.luminaire_controller]
        self.lum_order = np.argsort(lum_cab, kind="stable")  # luminaires grouped by cabinet
        counts = np.bincount(lum_cab, minlength=n_cab)
        self.lum_start = np.concatenate([[0], np.cumsum(counts)])
        self.models = [
            MeterModel(
                replace(config, seed=int(np.random.SeedSequence([seed, 0x4D, c]).generate_state(1)[0])),
                int(counts[c]),
            )  # luminaires round-robin over L1, L2, L3
            for c in range(n_cab)
        ]
        self.last_lum_energy_wh = np.zeros(inventory.n_luminaires)
        self.last_read_s = np.zeros(n_cab)
        self.leak_a_s = np.zeros(n_cab)  # integral of the earth-leakage current since the last read

    def __len__(self) -> int:
        return len(self.models)

    def add_leakage(self, cabinets: np.ndarray, current_a: np.ndarray, dt_s: float) -> None:
        """Leakage current held over the tick just ended, per faulted cabinet."""
        self.leak_a_s[cabinets] += current_a * dt_s

    def set_start(self, energy_wh: np.ndarray) -> None:
        """Luminaire energy counters at the meters' zero (the fleet's start)."""
        self.last_lum_energy_wh[:] = energy_wh

    def read(self, cabinets: np.ndarray, t_s: float, energy_wh: Callable[[np.ndarray], np.ndarray],
             power_factor: Callable[[np.ndarray], np.ndarray]) -> list[dict[str, float]]:
        """Advance the meters of `cabinets` to t_s and return their register values.

        `energy_wh(lums)` and `power_factor(lums)` give luminaires' (global indices) energy
        counters at t_s and power factors; the mean power since each meter's last read is
        held over its step.
        """
        starts, ends = self.lum_start[cabinets], self.lum_start[cabinets + 1]
        all_lums = self.lum_order[
            np.concatenate([np.arange(a, b) for a, b in zip(starts.tolist(), ends.tolist(), strict=True)])
        ]
        all_energy, all_pf = energy_wh(all_lums), power_factor(all_lums)
        offsets = np.concatenate([[0], np.cumsum(ends - starts)]).tolist()
        out = []
        for i, cab in enumerate(cabinets.tolist()):
            at = slice(offsets[i], offsets[i + 1])
            lums, energy = all_lums[at], all_energy[at]
            dt = t_s - float(self.last_read_s[cab])
            if dt > 0:
                power = (energy - self.last_lum_energy_wh[lums]) * (3600.0 / dt)
                leak = float(self.leak_a_s[cab]) / dt
            else:
                power, leak = np.zeros(lums.shape[0]), 0.0
            reading = self.models[cab].update(dt, power, luminaire_power_factor=all_pf[at],
                                              leakage_a=leak)
            self.last_lum_energy_wh[lums] = energy
            self.last_read_s[cab] = t_s
            self.leak_a_s[cab] = 0.0
            out.append(reading.register_values())
        return out

    def records(self, time_us: int, values: list[dict[str, float]]) -> np.ndarray:
        """(k, METER_RECORDS) SENSOR_DTYPE records, as the agent makes them for a meter."""
        if not values:
            return np.zeros((0, METER_RECORDS), dtype=SENSOR_DTYPE)
        return np.stack([meter_records(time_us, METER_SENSOR_INDEX, v) for v in values])


class UrbanSensors:
    """Which controllers are multifunction poles, and their readings."""

    def __init__(self, inventory: Inventory, fraction: float, *, seed: int = 0) -> None:
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"multifunction fraction must be in [0, 1], not {fraction}")
        n = inventory.n_controllers
        rng = np.random.default_rng([seed, 0x55])
        k = int(round(fraction * n))
        self.controllers = np.sort(rng.choice(n, size=k, replace=False)) if k else np.zeros(0, np.int64)
        self.is_multifunction = np.zeros(n, dtype=bool)
        self.is_multifunction[self.controllers] = True
        self.inventory = inventory

    def values(self, controllers: np.ndarray, when, rng: np.random.Generator) -> np.ndarray:
        """(k, 5) readings of multifunction poles `controllers`, in URBAN_QUANTITIES order."""
        inv = self.inventory
        field = SensorField(lat=inv.controller_lat[controllers], lon=inv.controller_lon[controllers],
                            road_class=inv.controller_road_class[controllers], rng=rng)
        readings = field.urban(when)
        return np.stack([readings[name] for name, _ in URBAN_QUANTITIES], axis=1)

    @staticmethod
    def records(time_us: int, values: np.ndarray) -> np.ndarray:
        """(k, 5) SENSOR_DTYPE records, values clamped into each quantity's range (NaN as 0)."""
        k = values.shape[0]
        rec = np.zeros((k, len(URBAN_QUANTITIES)), dtype=SENSOR_DTYPE)
        rec["time_us"] = time_us
        rec["sensor"] = URBAN_SENSOR_INDEX
        for j, (_, q) in enumerate(URBAN_QUANTITIES):
            rec["quantity"][:, j] = int(q)
            v = np.nan_to_num(values[:, j], nan=0.0, posinf=0.0, neginf=0.0)
            rec["value"][:, j] = np.clip(v, q.low, q.high)
        return rec
