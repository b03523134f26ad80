"""A simulated district's readings and its exact energy per 15-minute interval (the truth), from
the simulator's physics, and the hostile edits the energy tests apply to the readings."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

import numpy as np

from analytics.energy_intervals import (
    DRIVER_EFFICIENCY,
    Fleet,
    Grid,
    Readings,
    Sun,
    sun_of,
)
from analytics.kernels import STANDBY_W
from analytics.sun import transitions
from controller_fw_sim.fleet import DEFAULT_START
from controller_fw_sim.fleet import Fleet as SimFleet
from controller_fw_sim.fleet_inventory import Inventory, build_inventory
from wire.records import HEADER_SIZE, LUMINAIRE_DTYPE, LuminaireFailure

BUCKET = 900.0
TICK_S = 60.0


@dataclass(frozen=True)
class Run:
    """Readings (dense luminaire = controller * M + index) and the truth per interval."""

    inventory: Inventory
    readings: Readings
    ctl: np.ndarray  # controller of each reading (sorted like readings)
    b0: int  # first bucket (epoch s // 900)
    truth_wh: np.ndarray  # (luminaires, buckets) exact energy per interval
    t_end: float

    def grid(self) -> Grid:
        n = self.truth_wh.shape[0]
        return Grid(np.full(n, self.b0, dtype=np.int64),
                    np.arange(n + 1, dtype=np.int64) * self.truth_wh.shape[1])

    def fleet(self) -> Fleet:
        inv = self.inventory
        ctl = inv.luminaire_controller.astype(np.int64)
        cab = inv.controller_cabinet.astype(np.int64)[ctl]
        return Fleet(rated_input_w=inv.luminaire_rated_w / DRIVER_EFFICIENCY + STANDBY_W,
                     switched=inv.switched[cab], place=ctl, peer=cab,
                     wider=inv.controller_tenant.astype(np.int64)[ctl])

    def sun(self) -> Sun:
        inv = self.inventory
        t0 = self.b0 * BUCKET
        return sun_of([transitions(float(la), float(lo), t0, self.t_end)
                       for la, lo in zip(inv.controller_lat.tolist(), inv.controller_lon.tolist(),
                                         strict=True)])

    def drop(self, mask: np.ndarray) -> Run:
        """The run without the readings where mask is true."""
        r = self.readings
        k = ~mask
        return replace(self, readings=Readings(r.lum[k], r.t[k], r.energy_wh[k], r.power_w[k],
                                               r.level[k]), ctl=self.ctl[k])

    def with_energy(self, energy_wh: np.ndarray) -> Run:
        r = self.readings
        return replace(self, readings=Readings(r.lum, r.t, energy_wh, r.power_w, r.level))


def district(switched_fraction: float = 0.5, controllers: int = 24, seed: int = 5) -> Inventory:
    """A few controllers x 4 luminaires in two municipalities, a cabinet each, one switched."""
    from controller_fw_sim.fleet_inventory import TENANTS
    return build_inventory(controllers, 4, seed=seed, tenants=TENANTS[:2],
                           switched_fraction=switched_fraction)


def simulate(inventory: Inventory, hours: float, *, start: datetime = DEFAULT_START,
             interval_s: float = 300.0, gear: str = "d4i_full") -> Run:
    """Run the simulator (one-minute ticks, readings every `interval_s`) for `hours`; gear
    without D4i metering reports NaN energy and power (their ABSENT_POWER bit)."""
    fleet = SimFleet(inventory, start=start, interval_s=interval_s, seed=2, meters=False,
                     gear_mix=(gear,))
    n = inventory.n_luminaires
    t_start = start.timestamp()
    b0 = int(np.ceil(t_start / BUCKET))
    ticks = int(hours * 3600 / TICK_S)
    boundaries = []
    rows = []
    all_lums = np.arange(n)
    for k in range(1, ticks + 1):
        box = fleet.advance(k * TICK_S)
        now = t_start + k * TICK_S
        if len(box):
            rec = np.ascontiguousarray(box.payloads[:, HEADER_SIZE:]).view(LUMINAIRE_DTYPE)
            rec = rec.reshape(box.payloads.shape[0], -1)
            ctl = np.repeat(box.controllers, rec.shape[1])
            flat = rec.ravel()
            absent = (flat["failure"] & int(LuminaireFailure.ABSENT_POWER)) != 0
            rows.append((ctl * inventory.luminaires_per_controller + flat["luminaire"], ctl,
                         flat["time_us"] / 1e6, np.where(absent, np.nan, flat["energy_wh"]),
                         np.where(absent, np.nan, flat["power_w"]), flat["level"]))
        if now % BUCKET == 0 and now >= b0 * BUCKET:
            boundaries.append(fleet.luminaire_energy_wh(all_lums).copy())
    counters = np.stack(boundaries, axis=1)  # (n, buckets + 1)
    truth = np.diff(counters, axis=1)
    lum, ctl, t, e, p, lv = (np.concatenate([r[i] for r in rows]) for i in range(6))
    order = np.lexsort((t, lum))
    readings = Readings(lum[order].astype(np.int64), t[order], e[order].astype(np.float64),
                        p[order].astype(np.float64), lv[order].astype(np.int64))
    # the readings go on to the end of the run, past the last whole interval (whose energy a
    # later reading closes)
    return Run(inventory, readings, ctl[order].astype(np.int64), b0, truth,
               t_start + ticks * TICK_S)
