"""The installed base as dense arrays: cabinets, controllers and luminaires, loaded in one go."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import psycopg

#: controller_key * LUM_STRIDE + luminaire index names one luminaire as one integer
LUM_STRIDE = 1024
DEFAULT_PLACE = (50.85, 4.35)  # where sunrise is computed for a device with no position

_CABINETS = """
SELECT id, tenant_id, switched_supply, coalesce(lat, %s), coalesce(lon, %s)
FROM cabinets ORDER BY id
"""
_CONTROLLERS = """
SELECT c.key, c.id, c.tenant_id, c.cabinet_id, c.lat, c.lon, t.timezone
FROM controllers c JOIN tenants t ON t.id = c.tenant_id
WHERE c.status <> 'retired' ORDER BY c.key
"""
_LUMINAIRES = """
SELECT c.key, l.idx, coalesce(l.rated_power_w, 0)
FROM luminaires l JOIN controllers c ON c.id = l.controller_id
WHERE c.status <> 'retired' ORDER BY c.key, l.idx
"""


@dataclass(frozen=True)
class Registry:
    """Devices in dense index order; luminaire j is on controller lum_ctl[j], and so on."""

    cab_id: tuple[str, ...]
    cab_tenant: tuple[str, ...]
    cab_switched: np.ndarray  # bool
    ctl_key: np.ndarray  # int64, sorted
    ctl_id: tuple[str, ...]
    ctl_tenant: tuple[str, ...]
    ctl_tz: tuple[str, ...]
    ctl_cab: np.ndarray  # int64, -1: no cabinet
    ctl_lat: np.ndarray  # position used for sunrise and sunset
    ctl_lon: np.ndarray
    lum_key: np.ndarray  # int64 controller_key * LUM_STRIDE + idx, sorted
    lum_ctl: np.ndarray  # int64 dense controller
    lum_idx: np.ndarray  # int64 luminaire index on its controller
    lum_rated_w: np.ndarray  # float64 rated LED power, 0 when unknown

    @property
    def n_luminaires(self) -> int:
        return int(self.lum_key.shape[0])

    @property
    def n_controllers(self) -> int:
        return int(self.ctl_key.shape[0])

    @property
    def n_cabinets(self) -> int:
        return len(self.cab_id)

    def luminaires_of(self, controller_key: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """Dense luminaire numbers of (controller_key, idx) pairs; -1 where not registered."""
        key = np.asarray(controller_key, np.int64) * LUM_STRIDE + np.asarray(idx, np.int64)
        pos = np.searchsorted(self.lum_key, key)
        pos = np.clip(pos, 0, max(self.n_luminaires - 1, 0))
        ok = (self.n_luminaires > 0) & (self.lum_key[pos] == key) if self.n_luminaires else (
            np.zeros(key.shape[0], dtype=bool))
        return np.where(ok, pos, -1)

    def controllers_of(self, controller_key: np.ndarray) -> np.ndarray:
        """Dense controller numbers of controller keys; -1 where not registered."""
        key = np.asarray(controller_key, np.int64)
        if self.n_controllers == 0:
            return np.full(key.shape[0], -1, dtype=np.int64)
        pos = np.clip(np.searchsorted(self.ctl_key, key), 0, self.n_controllers - 1)
        return np.where(self.ctl_key[pos] == key, pos, -1)

    @property
    def ctl_switched(self) -> np.ndarray:
        """bool per controller: its cabinet's supply is switched off by day."""
        return np.where(self.ctl_cab >= 0, self.cab_switched[np.maximum(self.ctl_cab, 0)]
                        if self.n_cabinets else False, False)

    @property
    def ctl_first_lum(self) -> np.ndarray:
        """Dense number of each controller's first luminaire (-1 when it has none)."""
        first = np.full(self.n_controllers, -1, dtype=np.int64)
        if self.n_luminaires:
            head = np.concatenate([[True], self.lum_ctl[1:] != self.lum_ctl[:-1]])
            first[self.lum_ctl[head]] = np.flatnonzero(head)
        return first


def load_registry(conn: psycopg.Connection) -> Registry:
    """Read the installed base (retired controllers left out)."""
    cabs = conn.execute(_CABINETS, DEFAULT_PLACE).fetchall()
    ctls = conn.execute(_CONTROLLERS).fetchall()
    lums = conn.execute(_LUMINAIRES).fetchall()
    cab_pos = {row[0]: i for i, row in enumerate(cabs)}
    cab_lat = np.array([r[3] for r in cabs], dtype=np.float64)
    cab_lon = np.array([r[4] for r in cabs], dtype=np.float64)
    ctl_cab = np.array([cab_pos.get(r[3], -1) if r[3] is not None else -1 for r in ctls],
                       dtype=np.int64)
    lat = np.array([r[4] if r[4] is not None else np.nan for r in ctls], dtype=np.float64)
    lon = np.array([r[5] if r[5] is not None else np.nan for r in ctls], dtype=np.float64)
    has_cab = ctl_cab >= 0
    if cabs:
        lat = np.where(np.isnan(lat) & has_cab, cab_lat[np.maximum(ctl_cab, 0)], lat)
        lon = np.where(np.isnan(lon) & has_cab, cab_lon[np.maximum(ctl_cab, 0)], lon)
    lat = np.where(np.isnan(lat), DEFAULT_PLACE[0], lat)
    lon = np.where(np.isnan(lon), DEFAULT_PLACE[1], lon)
    ctl_key = np.array([r[0] for r in ctls], dtype=np.int64)
    lum_ctl_key = np.array([r[0] for r in lums], dtype=np.int64)
    lum_idx = np.array([r[1] for r in lums], dtype=np.int64)
    return Registry(
        cab_id=tuple(r[0] for r in cabs), cab_tenant=tuple(r[1] for r in cabs),
        cab_switched=np.array([bool(r[2]) for r in cabs], dtype=bool),
        ctl_key=ctl_key, ctl_id=tuple(r[1] for r in ctls), ctl_tenant=tuple(r[2] for r in ctls),
        ctl_tz=tuple(r[6] for r in ctls), ctl_cab=ctl_cab, ctl_lat=lat, ctl_lon=lon,
        lum_key=lum_ctl_key * LUM_STRIDE + lum_idx,
        lum_ctl=np.searchsorted(ctl_key, lum_ctl_key).astype(np.int64), lum_idx=lum_idx,
        lum_rated_w=np.array([r[2] for r in lums], dtype=np.float64),
    )
