"""A district's week of labelled faults and confounders, for scoring the fault detectors.

`district_scenario` draws, for every fault kind, instances at times where their signature can
show (a lamp failure at night, a lamp burning by day on a cabinet powered all day, a contactor
stuck on across a morning), on distinct healthy devices: cabinet-wide faults on some cabinets,
luminaire, controller and sensor faults on the others. `Confounders` disturbs healthy
luminaires the way a real network does: dimming steps, presence boosts, fast
constant-light-output drift.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import numpy as np
from astral import Observer
from astral.sun import sunrise, sunset

from controller_fw_sim.faults import FaultKind, Scenario
from controller_fw_sim.fleet import DIM_LEVEL, FULL_LEVEL, Fleet
from controller_fw_sim.fleet_inventory import (
    REGION_CENTRE,
    URBAN_SENSOR_KINDS,
    Inventory,
    luminaire_device_id,
    sensor_device_id,
)

LUMINAIRE_KINDS = (
    FaultKind.LAMP_FAILURE, FaultKind.DRIVER_FAILURE, FaultKind.CYCLING, FaultKind.OVER_VOLTAGE,
    FaultKind.UNDER_VOLTAGE, FaultKind.POWER_DRIFT, FaultKind.LOW_POWER_FACTOR,
    FaultKind.DIMMING_FAILURE, FaultKind.DRIVER_OVER_TEMPERATURE, FaultKind.RELAY_STUCK_OFF,
    FaultKind.LAMP_POWER_TOO_HIGH, FaultKind.LAMP_POWER_TOO_LOW, FaultKind.DAY_BURNING,
    FaultKind.ABSOLUTE_POWER_TOO_HIGH, FaultKind.ABSOLUTE_POWER_TOO_LOW,
    FaultKind.CURRENT_TOO_HIGH, FaultKind.CURRENT_TOO_LOW,
)
#: faults fitted with the luminaire (a wrong driver, or one programmed to the wrong current):
#: present from the start, before the detectors learn the luminaire's baseline
COMMISSIONED_KINDS = (FaultKind.ABSOLUTE_POWER_TOO_HIGH, FaultKind.ABSOLUTE_POWER_TOO_LOW)
CONTROLLER_KINDS = (FaultKind.COMM_LOSS, FaultKind.TILT)
CABINET_KINDS = (FaultKind.SUPPLY_LOSS, FaultKind.RELAY_STUCK_ON, FaultKind.CABINET_LEAKAGE)
H = 3600.0


def nights(start: datetime, days: int) -> list[tuple[float, float]]:
    """(sunset, next sunrise) in epoch s of the nights from the start's day on."""
    obs = Observer(*REGION_CENTRE)
    out = []
    for d in range(days + 1):
        day: date = (start + timedelta(days=d)).date()
        out.append((sunset(obs, day, tzinfo=UTC).timestamp(),
                    sunrise(obs, day + timedelta(days=1), tzinfo=UTC).timestamp()))
    return out


def _params(kind: FaultKind, rng: np.random.Generator) -> dict[str, float | int]:
    u = rng.uniform
    match kind:
        case FaultKind.CYCLING:
            return {"period_s": float(u(1500, 2700)), "on_fraction": float(u(0.35, 0.65))}
        case FaultKind.OVER_VOLTAGE:
            return {"factor": float(u(1.12, 1.2))}
        case FaultKind.UNDER_VOLTAGE:
            return {"factor": float(u(0.8, 0.87))}
        case FaultKind.POWER_DRIFT:
            return {"rate_per_day": float(u(0.03, 0.05))}
        case FaultKind.LOW_POWER_FACTOR:
            return {"power_factor": float(u(0.5, 0.7))}
        case FaultKind.DRIVER_OVER_TEMPERATURE:
            return {"extra_c": float(u(60, 80))}
        case FaultKind.LAMP_POWER_TOO_HIGH:
            return {"factor": float(u(1.35, 1.6))}
        case FaultKind.LAMP_POWER_TOO_LOW:
            return {"factor": float(u(0.4, 0.7))}
        case FaultKind.ABSOLUTE_POWER_TOO_HIGH:
            return {"factor": float(u(1.4, 1.7))}
        case FaultKind.ABSOLUTE_POWER_TOO_LOW:
            return {"factor": float(u(0.4, 0.6))}
        case FaultKind.CURRENT_TOO_HIGH:
            return {"reactive_rated": float(u(1.8, 2.4))}
        case FaultKind.CURRENT_TOO_LOW:
            return {"factor": float(u(0.3, 0.5))}
        case FaultKind.CABINET_LEAKAGE:
            return {"current_a": float(u(1.5, 4.0))}
        case FaultKind.SUPPLY_LOSS:
            return {"phase": int(rng.integers(0, 4))}
        case FaultKind.TILT:
            return {"angle_deg": float(u(40, 90))}
    return {}


def _window(kind: FaultKind, night: tuple[float, float], rng: np.random.Generator,
            until: float) -> tuple[float, float]:
    """When a fault of this kind starts and ends, around one night, so that it can show."""
    dusk, dawn = night
    u = rng.uniform
    if kind is FaultKind.DAY_BURNING:  # by day, on a cabinet powered all day
        start = u(dawn + 1 * H, dawn + 4 * H)
        return start, start + u(2 * H, 5 * H)
    if kind is FaultKind.RELAY_STUCK_ON:  # across the morning
        start = u(dawn - 6 * H, dawn - 2 * H)
        return start, dawn + u(3 * H, 6 * H)
    if kind is FaultKind.DIMMING_FAILURE:  # shows in the dimmed hours (22:00-04:00 UTC)
        start = u(dusk + 1 * H, dusk + 8 * H)
        return start, start + u(6 * H, 20 * H)
    if kind is FaultKind.POWER_DRIFT:
        start = u(dusk + 1 * H, dusk + 4 * H)
        return start, until
    if kind is FaultKind.CURRENT_TOO_LOW:  # judged at full level (until 23:00 local)
        start = u(dusk - 2 * H, dusk + 2 * H)
        return start, start + u(10 * H, 30 * H)
    if kind is FaultKind.CABINET_LEAKAGE:
        # it ends by night, while the meter is read: a leak that stops by day on a switched
        # supply (its meter unread until dusk) and starts again in the evening is, to anyone
        # reading the meter, one leak
        start = u(dusk + 0.5 * H, dawn - 5 * H)
        return start, min(start + u(3 * H, 12 * H), dawn - 1 * H)
    if kind in (FaultKind.SUPPLY_LOSS, FaultKind.COMM_LOSS):
        start = u(dusk + 1 * H, dawn - 4 * H)
        return start, start + u(1 * H, 3 * H)
    start = u(dusk + 0.5 * H, dawn - 5 * H)
    return start, start + u(3 * H, 12 * H)


#: the centre tells a cabinet's supply loss from controllers' link losses when at least this
#: many, and this share, of its controllers fall silent at once (analytics.fleet_rules)
SILENT_MIN, SILENT_SHARE = 2, 0.2


def _phase_shows(inventory: Inventory, cabinet: int, phase: int) -> bool:
    """Whether losing `phase` (1..3; 0 the whole feeder) of a cabinet silences enough of its
    controllers to be a supply loss: a lost phase that feeds one controller silences one
    controller, which is a communicationFailure to the centre (nothing tells them apart)."""
    on_cab = inventory.controller_cabinet == cabinet
    n = int(on_cab.sum())
    silent = n if phase == 0 else int((on_cab & (inventory.controller_phase == phase - 1)).sum())
    return silent >= max(SILENT_MIN, int(np.ceil(SILENT_SHARE * n)))


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat()


def district_scenario(inventory: Inventory, start: datetime, days: int, per_kind: int,
                      multifunction: np.ndarray, seed: int = 0) -> Scenario:
    """`per_kind` instances of every fault kind over `days` days from `start` (the first night
    is left healthy: the detectors learn on it)."""
    rng = np.random.default_rng([seed, 0xFA17])
    m = inventory.luminaires_per_controller
    until = (start + timedelta(days=days)).timestamp()
    ns = nights(start, days)[1:days]
    n_cab = len(inventory.cabinet_ids)
    switched = inventory.switched
    # cabinet-wide faults on about a third of the cabinets, switched ones first
    order = rng.permutation(n_cab)
    order = np.concatenate([order[switched[order]], order[~switched[order]]])
    cab_faulted = np.zeros(n_cab, dtype=bool)
    cab_faulted[order[: max(3, n_cab // 3)]] = True
    faults: list[dict[str, object]] = []
    busy: dict[str, list[tuple[float, float]]] = {}

    def free(device: str, a: float, b: float) -> bool:
        return all(b + 2 * H < x or y + 2 * H < a for x, y in busy.get(device, []))

    def add(kind: FaultKind, device: str, a: float, b: float,
            params: dict[str, float | int] | None = None) -> None:
        busy.setdefault(device, []).append((a, b))
        spec: dict[str, object] = {"fault": kind.value, "device": device, "start": _iso(a),
                                   "params": _params(kind, rng) if params is None else params}
        if b < until:
            spec["end"] = _iso(b)
        faults.append(spec)

    cabs = np.flatnonzero(cab_faulted)
    for kind in CABINET_KINDS:
        pool = cabs[switched[cabs]] if kind is FaultKind.RELAY_STUCK_ON else cabs
        if kind is FaultKind.SUPPLY_LOSS:  # a feeder silencing one controller is a link loss
            pool = np.array([c for c in pool.tolist() if _phase_shows(inventory, c, 0)],
                            dtype=np.int64)
        placed, tries = 0, 0
        while placed < per_kind and tries < 100 * per_kind and pool.shape[0]:
            tries += 1
            ci = int(rng.choice(pool))
            cab = inventory.cabinet_ids[ci]
            night = ns[int(rng.integers(0, len(ns)))]
            a, b = _window(kind, night, rng, until)
            params = _params(kind, rng)
            if kind is FaultKind.CABINET_LEAKAGE and switched[ci] and placed % 2:
                # every other leak on a switched supply: upstream of the contactor, from 2-6 h
                # before dusk, seen in the meter's energy across the day at the first reading
                # after dusk; it ends by night, as the others do
                a = rng.uniform(night[0] - 6 * H, night[0] - 2 * H)
                b = min(a + rng.uniform(8 * H, 14 * H), night[1] - 1 * H)
                params["upstream"] = True
            if kind is FaultKind.SUPPLY_LOSS and not _phase_shows(inventory, ci, int(
                    params["phase"])):
                params["phase"] = 0  # that phase feeds too few controllers: the whole feeder
            if a < until - 6 * H and free(cab, a, b):
                add(kind, cab, a, min(b, until), params)
                placed += 1

    ctl_ok = ~cab_faulted[inventory.controller_cabinet]
    ctls = rng.permutation(np.flatnonzero(ctl_ok))
    always = ~switched[inventory.controller_cabinet]
    taken = np.zeros(inventory.n_controllers, dtype=bool)
    taken[multifunction] = True  # sensor faults there, nothing else
    pick = iter(ctls[~taken[ctls]].tolist())
    pick_always = iter(ctls[~taken[ctls] & always[ctls]].tolist())
    for kind in (*LUMINAIRE_KINDS, *CONTROLLER_KINDS):
        for _ in range(per_kind):
            source = pick_always if kind is FaultKind.DAY_BURNING else pick
            c = next(source, None)
            while c is not None and taken[c]:
                c = next(source, None)
            if c is None:
                break
            taken[c] = True
            # a drift needs days to show: it starts in the first nights
            first = min(2, len(ns)) if kind is FaultKind.POWER_DRIFT else len(ns)
            a, b = _window(kind, ns[int(rng.integers(0, first))], rng, until)
            if kind in COMMISSIONED_KINDS:
                a, b = start.timestamp(), until
            ctl = inventory.controller_ids[c]
            device = ctl if kind in CONTROLLER_KINDS else luminaire_device_id(
                ctl, int(rng.integers(0, m)))
            add(kind, device, a, min(b, until))
    poles = rng.permutation(multifunction[ctl_ok[multifunction]])
    for c in poles[:per_kind].tolist():
        a, b = _window(FaultKind.STUCK_SENSOR, ns[int(rng.integers(0, len(ns)))], rng, until)
        sensor = URBAN_SENSOR_KINDS[int(rng.integers(0, len(URBAN_SENSOR_KINDS)))]
        add(FaultKind.STUCK_SENSOR, sensor_device_id(inventory.controller_ids[c], sensor), a,
            min(b, until))
    return Scenario.model_validate({"name": f"district week, seed {seed}",
                                    "faults": faults})


@dataclass
class Confounders:
    """Disturbs healthy luminaires each tick: dimming steps, presence boosts; and gives some of
    them a fast constant-light-output drift at the start."""

    fleet: Fleet
    healthy_controllers: np.ndarray
    seed: int = 0
    step_rate: float = 0.002  # per controller and tick, a dimming step at night
    boost_rate: float = 0.004  # per controller and tick, a presence boost in the dimmed hours
    rng: np.random.Generator = field(init=False)

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng([self.seed, 0xC0F])
        f = self.fleet
        lums = f.luminaires_of(self.healthy_controllers)
        fast = lums[self.rng.random(lums.shape[0]) < 0.05]
        f.params.clo[fast] = True
        f.params.l80_hours[fast] = 1500.0  # lumen maintenance falls fast: the drive rises
        f.state.lamp_on_s[fast] = self.rng.uniform(0, 300 * 3600.0, fast.shape[0])

    def tick(self, tick_s: float) -> None:
        f = self.fleet
        hour = f._hour
        if f.schedule_level == 0 or not (hour >= 18.0 or hour < 5.0):  # overrides end by dawn
            return
        rng = self.rng
        ctls = self.healthy_controllers
        steps = ctls[rng.random(ctls.shape[0]) < self.step_rate]
        for c in steps.tolist():
            level = int(rng.integers(170, FULL_LEVEL + 1))
            f.set_override(c, f.luminaires_of(np.array([c])), level,
                           f.t_s + float(rng.uniform(1800, 7200)))
        if f.schedule_level == DIM_LEVEL:
            boosts = ctls[rng.random(ctls.shape[0]) < self.boost_rate]
            for c in boosts.tolist():
                lum = f.luminaires_of(np.array([c]))[int(rng.integers(0, f.m))]
                f.set_override(c, np.array([lum]), FULL_LEVEL, f.t_s + 2 * tick_s)
