"""The energy hosted edge agents' simulated gear has counted, handed from `luciole sim agents` to
the fleet simulator in a small JSON file (`{"t": simulated epoch s, "energy_wh": {controller:
[Wh per luminaire]}}`, replaced atomically), so that the cabinet meters feeding hosted
luminaires count what that gear draws (its levels follow the agents' schedules and commands)
rather than the fleet's own dusk-to-dawn model of those luminaires.

The fleet reads the file when it changes; a meter read uses the newest snapshot, at most one
write period (a wall second: a simulated minute at 60x) old, so a level change shows on the
meter up to that much late and no energy is lost or counted twice (counters, not powers)."""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


def write_snapshot(path: Path, t_s: float, energy_wh: Mapping[str, Sequence[float]]) -> None:
    """Write the gear's counters at simulated time `t_s`, atomically (a reader never sees half)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"t": t_s, "energy_wh": {c: [float(x) for x in v]
                                                       for c, v in energy_wh.items()}}))
    os.replace(tmp, path)


class HostedEnergy:
    """The hosted luminaires' gear counters as the fleet's meters count them, by global
    luminaire index (controller index x luminaires per controller + luminaire)."""

    def __init__(self, path: Path, controller_ids: Sequence[str], luminaires_per_controller: int,
                 hosted: Sequence[str]) -> None:
        self.path = path
        self.m = luminaires_per_controller
        index = {c: i for i, c in enumerate(controller_ids)}
        self.hosted = {c: index[c] for c in hosted}
        n = len(controller_ids) * luminaires_per_controller
        self.gear_wh = np.full(n, np.nan)  # the gear's counters, newest snapshot
        self.offset_wh = np.full(n, np.nan)  # gear counter -> the meter's running counter
        self.snapshot_t: float | None = None
        self._seen: tuple[int, int, int] | None = None

    def refresh(self) -> None:
        """Read the file when it changed; a missing, partial or foreign file changes nothing."""
        try:
            st = self.path.stat()
        except OSError:
            return
        seen = (st.st_ino, st.st_mtime_ns, st.st_size)  # each write is a new file (os.replace)
        if self._seen == seen:
            return
        try:
            doc = json.loads(self.path.read_text())
            t, energy = float(doc["t"]), doc["energy_wh"]
            if not isinstance(energy, dict):
                raise TypeError("energy_wh is not an object")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("hosted energy file %s unreadable: %s", self.path, exc)
            return
        self._seen = seen
        for controller, values in energy.items():
            c = self.hosted.get(controller)
            if c is None or not isinstance(values, list) or len(values) != self.m:
                continue
            wh = np.array([float(v) for v in values])
            if not np.all(np.isfinite(wh)):
                continue
            at = slice(c * self.m, (c + 1) * self.m)
            # a counter that went back (the agents restarted with fresh gear) carries on from
            # where the meter's counter stood
            back = wh < self.gear_wh[at]
            self.offset_wh[at] = np.where(back, self.gear_wh[at] + self.offset_wh[at] - wh,
                                          self.offset_wh[at])
            self.gear_wh[at] = wh
        self.snapshot_t = t if math.isfinite(t) else None

    def apply(self, lums: np.ndarray, fleet_wh: np.ndarray) -> np.ndarray:
        """`fleet_wh` (the fleet's counters of `lums`) with each hosted luminaire's replaced by its
        gear's. A luminaire's first snapshot is aligned to the fleet's counter at that moment, so
        the meter's difference from its last read never jumps: it counts the gear's increments."""
        gear = self.gear_wh[lums]
        known = ~np.isnan(gear)
        if not known.any():
            return fleet_wh
        fresh = known & np.isnan(self.offset_wh[lums])
        self.offset_wh[lums[fresh]] = fleet_wh[fresh] - gear[fresh]
        out = np.array(fleet_wh, dtype=np.float64, copy=True)
        out[known] = gear[known] + self.offset_wh[lums[known]]
        return out
