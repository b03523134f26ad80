"""Fault injection with ground truth: scenario files, a vectorised schedule, state modifiers, labels.

A scenario (JSON or TOML) lists faults ``{fault, device, start, end, params}``;
``start``/``end`` are ISO UTC times or offsets (``"+2h"``, ``"+90m"``, ``"+30s"``,
``"+1d"``, ``"+3h30m"``, or seconds) from the scenario's ``start``; ``end`` may be omitted (open).
An interval is active for ``start <= t < end``.

`FaultSchedule` answers which faults are active on which devices at time t as
boolean masks over a device index; `apply_faults` applies each active fault's effect
to a `FleetState` of numpy arrays; `labels_csv` / `write_labels` give the ground
truth that analytics is scored against.
"""

from __future__ import annotations

import csv
import io
import json
import re
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import Enum
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

# DALI QUERY STATUS bits (IEC 62386-102), the luminaire status the gear reports.
STATUS_GEAR_FAILURE = 0x01
STATUS_LAMP_FAILURE = 0x02
STATUS_LAMP_ON = 0x04


class FaultKind(str, Enum):
    LAMP_FAILURE = "lamp_failure"
    DRIVER_FAILURE = "driver_failure"
    COMM_LOSS = "comm_loss"
    DAY_BURNING = "day_burning"
    CYCLING = "cycling"
    OVER_VOLTAGE = "over_voltage"
    UNDER_VOLTAGE = "under_voltage"
    POWER_DRIFT = "power_drift"
    LOW_POWER_FACTOR = "low_power_factor"
    CABINET_LEAKAGE = "cabinet_leakage"
    TILT = "tilt"
    STUCK_SENSOR = "stuck_sensor"
    DIMMING_FAILURE = "dimming_failure"
    DRIVER_OVER_TEMPERATURE = "driver_over_temperature"
    SUPPLY_LOSS = "supply_loss"
    RELAY_STUCK_ON = "relay_stuck_on"
    RELAY_STUCK_OFF = "relay_stuck_off"
    LAMP_POWER_TOO_HIGH = "lamp_power_too_high"
    LAMP_POWER_TOO_LOW = "lamp_power_too_low"
    ABSOLUTE_POWER_TOO_HIGH = "absolute_power_too_high"
    ABSOLUTE_POWER_TOO_LOW = "absolute_power_too_low"
    CURRENT_TOO_HIGH = "current_too_high"
    CURRENT_TOO_LOW = "current_too_low"


DeviceKind = Literal["luminaire", "controller", "cabinet", "sensor"]

#: Which kind of device each fault is injected on (its device id is looked up there).
DEVICE_KIND: dict[FaultKind, DeviceKind] = {
    FaultKind.LAMP_FAILURE: "luminaire",
    FaultKind.DRIVER_FAILURE: "luminaire",
    FaultKind.COMM_LOSS: "controller",
    FaultKind.DAY_BURNING: "luminaire",
    FaultKind.CYCLING: "luminaire",
    FaultKind.OVER_VOLTAGE: "luminaire",
    FaultKind.UNDER_VOLTAGE: "luminaire",
    FaultKind.POWER_DRIFT: "luminaire",
    FaultKind.LOW_POWER_FACTOR: "luminaire",
    FaultKind.CABINET_LEAKAGE: "cabinet",
    FaultKind.TILT: "controller",
    FaultKind.STUCK_SENSOR: "sensor",
    FaultKind.DIMMING_FAILURE: "luminaire",
    FaultKind.DRIVER_OVER_TEMPERATURE: "luminaire",
    FaultKind.SUPPLY_LOSS: "cabinet",
    FaultKind.RELAY_STUCK_ON: "cabinet",
    FaultKind.RELAY_STUCK_OFF: "luminaire",
    FaultKind.LAMP_POWER_TOO_HIGH: "luminaire",
    FaultKind.LAMP_POWER_TOO_LOW: "luminaire",
    FaultKind.ABSOLUTE_POWER_TOO_HIGH: "luminaire",
    FaultKind.ABSOLUTE_POWER_TOO_LOW: "luminaire",
    FaultKind.CURRENT_TOO_HIGH: "luminaire",
    FaultKind.CURRENT_TOO_LOW: "luminaire",
}


# -- per-fault parameters ----------------------------------------------------------
class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NoParams(_Params):
    pass


class LampFailureParams(_Params):
    standby_w: float = Field(0.5, ge=0)  # the driver still draws its standby power


class DayBurningParams(_Params):
    cause: Literal["relay", "photocell"] = "relay"
    level: float = Field(1.0, gt=0, le=1)  # level forced while it is day


class CyclingParams(_Params):
    period_s: float = Field(600.0, gt=0)
    on_fraction: float = Field(0.5, gt=0, lt=1)  # on first, then off, each period


class VoltageParams(_Params):
    factor: float = Field(gt=0)


class OverVoltageParams(VoltageParams):
    factor: float = Field(1.12, gt=1)


class UnderVoltageParams(VoltageParams):
    factor: float = Field(0.85, gt=0, lt=1)


class PowerDriftParams(_Params):
    rate_per_day: float = Field(0.01, gt=0)  # relative power growth per day since start


class LowPowerFactorParams(_Params):
    power_factor: float = Field(0.6, gt=0, le=1)


class CabinetLeakageParams(_Params):
    current_a: float = Field(0.3, gt=0)
    # between the meter and the contactor: it flows whenever the feeder is live, by day too
    # with a switched supply's contactor open (else only while the luminaires are supplied)
    upstream: bool = False


class TiltParams(_Params):
    angle_deg: float = Field(75.0, ge=0, le=180)


class StuckSensorParams(_Params):
    value: float | None = None  # None: frozen at the value seen when the fault starts


class OverTemperatureParams(_Params):
    extra_c: float = Field(50.0, gt=0)  # failed thermal path: extra rise over ambient when lit
    tau_s: float = Field(1200.0, gt=0)  # thermal time constant of that extra rise


class SupplyLossParams(_Params):
    phase: int = Field(0, ge=0, le=3)  # 0: the whole cabinet; 1..3: the controllers on L1..L3


class PowerScaleParams(_Params):
    factor: float = Field(gt=0)  # input current and power multiplied by this while lit


class LampPowerTooHighParams(PowerScaleParams):
    factor: float = Field(1.5, gt=1)  # a failing input stage draws more at every level


class LampPowerTooLowParams(PowerScaleParams):
    factor: float = Field(0.6, gt=0, lt=1)  # one of the LED strings open: less at every level


class AbsolutePowerTooHighParams(PowerScaleParams):
    # a higher-rated driver fitted (or one programmed to a higher output current): at full level
    # it draws this times the type's rated input power (whatever the fitted module's constant
    # light output would have asked), at a lower level in proportion
    factor: float = Field(1.5, gt=1)


class AbsolutePowerTooLowParams(PowerScaleParams):
    # a driver programmed to a lower output current than the type's: this times the rated input
    # power at full level
    factor: float = Field(0.5, gt=0, lt=1)


class CurrentTooHighParams(_Params):
    # failed input filter / PFC capacitor: reactive current drawn while powered, in multiples
    # of the type's rated current; active power unchanged, the power factor collapses
    reactive_rated: float = Field(2.0, gt=0)


class CurrentTooLowParams(PowerScaleParams):
    # most of the parallel LED strings open (or dead driver channels): current and power this
    # share of normal at every level, at unchanged power factor
    factor: float = Field(0.4, gt=0, lt=1)


PARAMS_MODEL: dict[FaultKind, type[_Params]] = {
    FaultKind.LAMP_FAILURE: LampFailureParams,
    FaultKind.DRIVER_FAILURE: NoParams,
    FaultKind.COMM_LOSS: NoParams,
    FaultKind.DAY_BURNING: DayBurningParams,
    FaultKind.CYCLING: CyclingParams,
    FaultKind.OVER_VOLTAGE: OverVoltageParams,
    FaultKind.UNDER_VOLTAGE: UnderVoltageParams,
    FaultKind.POWER_DRIFT: PowerDriftParams,
    FaultKind.LOW_POWER_FACTOR: LowPowerFactorParams,
    FaultKind.CABINET_LEAKAGE: CabinetLeakageParams,
    FaultKind.TILT: TiltParams,
    FaultKind.STUCK_SENSOR: StuckSensorParams,
    FaultKind.DIMMING_FAILURE: NoParams,
    FaultKind.DRIVER_OVER_TEMPERATURE: OverTemperatureParams,
    FaultKind.SUPPLY_LOSS: SupplyLossParams,
    FaultKind.RELAY_STUCK_ON: NoParams,
    FaultKind.RELAY_STUCK_OFF: NoParams,
    FaultKind.LAMP_POWER_TOO_HIGH: LampPowerTooHighParams,
    FaultKind.LAMP_POWER_TOO_LOW: LampPowerTooLowParams,
    FaultKind.ABSOLUTE_POWER_TOO_HIGH: AbsolutePowerTooHighParams,
    FaultKind.ABSOLUTE_POWER_TOO_LOW: AbsolutePowerTooLowParams,
    FaultKind.CURRENT_TOO_HIGH: CurrentTooHighParams,
    FaultKind.CURRENT_TOO_LOW: CurrentTooLowParams,
}


# -- scenario file -------------------------------------------------------------------
_OFFSET = re.compile(r"^\+?(?:\d+(?:\.\d+)?[smhd])+$|^\+?\d+(?:\.\d+)?$")
_OFFSET_PART = re.compile(r"(\d+(?:\.\d+)?)([smhd]?)")
_UNIT_S = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_time(value: str | float | int | datetime, origin: datetime | None) -> datetime:
    """An ISO time (must carry a zone; converted to UTC) or an offset from ``origin``."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"time {value} has no timezone")
        return value.astimezone(UTC)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        text = str(value).strip()
        match = _OFFSET.match(text)
        if match is None:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
            return parse_time(parsed, origin)
        seconds = sum(float(n) * _UNIT_S[u] for n, u in _OFFSET_PART.findall(text))
    if origin is None:
        raise ValueError(f"offset {value!r} needs the scenario's start time")
    return origin + timedelta(seconds=seconds)


class FaultSpec(BaseModel):
    """One injected fault, times resolved to UTC."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fault: FaultKind
    device: str = Field(min_length=1)
    start: datetime
    end: datetime | None = None
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> FaultSpec:
        if self.start.tzinfo is None or (self.end is not None and self.end.tzinfo is None):
            raise ValueError("fault times must be timezone-aware")
        if self.end is not None and self.end <= self.start:
            raise ValueError(f"{self.fault.value} on {self.device}: end must be after start")
        PARAMS_MODEL[self.fault].model_validate(self.params)
        return self

    @property
    def typed_params(self) -> _Params:
        return PARAMS_MODEL[self.fault].model_validate(self.params)


class Scenario(BaseModel):
    """A list of faults to inject, with the origin that offsets count from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1] = 1
    name: str = ""
    start: datetime | None = None
    faults: tuple[FaultSpec, ...] = ()

    @field_validator("start")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("scenario start must be timezone-aware")
        return None if value is None else value.astimezone(UTC)

    @model_validator(mode="before")
    @classmethod
    def _resolve_times(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        origin_raw = data.get("start")
        origin = None if origin_raw is None else parse_time(origin_raw, None)
        faults = []
        for raw in data.get("faults", ()):
            if isinstance(raw, dict):
                raw = dict(raw)
                raw["start"] = parse_time(raw["start"], origin) if "start" in raw else raw.get("start")
                if raw.get("end") is not None:
                    raw["end"] = parse_time(raw["end"], origin)
            faults.append(raw)
        return {**data, "faults": faults}


class ScenarioError(ValueError):
    """A scenario file is unreadable or invalid."""


def parse_scenario(data: dict | str, *, fmt: Literal["json", "toml"] = "json") -> Scenario:
    """Validate a scenario given as a dict, or as JSON / TOML text."""
    try:
        if isinstance(data, str):
            data = json.loads(data) if fmt == "json" else tomllib.loads(data)
        return Scenario.model_validate(data)
    except (ValidationError, ValueError, tomllib.TOMLDecodeError) as exc:
        raise ScenarioError(f"invalid fault scenario: {exc}") from exc


def load_scenario(path: str | Path) -> Scenario:
    """Load a ``.json`` or ``.toml`` scenario file."""
    path = Path(path)
    fmt: Literal["json", "toml"] = "toml" if path.suffix == ".toml" else "json"
    return parse_scenario(path.read_text(encoding="utf-8"), fmt=fmt)


# -- labels (ground truth) ---------------------------------------------------------
LABEL_COLUMNS = ("fault", "device", "start", "end")


def _iso(when: datetime | None) -> str:
    if when is None:
        return ""
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def label_rows(scenario: Scenario) -> list[dict[str, str]]:
    """One row per injected fault (UTC ISO times; empty end = still active), sorted by start."""
    rows = [
        {"fault": f.fault.value, "device": f.device, "start": _iso(f.start), "end": _iso(f.end)}
        for f in scenario.faults
    ]
    return sorted(rows, key=lambda r: (r["start"], r["device"], r["fault"]))


def labels_csv(scenario: Scenario) -> str:
    """The labels file's content: CSV with header ``fault,device,start,end``."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=LABEL_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(label_rows(scenario))
    return out.getvalue()


def write_labels(path: str | Path, scenario: Scenario) -> Path:
    """Write the labels CSV next to a run's output; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(labels_csv(scenario), encoding="utf-8")
    return path


# -- schedule --------------------------------------------------------------------
def _seconds(t: datetime | float) -> float:
    if isinstance(t, datetime):
        if t.tzinfo is None:
            raise ValueError("times must be timezone-aware")
        return t.timestamp()
    return float(t)


class DeviceIndex:
    """Device ids of one kind -> positions in that kind's state arrays."""

    def __init__(self, ids: Sequence[str]) -> None:
        self.ids = list(ids)
        self.position = {d: i for i, d in enumerate(self.ids)}
        if len(self.position) != len(self.ids):
            raise ValueError("device ids must be unique")

    def __len__(self) -> int:
        return len(self.ids)

    def positions(self, ids: Iterable[str]) -> np.ndarray:
        """Positions of ``ids`` (-1 where a device is not in this index)."""
        return np.array([self.position.get(d, -1) for d in ids], dtype=np.int64)


@dataclass(frozen=True)
class _KindTable:
    """The events of one fault kind as arrays (times in epoch seconds)."""

    events: tuple[FaultSpec, ...]
    devices: tuple[str, ...]
    start_s: np.ndarray
    end_s: np.ndarray  # +inf when open


class FaultSchedule:
    """Which faults are active on which devices at time t, as vectorised masks."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self._tables: dict[FaultKind, _KindTable] = {}
        for kind in FaultKind:
            events = tuple(f for f in scenario.faults if f.fault is kind)
            self._tables[kind] = _KindTable(
                events=events,
                devices=tuple(f.device for f in events),
                start_s=np.array([f.start.timestamp() for f in events], dtype=float),
                end_s=np.array([np.inf if f.end is None else f.end.timestamp() for f in events], dtype=float),
            )
        self._positions_cache: dict[tuple[FaultKind, int], np.ndarray] = {}

    def _positions(self, kind: FaultKind, index: DeviceIndex) -> np.ndarray:
        key = (kind, id(index))
        if key not in self._positions_cache:
            self._positions_cache[key] = index.positions(self._tables[kind].devices)
        return self._positions_cache[key]

    def _active_events(
        self, kind: FaultKind, t: datetime | float, index: DeviceIndex
    ) -> tuple[np.ndarray, np.ndarray]:
        """(event numbers, device positions) of this kind's events active at t on indexed devices."""
        table = self._tables[kind]
        ts = _seconds(t)
        pos = self._positions(kind, index)
        active = (table.start_s <= ts) & (ts < table.end_s) & (pos >= 0)
        events = np.flatnonzero(active)
        return events, pos[events]

    def mask(self, kind: FaultKind, t: datetime | float, index: DeviceIndex) -> np.ndarray:
        """Boolean array over ``index``: devices with a ``kind`` fault active at t."""
        out = np.zeros(len(index), dtype=bool)
        _, positions = self._active_events(kind, t, index)
        out[positions] = True
        return out

    def masks(
        self, t: datetime | float, indexes: dict[DeviceKind, DeviceIndex]
    ) -> dict[FaultKind, np.ndarray]:
        """`mask` for every fault kind whose device kind has an index in ``indexes``."""
        return {
            kind: self.mask(kind, t, indexes[DEVICE_KIND[kind]])
            for kind in FaultKind
            if DEVICE_KIND[kind] in indexes
        }

    def param_array(self, kind: FaultKind, t: datetime | float, index: DeviceIndex, name: str,
                    default: float = np.nan) -> np.ndarray:
        """Per-device value of parameter ``name`` of the active ``kind`` faults (later-starting wins)."""
        out = np.full(len(index), default, dtype=float)
        events, positions = self._active_events(kind, t, index)
        table = self._tables[kind]
        order = np.argsort(table.start_s[events], kind="stable")
        for e, p in zip(events[order], positions[order], strict=True):
            value = getattr(table.events[e].typed_params, name)
            out[p] = default if value is None else float(value)
        return out

    def elapsed_s(self, kind: FaultKind, t: datetime | float, index: DeviceIndex) -> np.ndarray:
        """Per-device seconds since the active ``kind`` fault started (NaN where none)."""
        out = np.full(len(index), np.nan)
        events, positions = self._active_events(kind, t, index)
        table = self._tables[kind]
        order = np.argsort(table.start_s[events], kind="stable")
        out[positions[order]] = _seconds(t) - table.start_s[events[order]]
        return out

    def active(self, t: datetime | float) -> list[FaultSpec]:
        """Every fault of the scenario active at t (any device, indexed or not)."""
        ts = _seconds(t)
        return [
            f for f in self.scenario.faults
            if f.start.timestamp() <= ts and (f.end is None or ts < f.end.timestamp())
        ]


# -- state and modifiers ------------------------------------------------------------
@dataclass(frozen=True)
class FleetState:
    """Simulated state for one tick, arrays over each device kind's index.

    Luminaires: ``level`` (0..1 of full light output), ``power_w``, ``rated_power_w``,
    ``power_factor``, ``voltage_v``, ``status`` (DALI status bits, uint8) and
    ``is_day`` (daylight at the pole), ``full_power_w`` (input power the luminaire would draw
    at full level now) and ``driver_temp_c``. Controllers: ``online``, ``tilt_deg``.
    Cabinets: ``leakage_a`` (added to the meter only, while the supply is on),
    ``leakage_day_a`` (the part of it upstream of the contactor, which flows with it open too),
    ``supply_lost_phases`` (bit 0..2: the
    feeder's L1..L3 are dead) and ``contactor_stuck`` (the switched supply cannot open).
    Sensors: ``sensor_value`` and ``sensor_frozen`` (NaN unless a stuck sensor holds a value).
    """

    level: np.ndarray
    power_w: np.ndarray
    rated_power_w: np.ndarray
    power_factor: np.ndarray
    voltage_v: np.ndarray
    status: np.ndarray
    is_day: np.ndarray
    online: np.ndarray
    tilt_deg: np.ndarray
    leakage_a: np.ndarray
    sensor_value: np.ndarray
    sensor_frozen: np.ndarray
    full_power_w: np.ndarray
    driver_temp_c: np.ndarray
    supply_lost_phases: np.ndarray
    contactor_stuck: np.ndarray
    leakage_day_a: np.ndarray | None = None  # None: zeros

    @classmethod
    def initial(cls, n_luminaires: int, n_controllers: int, n_cabinets: int, n_sensors: int, *,
                rated_power_w: float | np.ndarray = 60.0, voltage_v: float = 230.0,
                power_factor: float = 0.95) -> FleetState:
        """Everything healthy, lamps off, night."""
        nl = n_luminaires
        return cls(
            level=np.zeros(nl), power_w=np.zeros(nl),
            rated_power_w=np.broadcast_to(np.asarray(rated_power_w, float), (nl,)).copy(),
            power_factor=np.full(nl, power_factor), voltage_v=np.full(nl, voltage_v),
            status=np.zeros(nl, dtype=np.uint8), is_day=np.zeros(nl, dtype=bool),
            online=np.ones(n_controllers, dtype=bool), tilt_deg=np.zeros(n_controllers),
            leakage_a=np.zeros(n_cabinets),
            sensor_value=np.zeros(n_sensors), sensor_frozen=np.full(n_sensors, np.nan),
            full_power_w=np.broadcast_to(np.asarray(rated_power_w, float), (nl,)).copy(),
            driver_temp_c=np.full(nl, 15.0),
            supply_lost_phases=np.zeros(n_cabinets, dtype=np.uint8),
            contactor_stuck=np.zeros(n_cabinets, dtype=bool),
            leakage_day_a=np.zeros(n_cabinets),
        )


#: Standby power of a healthy driver that is switched off (W); used where a fault sets the level.
STANDBY_W = 0.5
#: power factor of a driver near full load (where a fault lights a lamp that was off)
LIT_POWER_FACTOR = 0.96


def power_at_level(rated_power_w: np.ndarray, level: np.ndarray) -> np.ndarray:
    """Linear LED approximation used when a fault changes the level: standby + level x (rated - standby)."""
    return np.where(level > 0, STANDBY_W + level * (rated_power_w - STANDBY_W), STANDBY_W)


def day_burning(state: FleetState, mask: np.ndarray, level: np.ndarray) -> FleetState:
    """Lamp stuck on in daylight: where ``mask & is_day``, level forced to ``level``; it draws
    what its driver draws at that level (``full_power_w``: with constant light output, under
    the rated power while the module is young)."""
    hit = mask & state.is_day
    new_level = np.where(hit, level, state.level)
    power = np.where(hit, power_at_level(state.full_power_w, new_level), state.power_w)
    pf = np.where(hit, np.fmax(state.power_factor, LIT_POWER_FACTOR), state.power_factor)
    return replace(state, level=new_level, power_w=power, power_factor=pf,
                   status=_lamp_on_bit(state.status, new_level))


def cycling(state: FleetState, mask: np.ndarray, elapsed_s: np.ndarray, period_s: np.ndarray,
            on_fraction: np.ndarray) -> FleetState:
    """Lamp toggles: on for ``on_fraction`` of each period (from fault start), then off."""
    phase = np.where(mask, np.mod(np.nan_to_num(elapsed_s), np.nan_to_num(period_s, nan=1.0)), 0.0)
    off = mask & (phase >= np.nan_to_num(on_fraction) * np.nan_to_num(period_s, nan=1.0))
    new_level = np.where(off, 0.0, state.level)
    power = np.where(off, STANDBY_W, state.power_w)
    return replace(state, level=new_level, power_w=power, status=_lamp_on_bit(state.status, new_level))


def power_drift(
    state: FleetState, mask: np.ndarray, elapsed_s: np.ndarray, rate_per_day: np.ndarray
) -> FleetState:
    """Ageing driver: lit power grows by ``rate_per_day`` x days since the fault started."""
    growth = 1.0 + np.nan_to_num(rate_per_day) * np.nan_to_num(elapsed_s) / 86400.0
    lit = mask & (state.level > 0)
    return replace(state, power_w=np.where(lit, state.power_w * growth, state.power_w))


def low_power_factor(state: FleetState, mask: np.ndarray, power_factor: np.ndarray) -> FleetState:
    """Failing driver capacitor: power factor drops to ``power_factor`` (never raised)."""
    return replace(
        state, power_factor=np.where(mask, np.fmin(state.power_factor, power_factor), state.power_factor)
    )


def supply_voltage(state: FleetState, mask: np.ndarray, factor: np.ndarray) -> FleetState:
    """Over- or under-voltage: the luminaire's supply voltage is multiplied by ``factor``."""
    return replace(
        state, voltage_v=np.where(mask, state.voltage_v * np.nan_to_num(factor, nan=1.0), state.voltage_v)
    )


def lamp_failure(state: FleetState, mask: np.ndarray, standby_w: np.ndarray) -> FleetState:
    """Dead LED module: power falls to standby, lamp-failure bit set, lamp-on bit cleared."""
    status = np.where(mask, (state.status | STATUS_LAMP_FAILURE) & ~np.uint8(STATUS_LAMP_ON), state.status)
    return replace(state, power_w=np.where(mask, standby_w, state.power_w), status=status.astype(np.uint8))


def driver_failure(state: FleetState, mask: np.ndarray) -> FleetState:
    """Dead driver: no power, no light, control-gear-failure bit set."""
    status = np.where(mask, (state.status | STATUS_GEAR_FAILURE) & ~np.uint8(STATUS_LAMP_ON), state.status)
    return replace(
        state,
        power_w=np.where(mask, 0.0, state.power_w),
        level=np.where(mask, 0.0, state.level),
        status=status.astype(np.uint8),
    )


def cabinet_leakage(state: FleetState, mask: np.ndarray, current_a: np.ndarray,
                    upstream: np.ndarray | None = None) -> FleetState:
    """Earth leakage in a cabinet: current the meter sees and no luminaire accounts for. Where
    ``upstream`` (between the meter and the contactor) it flows with the contactor open too."""
    leak = np.where(mask, np.nan_to_num(current_a), 0.0)
    day = state.leakage_day_a if state.leakage_day_a is not None else np.zeros_like(leak)
    up = np.zeros(leak.shape, bool) if upstream is None else np.nan_to_num(upstream) > 0
    return replace(state, leakage_a=state.leakage_a + leak,
                   leakage_day_a=day + np.where(up, leak, 0.0))


def tilt(state: FleetState, mask: np.ndarray, angle_deg: np.ndarray) -> FleetState:
    """Pole knocked down: the controller's tilt sensor reads ``angle_deg``."""
    return replace(state, tilt_deg=np.where(mask, angle_deg, state.tilt_deg))


def comm_loss(state: FleetState, mask: np.ndarray) -> FleetState:
    """Controller silent: it sends and answers nothing while ``online`` is False."""
    return replace(state, online=state.online & ~mask)


def stuck_sensor(state: FleetState, mask: np.ndarray, value: np.ndarray) -> FleetState:
    """Sensor frozen: reads ``value`` if given, else the value it had when the fault began."""
    start = mask & np.isnan(state.sensor_frozen)
    frozen = np.where(start, np.where(np.isnan(value), state.sensor_value, value), state.sensor_frozen)
    frozen = np.where(mask, frozen, np.nan)
    return replace(state, sensor_value=np.where(mask, frozen, state.sensor_value), sensor_frozen=frozen)


ALL_PHASES = 0b111


def dimming_failure(state: FleetState, mask: np.ndarray) -> FleetState:
    """Driver ignores dimming (DALI link to the driver broken): while lit it draws its full-level
    power whatever level the controller commands and reports."""
    hit = mask & (state.level > 0)
    return replace(state, power_w=np.where(hit, state.full_power_w, state.power_w))


def current_scale(state: FleetState, mask: np.ndarray, factor: np.ndarray) -> FleetState:
    """Input current (and with it power, at unchanged power factor) multiplied by ``factor``
    while lit: a failing input stage (> 1) or an open LED string (< 1)."""
    hit = mask & (state.level > 0)
    scale = np.nan_to_num(factor, nan=1.0)
    return replace(state, power_w=np.where(hit, state.power_w * scale, state.power_w))


#: the lamp type's rated current as the centre derives it: rated input power at 230 V and a
#: power factor of 0.9 (analytics.luminaire_rules)
RATED_V, RATED_PF = 230.0, 0.9


def rated_current_a(rated_power_w: np.ndarray) -> np.ndarray:
    """Rated supply current of a luminaire type of this rated input power."""
    return np.asarray(rated_power_w, float) / (RATED_V * RATED_PF)


def reactive_current(state: FleetState, mask: np.ndarray, reactive_rated: np.ndarray) -> FleetState:
    """Failed input capacitor: the luminaire draws ``reactive_rated`` x its rated current more
    reactive current while powered. Active power is unchanged; the current (P / (V x pf)) rises
    at every level and the power factor P / (V x I) collapses."""
    v, p = state.voltage_v, state.power_w
    hit = mask & (v > 0) & (p > 0)
    extra = np.nan_to_num(reactive_rated) * rated_current_a(state.rated_power_w)
    with np.errstate(divide="ignore", invalid="ignore"):
        i_p = p / v
        pf = np.clip(state.power_factor, 1e-3, 1.0)
        i_q = i_p * np.sqrt(1.0 - pf**2) / pf + extra
        new_pf = i_p / np.hypot(i_p, i_q)
    return replace(state, power_factor=np.where(hit, new_pf, state.power_factor))


def rated_power_scale(state: FleetState, mask: np.ndarray, factor: np.ndarray) -> FleetState:
    """Wrong driver (or driver current) for the lamp type: while lit it draws ``factor`` x the
    type's rated input power at full level, and at a lower level in the same proportion to what
    the luminaire draws there (power above standby scaled by factor x rated / full-level power).
    Power factor unchanged: the current follows the power."""
    hit = mask & (state.level > 0) & (state.full_power_w > STANDBY_W)
    with np.errstate(divide="ignore", invalid="ignore"):
        k = np.nan_to_num(factor, nan=1.0) * (state.rated_power_w - STANDBY_W) / (
            state.full_power_w - STANDBY_W)
    return replace(state, power_w=np.where(hit, STANDBY_W + (state.power_w - STANDBY_W) * k,
                                           state.power_w))


def driver_over_temperature(state: FleetState, mask: np.ndarray, elapsed_s: np.ndarray,
                            extra_c: np.ndarray, tau_s: np.ndarray) -> FleetState:
    """Failed thermal path: while lit the driver heats ``extra_c`` above its normal temperature,
    approached with time constant ``tau_s`` from the fault's start."""
    hit = mask & (state.level > 0)
    rise = np.nan_to_num(extra_c) * (1.0 - np.exp(-np.nan_to_num(elapsed_s)
                                                  / np.nan_to_num(tau_s, nan=1.0)))
    return replace(state, driver_temp_c=np.where(hit, state.driver_temp_c + rise,
                                                 state.driver_temp_c))


def supply_loss(state: FleetState, mask: np.ndarray, phase: np.ndarray) -> FleetState:
    """A cabinet's feeder loses its supply: every phase (``phase`` 0) or one of L1..L3."""
    p = np.nan_to_num(phase).astype(np.int64)
    bits = np.where(p == 0, ALL_PHASES, np.left_shift(1, np.clip(p - 1, 0, 2)))
    lost = np.where(mask, state.supply_lost_phases | bits, state.supply_lost_phases)
    return replace(state, supply_lost_phases=lost.astype(np.uint8))


def contactor_stuck(state: FleetState, mask: np.ndarray) -> FleetState:
    """The cabinet's contactor stays closed: a switched supply stays on by day."""
    return replace(state, contactor_stuck=state.contactor_stuck | mask)


def relay_stuck_off(state: FleetState, mask: np.ndarray) -> FleetState:
    """The controller's relay to the driver stays open: no power, no light, no failure bit (the
    controller still reports the level it commands)."""
    status = np.where(mask, state.status & ~np.uint8(STATUS_LAMP_ON), state.status)
    return replace(state, power_w=np.where(mask, 0.0, state.power_w), status=status.astype(np.uint8))


def _lamp_on_bit(status: np.ndarray, level: np.ndarray) -> np.ndarray:
    on = np.where(level > 0, status | STATUS_LAMP_ON, status & ~np.uint8(STATUS_LAMP_ON))
    return on.astype(np.uint8)


@dataclass(frozen=True)
class FleetIndex:
    """The device indexes a fleet's state arrays are laid out by."""

    luminaires: DeviceIndex
    controllers: DeviceIndex
    cabinets: DeviceIndex
    sensors: DeviceIndex

    @classmethod
    def from_ids(
        cls,
        luminaires: Sequence[str] = (),
        controllers: Sequence[str] = (),
        cabinets: Sequence[str] = (),
        sensors: Sequence[str] = (),
    ) -> FleetIndex:
        return cls(
            DeviceIndex(luminaires), DeviceIndex(controllers), DeviceIndex(cabinets), DeviceIndex(sensors)
        )

    def of(self, kind: DeviceKind) -> DeviceIndex:
        return {"luminaire": self.luminaires, "controller": self.controllers,
                "cabinet": self.cabinets, "sensor": self.sensors}[kind]


def apply_faults(
    schedule: FaultSchedule, t: datetime | float, state: FleetState, index: FleetIndex
) -> FleetState:
    """Apply every fault active at t to ``state``, in a fixed order.

    Order: level faults (day_burning, cycling), then electrical ones (dimming_failure,
    lamp_power_too_high/low, absolute_power_too_high/low, current_too_low,
    driver_over_temperature, power_drift, low_power_factor, over/under voltage,
    current_too_high), then failures that override them (lamp_failure, driver_failure,
    relay_stuck_off), then cabinet (supply_loss, relay_stuck_on: the contactor, cabinet_leakage),
    controller and sensor faults.
    ``state.sensor_frozen`` carries stuck values from one tick to the next.
    """
    lum = index.luminaires

    def m(kind: FaultKind) -> np.ndarray:
        return schedule.mask(kind, t, index.of(DEVICE_KIND[kind]))

    def p(kind: FaultKind, name: str, default: float = np.nan) -> np.ndarray:
        return schedule.param_array(kind, t, index.of(DEVICE_KIND[kind]), name, default)

    K = FaultKind
    state = day_burning(state, m(K.DAY_BURNING), p(K.DAY_BURNING, "level"))
    state = cycling(state, m(K.CYCLING), schedule.elapsed_s(K.CYCLING, t, lum),
                    p(K.CYCLING, "period_s"), p(K.CYCLING, "on_fraction"))
    state = dimming_failure(state, m(K.DIMMING_FAILURE))
    state = current_scale(state, m(K.LAMP_POWER_TOO_HIGH), p(K.LAMP_POWER_TOO_HIGH, "factor"))
    state = current_scale(state, m(K.LAMP_POWER_TOO_LOW), p(K.LAMP_POWER_TOO_LOW, "factor"))
    state = rated_power_scale(state, m(K.ABSOLUTE_POWER_TOO_HIGH),
                              p(K.ABSOLUTE_POWER_TOO_HIGH, "factor"))
    state = rated_power_scale(state, m(K.ABSOLUTE_POWER_TOO_LOW),
                              p(K.ABSOLUTE_POWER_TOO_LOW, "factor"))
    state = current_scale(state, m(K.CURRENT_TOO_LOW), p(K.CURRENT_TOO_LOW, "factor"))
    state = driver_over_temperature(
        state, m(K.DRIVER_OVER_TEMPERATURE), schedule.elapsed_s(K.DRIVER_OVER_TEMPERATURE, t, lum),
        p(K.DRIVER_OVER_TEMPERATURE, "extra_c"), p(K.DRIVER_OVER_TEMPERATURE, "tau_s"))
    state = power_drift(state, m(K.POWER_DRIFT), schedule.elapsed_s(K.POWER_DRIFT, t, lum),
                        p(K.POWER_DRIFT, "rate_per_day"))
    state = low_power_factor(state, m(K.LOW_POWER_FACTOR), p(K.LOW_POWER_FACTOR, "power_factor"))
    state = supply_voltage(state, m(K.OVER_VOLTAGE), p(K.OVER_VOLTAGE, "factor"))
    state = supply_voltage(state, m(K.UNDER_VOLTAGE), p(K.UNDER_VOLTAGE, "factor"))
    state = reactive_current(state, m(K.CURRENT_TOO_HIGH), p(K.CURRENT_TOO_HIGH, "reactive_rated"))
    state = lamp_failure(state, m(K.LAMP_FAILURE), p(K.LAMP_FAILURE, "standby_w"))
    state = driver_failure(state, m(K.DRIVER_FAILURE))
    state = relay_stuck_off(state, m(K.RELAY_STUCK_OFF))
    state = supply_loss(state, m(K.SUPPLY_LOSS), p(K.SUPPLY_LOSS, "phase"))
    state = contactor_stuck(state, m(K.RELAY_STUCK_ON))
    state = cabinet_leakage(state, m(K.CABINET_LEAKAGE), p(K.CABINET_LEAKAGE, "current_a"),
                            p(K.CABINET_LEAKAGE, "upstream", 0.0))
    state = tilt(state, m(K.TILT), p(K.TILT, "angle_deg"))
    state = comm_loss(state, m(K.COMM_LOSS))
    state = stuck_sensor(state, m(K.STUCK_SENSOR), p(K.STUCK_SENSOR, "value"))
    return state
