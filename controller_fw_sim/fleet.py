"""Fleet mode core: up to 100,000 simulated controllers as flat numpy arrays on a sim clock.

No I/O and no Python object per luminaire: `Fleet.advance` moves the simulated region to a
time and returns the telemetry due by then as one (k, 24 + 48 M) uint8 array, one row per
controller message in the wire format (`wire.codec`); `Fleet.handle_command` applies a
command from the `cmd` topic to the arrays and returns its `Ack`. JSON messages to send
(acks, birth/death) wait in `Fleet.drain_json`. The MQTT shell is `fleet_publish` /
`fleet_runner`.

Each controller runs the same firmware: a dusk-to-dawn profile (full after sunset, dimmed
late at night, off after sunrise) unless a command overrides some of its luminaires;
luminaire physics (`physics.step`) is integrated per controller up to each report and
whenever a luminaire's level changes, so energy counters are exact for the levels played.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import numpy as np
from astral import Observer
from astral.sun import elevation as astral_elevation

from controller_fw_sim import physics
from controller_fw_sim.dali import profiles as gear_profiles
from controller_fw_sim.faults import (
    STATUS_LAMP_FAILURE,
    STATUS_LAMP_ON,
    FaultKind,
    FaultSchedule,
    FleetIndex,
    FleetState,
    Scenario,
    apply_faults,
)
from controller_fw_sim.fleet_inventory import (
    REGION_CENTRE,
    SENSOR_KINDS,
    Inventory,
    luminaire_device_id,
    sensor_device_id,
)
from controller_fw_sim.fleet_sensors import (
    DEFAULT_MULTIFUNCTION_FRACTION,
    CabinetMeters,
    UrbanSensors,
)
from controller_fw_sim.hosted_energy import HostedEnergy
from controller_fw_sim.sensors import (
    BRUSSELS,
    PEAK_DETECTIONS_PER_MIN,
    clear_sky_lux,
    local_hour,
    temperature_c,
    traffic_shape,
)
from wire.codec import encode_rows
from wire.messages import (
    Ack,
    AckStatus,
    GroupTarget,
    Identify,
    LuminaireTarget,
    MessageError,
    OfflineReason,
    Reboot,
    SetLevel,
    State,
    command_id_of,
    dumps,
    parse_command,
)
from wire.records import (
    ABSENT_FIELDS,
    HEADER_SIZE,
    LUMINAIRE_DTYPE,
    LuminaireFailure,
    RecordType,
)
from wire.topics import Kind

UTC = UTC
FIRMWARE = "luciole-fleet-sim/1"
FULL_LEVEL = 254
DIM_LEVEL = 229  # about 50 % light on the DALI logarithmic curve
DIM_FROM_H = 23.0  # local time the late-night dimming starts ...
DIM_UNTIL_H = 5.0  # ... and ends
NIGHT_ELEVATION_DEG = -0.833  # sunset / sunrise: the sun's upper limb on the horizon
NOMINAL_MAINS_V = 230.0
OVER_VOLTAGE_V = NOMINAL_MAINS_V * 1.10
UNDER_VOLTAGE_V = NOMINAL_MAINS_V * 0.90
TILT_ALARM_DEG = 30.0
CLOUD_TRANSMISSION = 0.6  # a grey Brussels sky
DEFAULT_START = datetime(2025, 1, 14, 15, 55, tzinfo=UTC)  # a winter evening, sunset at 16:04 UTC

_U8 = np.uint8


def scheduled_level(elevation_deg: np.ndarray | float, hour_local: np.ndarray | float) -> np.ndarray:
    """The default dusk-to-dawn profile: full after sunset, dimmed 23:00-05:00, off by day."""
    elev = np.asarray(elevation_deg, dtype=float)
    hour = np.asarray(hour_local, dtype=float)
    late = (hour >= DIM_FROM_H) | (hour < DIM_UNTIL_H)
    night = elev < NIGHT_ELEVATION_DEG
    return np.where(night, np.where(late, DIM_LEVEL, FULL_LEVEL), 0).astype(np.int64)


def arc_level_of_fraction(fraction: np.ndarray) -> np.ndarray:
    """Inverse of the logarithmic curve: the arc level giving this light fraction (0 -> 0)."""
    f = np.clip(np.asarray(fraction, dtype=float), 0.0, 1.0)
    with np.errstate(divide="ignore"):
        n = 1.0 + (253.0 / 3.0) * (np.log10(f * 100.0) + 1.0)
    return np.where(f > 0, np.clip(np.rint(n), 1, 254), 0).astype(np.int64)


def group_members(group: int, m: int) -> np.ndarray:
    """Luminaire indices of a DALI group: 0 is all of them, 1 the even ones, 2 the odd ones."""
    idx = np.arange(m)
    if group == 0:
        return idx
    if group in (1, 2):
        return idx[idx % 2 == group - 1]
    return idx[:0]


class JsonOut(NamedTuple):
    """A JSON message to publish for one controller."""

    kind: Kind
    controller: int
    payload: bytes
    retain: bool


class SensorRows(NamedTuple):
    """Sensor telemetry of one kind of device: row i is the payload of `controllers[i]`."""

    controllers: np.ndarray  # int64 (k,)
    payloads: np.ndarray  # uint8 (k, 24 + 16 R)


@dataclass(frozen=True)
class Outbox:
    """The telemetry of one tick: row i is the whole payload of controller `controllers[i]`.

    `sensors` holds the tick's sensor messages (meters, then urban sensors); a controller's
    are in its sensor sequence order.
    """

    time: datetime
    controllers: np.ndarray  # int64 (k,)
    payloads: np.ndarray  # uint8 (k, 24 + 48 M)
    sensors: tuple[SensorRows, ...] = ()

    def __len__(self) -> int:
        return int(self.controllers.shape[0])

    def payload(self, i: int) -> bytes:
        return self.payloads[i].tobytes()

    @property
    def sensor_messages(self) -> int:
        return sum(int(s.controllers.shape[0]) for s in self.sensors)


def luminaire_params(inventory: Inventory,
                     lums: np.ndarray | None = None) -> physics.LuminaireParams:
    """The physical model of the region's luminaires (of `lums`, global indices, when given),
    from their lantern models: what the fleet simulates, and what hosted agents' gear is."""
    models = inventory.models
    mi = inventory.luminaire_model if lums is None else inventory.luminaire_model[lums]
    k = mi.shape[0]
    return physics.LuminaireParams(
        rated_w=np.array([x.rated_w for x in models])[mi],
        standby_w=np.full(k, 0.5), eta_max=np.full(k, 0.92),
        eta_knee=np.full(k, 0.05), pf_min=np.full(k, 0.35),
        pf_max=np.full(k, 0.98), temp_rise_c=np.full(k, 25.0),
        thermal_tau_s=np.full(k, 1200.0),
        l80_hours=np.array([x.l80_hours for x in models])[mi],
        clo=np.array([x.clo for x in models])[mi],
        nominal_lm=np.array([x.nominal_lm for x in models])[mi],
        led_voltage_v=np.full(k, 120.0),
    )


def _take_params(params: physics.LuminaireParams, index: np.ndarray) -> physics.LuminaireParams:
    return physics.LuminaireParams(**{f.name: getattr(params, f.name)[index] for f in fields(params)})


class _FaultOverlay:
    """Faults of a scenario on the fleet's devices, applied to the few faulted ones only."""

    def __init__(self, scenario: Scenario, inventory: Inventory) -> None:
        m = inventory.luminaires_per_controller
        ctl_pos = {c: i for i, c in enumerate(inventory.controller_ids)}
        cab_pos = {c: i for i, c in enumerate(inventory.cabinet_ids)}
        lum_ids, lum_at, ctl_ids, ctl_at, cab_ids, cab_at, sen_ids, sen_at, sen_kind = ([] for _ in range(9))
        for spec in scenario.faults:
            device = spec.device
            head, _, tail = device.partition(":")
            if head in ctl_pos and tail == "":
                if device not in ctl_ids:
                    ctl_ids.append(device)
                    ctl_at.append(ctl_pos[head])
            elif head in ctl_pos and tail in SENSOR_KINDS:
                if device not in sen_ids:
                    sen_ids.append(device)
                    sen_at.append(ctl_pos[head])
                    sen_kind.append(SENSOR_KINDS.index(tail))
            elif head in ctl_pos and tail.isdigit() and int(tail) < m:
                if device not in lum_ids:
                    lum_ids.append(device)
                    lum_at.append(ctl_pos[head] * m + int(tail))
            elif device in cab_pos and device not in cab_ids:
                cab_ids.append(device)
                cab_at.append(cab_pos[device])
        self.schedule = FaultSchedule(scenario)
        self.index = FleetIndex.from_ids(lum_ids, ctl_ids, cab_ids, sen_ids)
        self.lum = np.asarray(lum_at, dtype=np.int64)
        self.ctl = np.asarray(ctl_at, dtype=np.int64)
        self.sensor_ctl = np.asarray(sen_at, dtype=np.int64)
        self.cabinet = np.asarray(cab_at, dtype=np.int64)
        n_lum = inventory.n_luminaires
        self.slot = np.full(n_lum, -1, dtype=np.int64)
        self.slot[self.lum] = np.arange(self.lum.shape[0])
        kind = np.asarray(sen_kind, dtype=np.int64)
        slots = np.arange(kind.shape[0])
        self.sensor_slot = np.full(inventory.n_controllers, -1, dtype=np.int64)  # lux sensors
        self.sensor_slot[self.sensor_ctl[kind == 0]] = slots[kind == 0]
        urban = kind > 0
        self.urban_slot = None  # (controllers, urban kinds) -> slot, when any is faulted
        if urban.any():
            self.urban_slot = np.full((inventory.n_controllers, len(SENSOR_KINDS) - 1), -1, dtype=np.int32)
            self.urban_slot[self.sensor_ctl[urban], kind[urban] - 1] = slots[urban]
        nl, nc = self.lum.shape[0], self.ctl.shape[0]
        self.state = FleetState.initial(nl, nc, len(cab_ids), len(sen_ids))
        self.failure = np.zeros(nl, dtype=np.uint16)
        self.ctl_failure = np.zeros(inventory.n_controllers, dtype=np.uint16)
        self.online = np.ones(inventory.n_controllers, dtype=bool)
        self.frozen = np.full(len(sen_ids), np.nan)  # per faulted sensor; NaN: reads normally
        self.sensor_seen = np.zeros(len(sen_ids))

    def update(self, t: datetime, dt_s: float, fleet: Fleet, is_day: bool) -> np.ndarray:
        """Recompute the faulted devices' state at t; returns energy added (Wh) per faulted lum."""
        st = fleet.state
        lum = self.lum
        level_frac = physics.light_fraction(st.level[lum], st.curve[lum])
        status = np.where(st.drive[lum] > 0, STATUS_LAMP_ON, 0).astype(_U8)
        params = _take_params(fleet.params, lum)
        full_w = physics.input_power_w(
            params, physics.clo_gain(st.lamp_on_s[lum] / 3600.0, params.l80_hours, params.clo),
            np.ones(lum.shape[0], dtype=bool))
        powered = fleet.lum_supply_v[lum] >= physics.MIN_SUPPLY_V
        base = FleetState(
            level=level_frac, power_w=st.power_w[lum].copy(),
            rated_power_w=fleet.params.full_input_w[lum], power_factor=st.power_factor[lum].copy(),
            voltage_v=st.supply_v[lum].copy(), status=status,
            is_day=np.full(lum.shape[0], is_day), online=np.ones(self.ctl.shape[0], bool),
            tilt_deg=np.zeros(self.ctl.shape[0]), leakage_a=np.zeros(self.cabinet.shape[0]),
            sensor_value=self.sensor_seen.copy(), sensor_frozen=self.state.sensor_frozen,
            full_power_w=full_w, driver_temp_c=st.driver_temp_c[lum].copy(),
            supply_lost_phases=np.zeros(self.cabinet.shape[0], dtype=np.uint8),
            contactor_stuck=np.zeros(self.cabinet.shape[0], dtype=bool),
        )
        new = apply_faults(self.schedule, t, base, self.index)
        # an unpowered luminaire draws nothing, whatever its fault
        new = replace(new, power_w=np.where(powered, new.power_w, base.power_w))
        added = (new.power_w - base.power_w) * dt_s / 3600.0
        self.state = new
        lum_index = self.index.luminaires
        fail = np.zeros(lum.shape[0], dtype=np.uint16)
        for failed, bit in (
            (self.schedule.mask(FaultKind.LAMP_FAILURE, t, lum_index), LuminaireFailure.LAMP),
            (self.schedule.mask(FaultKind.DRIVER_FAILURE, t, lum_index), LuminaireFailure.DRIVER),
            (new.voltage_v > OVER_VOLTAGE_V, LuminaireFailure.OVER_VOLTAGE),
            (new.voltage_v < UNDER_VOLTAGE_V, LuminaireFailure.UNDER_VOLTAGE),
        ):
            fail[failed] |= np.uint16(bit)
        self.failure = fail
        self.ctl_failure[self.ctl] = np.where(new.tilt_deg > TILT_ALARM_DEG, int(LuminaireFailure.TILT), 0)
        self.online[self.ctl] = new.online
        self.frozen = new.sensor_frozen
        return added

    def stick(self, controllers: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Urban readings (k, 5) of `controllers` as their sensors show them: stuck ones frozen."""
        if self.urban_slot is None:
            return values
        slot = self.urban_slot[controllers]
        hit = slot >= 0
        if not hit.any():
            return values
        self.sensor_seen[slot[hit]] = values[hit]
        frozen = self.frozen[slot[hit]]
        values = values.copy()
        values[hit] = np.where(np.isnan(frozen), values[hit], frozen)
        return values

    def overlay(self, lums: np.ndarray, rec: np.ndarray) -> None:
        """Write the faulted state into the records of luminaires `lums` (global indices)."""
        slot = self.slot[lums]
        hit = np.flatnonzero(slot >= 0)
        if hit.shape[0] == 0:
            return
        s = slot[hit]
        new = self.state
        rec["level"][hit] = arc_level_of_fraction(new.level[s])
        rec["status"][hit] = new.status[s]
        rec["power_w"][hit] = new.power_w[s]
        rec["power_factor"][hit] = new.power_factor[s]
        rec["voltage_v"][hit] = new.voltage_v[s]
        rec["driver_temp_c"][hit] = new.driver_temp_c[s]
        with np.errstate(divide="ignore", invalid="ignore"):
            current = np.where(new.voltage_v[s] * new.power_factor[s] > 0,
                               new.power_w[s] / (new.voltage_v[s] * new.power_factor[s]), 0.0)
        rec["current_a"][hit] = np.clip(current, 0.0, 20.0)
        rec["failure"][hit] |= self.failure[s]


class Fleet:
    """All controllers and luminaires of a region, simulated together.

    Controller arrays have length N, luminaire arrays N * M (controller-major). Times inside
    are seconds since `start` (``t_s``); record times are µs since the Unix epoch.
    """

    def __init__(self, inventory: Inventory, *, start: datetime = DEFAULT_START,
                 interval_s: float = 60.0, scenario: Scenario | None = None, seed: int = 0,
                 firmware: str = FIRMWARE, meters: bool = True,
                 multifunction_fraction: float = DEFAULT_MULTIFUNCTION_FRACTION,
                 gear_mix: Sequence[str | gear_profiles.GearProfile] = ("d4i_full",),
                 hosted: Sequence[str] = (), hosted_energy: HostedEnergy | None = None) -> None:
        """`hosted`: controllers played by edge agents beside the fleet (never simulated here);
        `hosted_energy`: their gear's energy counters, which the cabinet meters then count for
        their luminaires instead of this fleet's model of them."""
        if start.tzinfo is None:
            raise ValueError("start must be an aware datetime (UTC)")
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        self.inventory = inventory
        self.start = start.astimezone(UTC)
        self.firmware = firmware
        n, m = inventory.n_controllers, inventory.luminaires_per_controller
        self.n, self.m = n, m
        self.rng = np.random.default_rng([seed, 0xF1EE7])
        self.params = luminaire_params(inventory)
        cabinet_v = NOMINAL_MAINS_V + self.rng.normal(0.0, 2.0, len(inventory.cabinet_ids))
        self.mains_v = cabinet_v[inventory.controller_cabinet[inventory.luminaire_controller]]
        # switched supply: a cabinet's controllers are unpowered (and silent) while it is off
        self.ctl_cabinet = inventory.controller_cabinet.astype(np.int64)
        self.ctl_phase = inventory.controller_phase
        self.switched = inventory.switched
        self.cabinet_on = np.ones(len(inventory.cabinet_ids), dtype=bool)
        self.powered = np.ones(n, dtype=bool)
        self.lum_supply_v = self.mains_v.copy()
        ambient = temperature_c(self.start)
        self.state = physics.LuminaireState.initial(n * m, ambient_c=ambient)
        # lamps have burnt for a few years already
        self.state.lamp_on_s[:] = self.rng.uniform(0, 4 * 4000 * 3600.0, n * m)

        # controller arrays
        self.boot_id = self.rng.integers(1, 1 << 63, n, dtype=np.uint64)
        self.next_seq = np.zeros(n, dtype=np.uint64)  # telemetry record sequence
        self.next_sensor_seq = np.zeros(n, dtype=np.uint64)  # sensor record sequence (own stream)
        self.json_seq = np.zeros(n, dtype=np.uint64)  # acks, birth/death
        self.interval_s = np.full(n, float(interval_s))
        self.next_due_s = np.arange(1, n + 1, dtype=np.float64) * (float(interval_s) / n)  # staggered
        self.last_step_s = np.zeros(n)
        self.reboot_at_s = np.full(n, np.inf)
        # controllers played elsewhere (edge agents hosted beside the fleet): never simulated here
        self.hosted = np.isin(np.asarray(inventory.controller_ids), np.asarray(list(hosted), dtype=str))
        if len(hosted) != int(self.hosted.sum()):
            raise ValueError("a hosted controller is not in the inventory")
        # luminaire arrays
        self.override_level = np.full(n * m, -1, dtype=np.int64)
        self.override_until_s = np.full(n * m, np.inf)
        self.energy_extra_wh = np.zeros(n * m)
        self._lum_of_ctl = np.arange(m, dtype=np.int64)
        # gear profiles (controller_fw_sim.dali.profiles), luminaire j taking gear_mix[j % len]:
        # what a luminaire's gear does not measure goes out as 0 with its ABSENT_* bit
        self.absent = np.array([int(p.absent()) for p in gear_profiles.mix(n * m, gear_mix)],
                               dtype=np.uint16)
        self._lum_index = inventory.luminaire_index

        self.t_s = 0.0
        self._json: list[JsonOut] = []
        self.faults = _FaultOverlay(scenario, inventory) if scenario and scenario.faults else None
        self._elev, self._hour = self._sun(self.start)
        self.schedule_level = int(scheduled_level(self._elev, self._hour))
        self.state.level[:] = self.schedule_level
        self.powered = self._supply_on(None)
        self.lum_supply_v = np.where(np.repeat(self.powered, m), self.mains_v, 0.0)
        self.state = physics.instantaneous(
            self.params, self.state.with_inputs(supply_v=self.lum_supply_v)).with_inputs(
            driver_temp_c=np.full(n * m, ambient))
        self.meters = CabinetMeters(inventory, seed=seed, skip=self.hosted) if meters else None
        self.hosted_energy = hosted_energy
        if self.meters is not None:
            self.meters.set_start(self.state.energy_wh)
        self.urban = UrbanSensors(inventory, multifunction_fraction, seed=seed)
        self.messages_built = 0
        self.sensor_messages_built = 0

    # ------------------------------------------------------------------ time
    def time_at(self, t_s: float) -> datetime:
        return self.start + timedelta(seconds=float(t_s))

    @property
    def now(self) -> datetime:
        return self.time_at(self.t_s)

    def _sun(self, when: datetime) -> tuple[float, float]:
        lat, lon = REGION_CENTRE
        # geometric elevation: sunset and sunrise are where it crosses -0.833 degrees
        elev = astral_elevation(Observer(lat, lon), when, with_refraction=False)
        return float(elev), local_hour(when, BRUSSELS)

    # --------------------------------------------------------------- physics
    def luminaires_of(self, controllers: np.ndarray) -> np.ndarray:
        controllers = np.asarray(controllers, dtype=np.int64)
        return (controllers[:, None] * self.m + self._lum_of_ctl).ravel()

    def _step_to(self, controllers: np.ndarray, t_s: float, ambient_c: float) -> None:
        """Integrate the luminaires of `controllers` from their last step to t_s at their levels."""
        controllers = np.asarray(controllers, dtype=np.int64)
        dt = t_s - self.last_step_s[controllers]
        keep = dt > 0
        if not keep.any():
            return
        controllers, dt = controllers[keep], dt[keep]
        values, group = np.unique(dt, return_inverse=True)
        st = self.state
        for g, dt_g in enumerate(values.tolist()):
            lums = self.luminaires_of(controllers[group == g])
            sub = st.take(lums)
            new = physics.step(_take_params(self.params, lums), sub, dt_g, ambient_c,
                               self.lum_supply_v[lums])
            for f in fields(new):
                getattr(st, f.name)[lums] = getattr(new, f.name)
        self.last_step_s[controllers] = t_s

    def _supply_on(self, faulted: _FaultOverlay | None) -> np.ndarray:
        """Which controllers are powered now: switched cabinets are off by day unless their
        contactor is stuck; a lost feeder phase silences the controllers on it."""
        night = self._elev < NIGHT_ELEVATION_DEG
        cab_on = ~self.switched | night
        lost = np.zeros(cab_on.shape[0], dtype=np.int64)
        if faulted is not None and faulted.cabinet.shape[0]:
            cab_on[faulted.cabinet] |= faulted.state.contactor_stuck
            lost[faulted.cabinet] = faulted.state.supply_lost_phases
        cab_on &= lost != 0b111
        self.cabinet_on = cab_on
        phase_dead = (lost[self.ctl_cabinet] >> self.ctl_phase) & 1
        return cab_on[self.ctl_cabinet] & (phase_dead == 0)

    def _update_supply(self, t_s: float, ambient_c: float) -> None:
        """Switch controllers on or off with their cabinet's supply; a controller powered up
        boots afresh (new boot id, sequences from 0, birth message)."""
        powered = self._supply_on(self.faults)
        changed = np.flatnonzero(powered != self.powered)
        if changed.shape[0] == 0:
            return
        self._step_to(changed, t_s, ambient_c)
        self.powered[changed] = powered[changed]
        lums = self.luminaires_of(changed)
        self.lum_supply_v[lums] = np.where(np.repeat(powered[changed], self.m), self.mains_v[lums], 0.0)
        up = changed[powered[changed]]
        if up.shape[0]:
            self.boot_id[up] = self.rng.integers(1, 1 << 63, up.shape[0], dtype=np.uint64)
            self.next_seq[up] = 0
            self.next_sensor_seq[up] = 0
            self.json_seq[up] = 0
            up_lums = self.luminaires_of(up)
            self.override_level[up_lums] = -1
            self.override_until_s[up_lums] = np.inf
            self._set_levels(up_lums)
            for c, payload in self.state_payloads(True, None, up):
                self._json.append(JsonOut(Kind.STATE, c, payload, True))
        self._refresh(lums)

    def _set_levels(self, lums: np.ndarray) -> None:
        """Levels in force (override, else schedule); power and the other outputs follow at
        once (the integrals do not: the caller has stepped these luminaires up to now)."""
        ov = self.override_level[lums]
        self.state.level[lums] = np.where(ov >= 0, ov, self.schedule_level)
        self._refresh(lums)

    def _refresh(self, lums: np.ndarray) -> None:
        """Recompute the instantaneous outputs of `lums` for their current inputs."""
        if lums.shape[0] == 0:
            return
        st = self.state
        new = physics.step(_take_params(self.params, lums), st.take(lums), 0.0,
                           st.driver_temp_c[lums], self.lum_supply_v[lums])
        for f in ("power_w", "apparent_power_va", "load_power_w", "power_factor", "current_a",
                  "supply_v", "drive", "light_lm", "led_current_a"):
            getattr(st, f)[lums] = getattr(new, f)

    # ------------------------------------------------------------------ tick
    def advance(self, t_s: float) -> Outbox:
        """Move the region to `t_s` (seconds since start, not backwards) and build due telemetry."""
        if t_s < self.t_s:
            raise ValueError(f"time goes forward: {t_s} < {self.t_s}")
        dt_tick = t_s - self.t_s
        self.t_s = t_s
        when = self.time_at(t_s)
        ambient_c = temperature_c(when)
        self._elev, self._hour = self._sun(when)

        reboots = np.flatnonzero(self.reboot_at_s <= t_s)
        if reboots.shape[0]:
            self._reboot(reboots, t_s, ambient_c)

        level = int(scheduled_level(self._elev, self._hour))
        if level != self.schedule_level:  # every luminaire changes level: integrate all first
            self._step_to(np.arange(self.n), t_s, ambient_c)
            self.schedule_level = level
            self._set_levels(np.arange(self.n * self.m))

        expired = np.flatnonzero(self.override_until_s <= t_s)
        if expired.shape[0]:
            ctls = np.unique(expired // self.m)
            self._step_to(ctls, t_s, ambient_c)
            self.override_level[expired] = -1
            self.override_until_s[expired] = np.inf
            self._set_levels(expired)

        # the contactors first: a cabinet switched on at dusk powers its luminaires before their
        # faults are laid over them (else the faulted state, a meter's power factor included,
        # is the unpowered one until the next tick: 230 W of cable losses over a day's step)
        if self.switched.any() or self.faults is not None:
            self._update_supply(t_s, ambient_c)
        if self.faults is not None:
            added = self.faults.update(when, dt_tick, self, self._elev >= NIGHT_ELEVATION_DEG)
            self.energy_extra_wh[self.faults.lum] += added
            if self.meters is not None and self.faults.cabinet.shape[0]:
                fst = self.faults.state
                on = self.cabinet_on[self.faults.cabinet]
                # a leak upstream of the contactor flows while the feeder is live, open or not
                live = fst.supply_lost_phases != 0b111
                day = fst.leakage_day_a if fst.leakage_day_a is not None else 0.0
                self.meters.add_leakage(self.faults.cabinet,
                                        np.where(on, fst.leakage_a, day * live), dt_tick)
            self._update_supply(t_s, ambient_c)  # a feeder lost or restored by a fault

        due = np.flatnonzero(self.next_due_s <= t_s)
        if due.shape[0] == 0:
            row_bytes = HEADER_SIZE + LUMINAIRE_DTYPE.itemsize * self.m
            return Outbox(when, due, np.empty((0, row_bytes), dtype=_U8))
        self.next_due_s[due] += self.interval_s[due]
        due = due[self.powered[due] & ~self.hosted[due]]  # an unpowered controller sends nothing
        if self.faults is not None:
            due = due[self.faults.online[due]]  # a silent controller sends nothing
        self._step_to(due, t_s, ambient_c)
        payloads = self.build_payloads(due, when)
        return Outbox(when, due, payloads, self.build_sensor_payloads(due, when))

    def build_payloads(self, controllers: np.ndarray, when: datetime) -> np.ndarray:
        """Telemetry of `controllers` at `when` from the current state, one row per message.

        Consumes M sequence numbers per controller, as `encode_luminaire` would number them.
        """
        k, m = controllers.shape[0], self.m
        lums = self.luminaires_of(controllers)
        st = self.state
        rec = np.zeros(k * m, dtype=LUMINAIRE_DTYPE)
        rec["time_us"] = int(round(when.timestamp() * 1_000_000))
        rec["luminaire"] = self._lum_index[lums]
        rec["level"] = st.level[lums]
        lit = st.drive[lums] > 0
        status = np.where(lit, STATUS_LAMP_ON, 0) | np.where(st.lamp_ok[lums], 0, STATUS_LAMP_FAILURE)
        rec["status"] = status
        rec["power_w"] = st.power_w[lums]
        rec["energy_wh"] = np.maximum(st.energy_wh[lums] + self.energy_extra_wh[lums], 0.0)
        rec["voltage_v"] = st.supply_v[lums]
        rec["current_a"] = st.current_a[lums]
        rec["power_factor"] = st.power_factor[lums]
        rec["driver_temp_c"] = st.driver_temp_c[lums]
        lux = clear_sky_lux(self._elev) * CLOUD_TRANSMISSION * self.rng.lognormal(0.0, 0.08, k)
        road = self.inventory.controller_road_class[controllers]
        rate = PEAK_DETECTIONS_PER_MIN[road] * float(traffic_shape(self._hour))
        presence = self.rng.poisson(np.repeat(rate * self.interval_s[controllers] / 60.0, m))
        rec["presence"] = np.minimum(presence, 65_535)
        if self.faults is not None:
            f = self.faults
            sslot = f.sensor_slot[controllers]
            has = np.flatnonzero(sslot >= 0)
            if has.shape[0]:
                f.sensor_seen[sslot[has]] = lux[has]
                frozen = f.frozen[sslot[has]]
                lux[has] = np.where(np.isnan(frozen), lux[has], frozen)
            f.overlay(lums, rec)
            rec["failure"] |= np.repeat(f.ctl_failure[controllers], m)
        rec["ambient_lux"] = np.repeat(np.clip(lux, 0.0, 200_000.0), m)
        absent = self.absent[lums]
        if absent.any():
            rec["failure"] |= absent
            for bit, names in ABSENT_FIELDS.items():
                lacking = (absent & bit) != 0
                for name in names:
                    rec[name][lacking] = 0

        out = encode_rows(RecordType.LUMINAIRE, self.boot_id[controllers], self.next_seq[controllers],
                        rec.reshape(k, m))
        self.next_seq[controllers] += np.uint64(m)
        self.messages_built += k
        return out

    def luminaire_energy_wh(self, lums: np.ndarray) -> np.ndarray:
        """Energy counters of luminaires `lums` now, without stepping them: since their last
        step their level has not changed, so their power has held."""
        ctl = lums // self.m
        st = self.state
        return (st.energy_wh[lums] + self.energy_extra_wh[lums]
                + st.power_w[lums] * (self.t_s - self.last_step_s[ctl]) / 3600.0)

    def _metered_energy_wh(self, lums: np.ndarray) -> np.ndarray:
        """What the cabinet meters count of luminaires `lums`: the fleet's counters, and for
        hosted luminaires their agents' gear's (when handed)."""
        energy = self.luminaire_energy_wh(lums)
        if self.hosted_energy is None:
            return energy
        self.hosted_energy.refresh()
        return self.hosted_energy.apply(lums, energy)

    def luminaire_power_factor(self, lums: np.ndarray) -> np.ndarray:
        pf = self.state.power_factor[lums]
        if self.faults is not None:
            slot = self.faults.slot[lums]
            hit = slot >= 0
            pf[hit] = self.faults.state.power_factor[slot[hit]]
        return pf

    def _sensor_rows(self, controllers: np.ndarray, records: np.ndarray) -> SensorRows:
        """Sensor messages of `controllers`, one (R records) each, numbered in the sensor stream."""
        rows = encode_rows(RecordType.SENSOR, self.boot_id[controllers], self.next_sensor_seq[controllers],
                         records)
        self.next_sensor_seq[controllers] += np.uint64(records.shape[1])
        self.sensor_messages_built += controllers.shape[0]
        return SensorRows(controllers, rows)

    def build_sensor_payloads(self, controllers: np.ndarray, when: datetime) -> tuple[SensorRows, ...]:
        """Meter readings of the segment controllers among `controllers`, then the readings of
        the multifunction poles among them."""
        time_us = int(round(when.timestamp() * 1_000_000))
        out = []
        if self.meters is not None:
            cabinets = self.meters.cabinet_of[controllers]
            readers = controllers[cabinets >= 0]
            if readers.shape[0]:
                cabinets = cabinets[cabinets >= 0]
                readings = self.meters.read(cabinets, self.t_s, self._metered_energy_wh,
                                            self.luminaire_power_factor)
                out.append(self._sensor_rows(readers, self.meters.records(time_us, readings)))
        multi = controllers[self.urban.is_multifunction[controllers]]
        if multi.shape[0]:
            values = self.urban.values(multi, when, self.rng)
            if self.faults is not None:
                values = self.faults.stick(multi, values)
            out.append(self._sensor_rows(multi, self.urban.records(time_us, values)))
        return tuple(out)

    # ------------------------------------------------------------- JSON out
    def _next_json_seq(self, c: int) -> int:
        seq = int(self.json_seq[c])
        self.json_seq[c] += np.uint64(1)
        return seq

    def state_payloads(self, online: bool, reason: OfflineReason | None = None,
                       controllers: np.ndarray | None = None) -> list[tuple[int, bytes]]:
        """Birth (online) or death messages of `controllers` (all by default), as (index, JSON)."""
        ctls = np.flatnonzero(~self.hosted) if controllers is None else np.asarray(controllers)
        when = self.now
        # one validated model, then the same JSON with each controller's fields: 100,000
        # pydantic models would take seconds
        first = int(ctls[0]) if ctls.shape[0] else 0
        template = State(controller=self.inventory.controller_ids[first], boot_id=0, seq=0,
                         online=online, firmware=self.firmware, time=when, luminaires=self.m,
                         reason=reason)
        doc = json.loads(dumps(template))
        out = []
        for c in ctls.tolist():
            doc["id"] = f"{self.inventory.controller_ids[c]}.{int(self.boot_id[c])}.s{int(self.json_seq[c])}"
            doc["controller"] = self.inventory.controller_ids[c]
            doc["boot_id"] = int(self.boot_id[c])
            doc["seq"] = self._next_json_seq(c)
            out.append((c, json.dumps(doc, separators=(",", ":")).encode()))
        return out

    def drain_json(self) -> list[JsonOut]:
        """JSON messages (acks, birth/death after reboots) produced since the last drain."""
        out, self._json = self._json, []
        return out

    # ------------------------------------------------------------- commands
    def handle_command(self, controller: int, payload: bytes | str) -> Ack | None:
        """Apply one command for controller index `controller`; returns (and queues) its Ack.

        Returns None for a payload without a usable command id (nothing to answer) and for a
        hosted controller (its agent answers).
        """
        if self.hosted[controller]:
            return None  # its own agent answers
        now = self.now
        try:
            command = parse_command(payload)
        except MessageError as exc:
            command_id = command_id_of(payload)
            if command_id is None:
                return None
            return self._ack(controller, command_id, AckStatus.REFUSED, f"invalid command: {exc}"[:256])
        if command.is_expired(now):
            return self._ack(controller, command.id, AckStatus.REFUSED, "expired")
        if isinstance(command, SetLevel | Identify):
            lums, why = self._target(controller, command.target)
            if why:
                return self._ack(controller, command.id, AckStatus.REFUSED, why)
            level = command.level if isinstance(command, SetLevel) else FULL_LEVEL
            duration = command.duration_s
            self.set_override(controller, lums, level, None if duration is None else self.t_s + duration)
            return self._ack(controller, command.id, AckStatus.DONE)
        if isinstance(command, Reboot):
            self.reboot_at_s[controller] = self.t_s + command.delay_s
            return self._ack(controller, command.id, AckStatus.ACCEPTED)
        return self._ack(controller, command.id, AckStatus.REFUSED,
                         f"{command.type} is not simulated in fleet mode")

    def _target(self, controller: int, target) -> tuple[np.ndarray, str | None]:
        if target == "all":
            local = np.arange(self.m)
        elif isinstance(target, LuminaireTarget):
            if target.luminaire >= self.m:
                return self._lum_of_ctl[:0], f"no luminaire {target.luminaire} on this controller"
            local = np.array([target.luminaire])
        elif isinstance(target, GroupTarget):
            local = group_members(target.group, self.m)
            if local.shape[0] == 0:
                return local, f"group {target.group} is empty"
        else:  # pragma: no cover - the Target union has no other member
            return self._lum_of_ctl[:0], f"unknown target {target!r}"
        return controller * self.m + local, None

    def set_override(self, controller: int, lums: np.ndarray, level: int, until_s: float | None) -> None:
        """Hold luminaires `lums` (global indices) of one controller at `level` until until_s."""
        self._step_to(np.array([controller]), self.t_s, temperature_c(self.now))
        self.override_level[lums] = level
        self.override_until_s[lums] = np.inf if until_s is None else until_s
        self._set_levels(lums)

    def _reboot(self, controllers: np.ndarray, t_s: float, ambient_c: float) -> None:
        self._step_to(controllers, t_s, ambient_c)
        for c, payload in self.state_payloads(False, OfflineReason.REBOOT, controllers):
            self._json.append(JsonOut(Kind.STATE, c, payload, True))
        self.reboot_at_s[controllers] = np.inf
        self.boot_id[controllers] = self.rng.integers(1, 1 << 63, controllers.shape[0], dtype=np.uint64)
        self.next_seq[controllers] = 0
        self.next_sensor_seq[controllers] = 0
        self.json_seq[controllers] = 0
        lums = self.luminaires_of(controllers)
        self.override_level[lums] = -1
        self.override_until_s[lums] = np.inf
        self._set_levels(lums)
        for c, payload in self.state_payloads(True, None, controllers):
            self._json.append(JsonOut(Kind.STATE, c, payload, True))

    def _ack(self, controller: int, command_id: str, status: AckStatus, reason: str | None = None) -> Ack:
        ack = Ack(controller=self.inventory.controller_ids[controller],
                  boot_id=int(self.boot_id[controller]), seq=self._next_json_seq(controller),
                  command_id=command_id, status=status, reason=reason, time=self.now)
        self._json.append(JsonOut(Kind.ACK, controller, dumps(ack), False))
        return ack


def luminaire_fault_id(inventory: Inventory, controller: int, index: int) -> str:
    """Device id to name luminaire `index` of controller number `controller` in a scenario."""
    return luminaire_device_id(inventory.controller_ids[controller], index)


def sensor_fault_id(inventory: Inventory, controller: int, kind: str = "lux") -> str:
    return sensor_device_id(inventory.controller_ids[controller], kind)


def ticks(duration_s: float, tick_s: float) -> int:
    return int(math.ceil(duration_s / tick_s))
