"""Detected faults scored against the simulator's labels: precision, recall and delay per kind."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from wire.records import Quantity
from wire.sensor_channels import URBAN_QUANTITIES, URBAN_SENSOR_BASE

#: simulated fault kind -> (fault kind raised for it, scope of the device it is raised on)
EXPECTED: dict[str, tuple[str, str]] = {
    "lamp_failure": ("lampFailure", "luminaire"),
    "driver_failure": ("controlGearCommFailure", "luminaire"),
    "comm_loss": ("communicationFailure", "controller"),
    "day_burning": ("lampUnexpectedOn", "luminaire"),
    "cycling": ("cyclingFailure", "luminaire"),
    "over_voltage": ("supplyVoltageTooHigh", "luminaire"),
    "under_voltage": ("supplyVoltageTooLow", "luminaire"),
    "power_drift": ("lampPowerDrift", "luminaire"),
    "low_power_factor": ("powerFactorTooLow", "luminaire"),
    "cabinet_leakage": ("leakageDetected", "cabinet"),
    "tilt": ("poleTilted", "controller"),
    "stuck_sensor": ("sensorStuck", "sensor"),
    "dimming_failure": ("dimmingFailure", "luminaire"),
    "driver_over_temperature": ("temperatureTooHigh", "luminaire"),
    "supply_loss": ("supplyLoss", "cabinet"),
    "relay_stuck_on": ("relayFailure", "cabinet"),
    "relay_stuck_off": ("relayFailure", "luminaire"),
    "lamp_power_too_high": ("lampPowerTooHigh", "luminaire"),
    "lamp_power_too_low": ("lampPowerTooLow", "luminaire"),
    "absolute_power_too_high": ("absoluteLampPowerTooHigh", "luminaire"),
    "absolute_power_too_low": ("absoluteLampPowerTooLow", "luminaire"),
    "current_too_high": ("currentTooHigh", "luminaire"),
    "current_too_low": ("currentTooLow", "luminaire"),
}
#: kinds a simulated fault's physics may also show, on the same device, depending on the level
#: in force while it lasts: a raise of one of them within the label's episode is true (it counts
#: for precision), its absence is no miss (recall is scored on EXPECTED only). Each entry is a
#: physical consequence, not an allowance:
IMPLIED: dict[str, tuple[str, ...]] = {
    # 135-160 % of its power at every level: over the type's ceiling (1.25 x rated) at high
    # levels, and at full level over 1.5 x the rated current where the factor passes about 1.6
    "lamp_power_too_high": ("absoluteLampPowerTooHigh", "currentTooHigh"),
    # an open LED string (40-70 %): under the type's floor (0.7 x rated) and its current under
    # 0.6 x rated at full level, for the larger losses
    "lamp_power_too_low": ("absoluteLampPowerTooLow", "currentTooLow"),
    # a power factor of 0.5-0.7 at full level draws 1.3-1.9 x the rated current
    "low_power_factor": ("currentTooHigh",),
    # an ageing driver drawing 3-5 % more per day: after five or six days a luminaire without
    # constant light output (full-level power = its rated input R) passes the type's ceiling of
    # 1.25 R (1.05^6 = 1.34). lampPowerDrift does not hide it: the drift is against the
    # luminaire's own baseline, the ceiling is the type's
    "power_drift": ("absoluteLampPowerTooHigh",),
    # a higher-rated driver at 1.4-1.7 x rated: at full level over 1.5 x the rated current from
    # a factor of about 1.6
    "absolute_power_too_high": ("currentTooHigh",),
    # a driver programmed to 0.4-0.6 x rated: at full level its current is 0.38-0.57 x rated
    "absolute_power_too_low": ("currentTooLow",),
    # the reactive current of a failed input capacitor collapses the power factor (P / (V x I))
    "current_too_high": ("powerFactorTooLow",),
    # most LED strings open (30-50 % of the current at unchanged power factor): the power is as
    # low, against the luminaire's baseline at every level and against the type's floor at full
    "current_too_low": ("lampPowerTooLow", "absoluteLampPowerTooLow"),
}
#: kinds raised for no simulated fault of their own: scored for precision (raised against the
#: labels that imply them), recall not measured
IMPLIED_ONLY: tuple[str, ...] = tuple(dict.fromkeys(
    k for kinds in IMPLIED.values() for k in kinds
    if k not in {name for name, _ in EXPECTED.values()}))
_URBAN_NAMES = ("noise", "pm25", "no2", "temperature", "humidity")
_URBAN_QUANTITY = dict(zip(_URBAN_NAMES, (int(q) for q in URBAN_QUANTITIES.values()), strict=True))
_URBAN_QUANTITY["lux"] = int(Quantity.AMBIENT_LUX)

Device = tuple[object, ...]


@dataclass(frozen=True)
class Label:
    """One injected fault (ground truth)."""

    fault: str
    device: str
    start: float  # epoch s
    end: float  # epoch s, inf when open


@dataclass(frozen=True)
class Detected:
    """One row of the faults table."""

    kind: str
    cabinet_id: str | None
    controller_id: str | None
    luminaire_idx: int | None
    sensor: int | None
    quantity: int | None
    raised_at: float

    @property
    def scope(self) -> str:
        if self.cabinet_id is not None:
            return "cabinet"
        if self.sensor is not None:
            return "sensor"
        return "luminaire" if self.luminaire_idx is not None else "controller"

    @property
    def device(self) -> Device:
        if self.cabinet_id is not None:
            return (self.cabinet_id,)
        if self.sensor is not None:
            return (self.controller_id, self.sensor, self.quantity)
        if self.luminaire_idx is not None:
            return (self.controller_id, self.luminaire_idx)
        return (self.controller_id,)


@dataclass(frozen=True)
class Score:
    """How well one simulated kind was found."""

    fault: str
    raised_as: str
    labels: int
    found: int
    detections: int
    true_detections: int
    median_delay_s: float
    duplicates: int = 0  # raised again while the episode it belongs to was already found

    @property
    def recall(self) -> float:
        return self.found / self.labels if self.labels else float("nan")

    @property
    def precision(self) -> float:
        return self.true_detections / self.detections if self.detections else float("nan")


def label_device(fault: str, device: str) -> Device:
    """The device key of a label, as `Detected.device` spells it."""
    scope = EXPECTED[fault][1]
    head, _, tail = device.partition(":")
    if scope == "luminaire":
        return (head, int(tail))
    if scope == "sensor":
        return (head, int(URBAN_SENSOR_BASE) if tail != "lux" else -1, _URBAN_QUANTITY[tail])
    return (device,)


def _claims(windows: list[tuple[float, float]], times: list[float]) -> tuple[int, int]:
    """(true, duplicate) detections among raise times on one device: each episode (window)
    claims the first raise inside it; a later raise inside an episode already claimed is a
    duplicate (the same episode raised twice), a raise inside none is false."""
    claimed = [False] * len(windows)
    true = duplicate = 0
    for t in sorted(times):
        inside = [i for i, (a, b) in enumerate(windows) if a <= t <= b]
        free = [i for i in inside if not claimed[i]]
        if free:
            claimed[free[0]] = True
            true += 1
        elif inside:
            duplicate += 1
    return true, duplicate


def score(labels: list[Label], detected: list[Detected], grace_s: float = 1800.0,
          early_s: float = 60.0) -> list[Score]:
    """Per simulated kind: recall (labels with a matching fault raised while active, or within
    `grace_s` after), precision (faults of its raised kind and scope each claimed by one label
    of a kind raised that way: a second fault raised within one episode counts as false) and the
    median delay from the fault's start to its raise."""
    by_raise: dict[tuple[str, str], list[Label]] = defaultdict(list)
    for lab in labels:
        by_raise[EXPECTED[lab.fault]].append(lab)
        for kind in IMPLIED.get(lab.fault, ()):
            by_raise[(kind, EXPECTED[lab.fault][1])].append(lab)
    found_by_device: dict[tuple[str, str, Device], list[float]] = defaultdict(list)
    for d in detected:
        found_by_device[(d.kind, d.scope, d.device)].append(d.raised_at)
    out = []
    rows = [*EXPECTED.items(), *((f"(implied) {k}", (k, "luminaire")) for k in IMPLIED_ONLY)]
    for fault, (name, scope) in rows:
        mine = [lab for lab in labels if lab.fault == fault]
        delays = []
        for lab in mine:
            times = found_by_device.get((name, scope, label_device(fault, lab.device)), [])
            hits = [t - lab.start for t in times if lab.start - early_s <= t <= lab.end + grace_s]
            if hits:
                delays.append(max(0.0, min(hits)))
        windows: dict[Device, list[tuple[float, float]]] = defaultdict(list)
        for lab in by_raise[(name, scope)]:
            windows[label_device(lab.fault, lab.device)].append(
                (lab.start - early_s, lab.end + grace_s))
        raised: dict[Device, list[float]] = defaultdict(list)
        for d in detected:
            if d.kind == name and d.scope == scope:
                raised[d.device].append(d.raised_at)
        true = duplicates = 0
        for device, times in raised.items():
            t, dup = _claims(sorted(windows[device]), times)
            true, duplicates = true + t, duplicates + dup
        out.append(Score(fault, name, len(mine), len(delays), sum(map(len, raised.values())),
                         true, float(np.median(delays)) if delays else float("nan"),
                         duplicates))
    return out


def to_epoch(when: datetime | None) -> float:
    return float("inf") if when is None else when.timestamp()
