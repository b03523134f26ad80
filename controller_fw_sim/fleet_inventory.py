"""A seeded inventory of a region like Brussels: tenants, cabinets (EAN), controllers, luminaires.

Pure and deterministic for a seed: the fleet simulator runs it, and the demo and ingest tests
seed the database from the same arrays. Per-luminaire data are flat numpy arrays of length
``controllers * luminaires_per_controller``, controller-major (luminaire ``j`` of controller
``c`` is at ``c * M + j``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from controller_fw_sim.sensors import RoadClass
from wire.topics import validate_identifier

MAX_LUMINAIRES_PER_CONTROLLER = 1024  # luminaire index is bus * 64 + short address, 0..1023
CONTROLLERS_PER_CABINET = 40
EAN_PREFIX = "5414"  # GS1 Belgium, then the grid operator's range
REGION_CENTRE = (50.85, 4.35)


@dataclass(frozen=True)
class Tenant:
    id: str
    name: str
    lat: float
    lon: float
    weight: float  # relative share of the region's luminaires


#: The 19 municipalities of the Brussels-Capital Region: id, name, centre, relative size.
TENANTS: tuple[Tenant, ...] = tuple(
    Tenant(*row)
    for row in (
        ("anderlecht", "Anderlecht", 50.8365, 4.3076, 1.2),
        ("auderghem", "Auderghem", 50.8156, 4.4330, 0.6),
        ("berchem-sainte-agathe", "Berchem-Sainte-Agathe", 50.8640, 4.2950, 0.3),
        ("bruxelles", "Bruxelles", 50.8467, 4.3525, 2.0),
        ("etterbeek", "Etterbeek", 50.8361, 4.3861, 0.4),
        ("evere", "Evere", 50.8709, 4.4020, 0.5),
        ("forest", "Forest", 50.8103, 4.3188, 0.6),
        ("ganshoren", "Ganshoren", 50.8713, 4.3088, 0.3),
        ("ixelles", "Ixelles", 50.8275, 4.3722, 0.8),
        ("jette", "Jette", 50.8778, 4.3258, 0.6),
        ("koekelberg", "Koekelberg", 50.8622, 4.3258, 0.2),
        ("molenbeek-saint-jean", "Molenbeek-Saint-Jean", 50.8547, 4.3224, 0.8),
        ("saint-gilles", "Saint-Gilles", 50.8268, 4.3458, 0.4),
        ("saint-josse-ten-noode", "Saint-Josse-ten-Noode", 50.8535, 4.3733, 0.2),
        ("schaerbeek", "Schaerbeek", 50.8676, 4.3737, 1.0),
        ("uccle", "Uccle", 50.8003, 4.3366, 1.3),
        ("watermael-boitsfort", "Watermael-Boitsfort", 50.7997, 4.4163, 0.7),
        ("woluwe-saint-lambert", "Woluwe-Saint-Lambert", 50.8429, 4.4276, 0.8),
        ("woluwe-saint-pierre", "Woluwe-Saint-Pierre", 50.8296, 4.4322, 0.8),
    )
)


@dataclass(frozen=True)
class LuminaireModel:
    name: str
    rated_w: float  # LED load at full drive
    nominal_lm: float
    l80_hours: float
    clo: bool


#: Catalogue of lantern models, and for each road class the models fitted there.
MODELS: tuple[LuminaireModel, ...] = (
    LuminaireModel("lantern-30w", 30.0, 4200.0, 100_000.0, False),
    LuminaireModel("lantern-45w", 45.0, 6300.0, 100_000.0, False),
    LuminaireModel("street-60w", 60.0, 8400.0, 100_000.0, True),
    LuminaireModel("street-90w", 90.0, 12_600.0, 80_000.0, True),
    LuminaireModel("avenue-120w", 120.0, 16_800.0, 80_000.0, True),
)
_MODELS_OF_CLASS = {
    RoadClass.ARTERIAL: (3, 4),
    RoadClass.COLLECTOR: (2, 3),
    RoadClass.RESIDENTIAL: (0, 1, 2),
    RoadClass.PEDESTRIAN: (0, 1),
}
_ROAD_CLASS_SHARE = np.array([0.15, 0.25, 0.50, 0.10])  # arterial, collector, residential, pedestrian


def ean18_check_digit(first17: str) -> int:
    """GS1 check digit of an 18-digit EAN/GSRN: weights 3,1,3,... from the rightmost digit."""
    if len(first17) != 17 or not first17.isdigit():
        raise ValueError(f"expected 17 digits, got {first17!r}")
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(first17)))
    return (10 - total % 10) % 10


def is_valid_ean18(ean: str) -> bool:
    return len(ean) == 18 and ean.isdigit() and ean18_check_digit(ean[:17]) == int(ean[17])


def controller_id(number: int) -> str:
    """`ctl-000001` for controller 1 (numbers start at 1)."""
    return f"ctl-{number:06d}"


def luminaire_device_id(controller: str, index: int) -> str:
    """Device id of one luminaire in fault scenarios and labels: `ctl-000001:2`."""
    return f"{controller}:{index}"


#: Sensors of a multifunction pole, as they are named in fault scenarios (`ctl-000001:no2`).
URBAN_SENSOR_KINDS = ("noise", "pm25", "no2", "temperature", "humidity")
SENSOR_KINDS = ("lux", *URBAN_SENSOR_KINDS)


def sensor_device_id(controller: str, kind: str = "lux") -> str:
    """Device id of a controller's sensor in fault scenarios: `ctl-000001:lux` (ambient light),
    or one of a multifunction pole's URBAN_SENSOR_KINDS (`ctl-000001:noise`)."""
    if kind not in SENSOR_KINDS:
        raise ValueError(f"unknown sensor kind {kind!r}; expected one of {SENSOR_KINDS}")
    return f"{controller}:{kind}"


@dataclass(frozen=True, eq=False)
class Inventory:
    """A region's lighting assets. Index arrays point into the tuples/arrays above them."""

    seed: int
    luminaires_per_controller: int
    tenants: tuple[Tenant, ...]
    models: tuple[LuminaireModel, ...]
    # cabinets (one supply point each)
    cabinet_ids: tuple[str, ...]
    cabinet_tenant: np.ndarray  # int32 index into tenants
    cabinet_ean: tuple[str, ...]
    cabinet_lat: np.ndarray
    cabinet_lon: np.ndarray
    # controllers (one per pole or pole group)
    controller_ids: tuple[str, ...]
    controller_tenant: np.ndarray  # int32
    controller_cabinet: np.ndarray  # int32 index into cabinet_ids
    controller_lat: np.ndarray
    controller_lon: np.ndarray
    controller_road_class: np.ndarray  # int8 RoadClass
    # luminaires, controller-major
    luminaire_controller: np.ndarray  # int32
    luminaire_index: np.ndarray  # uint16, 0..M-1 on its controller
    luminaire_model: np.ndarray  # int16 index into models
    luminaire_rated_w: np.ndarray  # float64
    luminaire_lat: np.ndarray
    luminaire_lon: np.ndarray
    # switched supply (off by day, as on Sibelga's network) per cabinet; None: all powered all day
    cabinet_switched: np.ndarray | None = None

    @property
    def switched(self) -> np.ndarray:
        """bool per cabinet: its supply is switched off by day."""
        if self.cabinet_switched is None:
            return np.zeros(len(self.cabinet_ids), dtype=bool)
        return self.cabinet_switched

    @property
    def controller_phase(self) -> np.ndarray:
        """Phase (0..2 for L1..L3) feeding each controller: round-robin within its cabinet."""
        cab = self.controller_cabinet.astype(np.int64)
        order = np.argsort(cab, kind="stable")
        counts = np.bincount(cab, minlength=len(self.cabinet_ids))
        first = np.concatenate([[0], np.cumsum(counts)[:-1]])
        rank = np.empty_like(cab)
        rank[order] = np.arange(cab.shape[0]) - first[cab[order]]
        return rank % 3

    @property
    def n_controllers(self) -> int:
        return len(self.controller_ids)

    @property
    def n_luminaires(self) -> int:
        return int(self.luminaire_controller.shape[0])

    def tenant_of_controller(self, c: int) -> str:
        return self.tenants[int(self.controller_tenant[c])].id

    def controller_tenant_ids(self) -> list[str]:
        """Tenant id of every controller, in controller order."""
        ids = [t.id for t in self.tenants]
        return [ids[i] for i in self.controller_tenant.tolist()]

    def luminaire_model_names(self) -> list[str]:
        names = [m.name for m in self.models]
        return [names[i] for i in self.luminaire_model.tolist()]


def build_inventory(controllers: int, luminaires_per_controller: int = 4, *, seed: int = 0,
                    tenants: tuple[Tenant, ...] = TENANTS,
                    switched_fraction: float = 0.0) -> Inventory:
    """A deterministic region of ``controllers`` controllers with M luminaires each; a
    ``switched_fraction`` of its cabinets have a supply switched off by day."""
    if not 0.0 <= switched_fraction <= 1.0:
        raise ValueError(f"switched_fraction must be in [0, 1], not {switched_fraction}")
    if not 1 <= controllers <= 999_999:
        raise ValueError(f"controllers must be in 1..999999, not {controllers}")
    m = luminaires_per_controller
    if not 1 <= m <= MAX_LUMINAIRES_PER_CONTROLLER:
        raise ValueError(f"luminaires per controller must be in 1..{MAX_LUMINAIRES_PER_CONTROLLER}")
    rng = np.random.default_rng([seed, 0x1C])
    n_t = len(tenants)
    weights = np.array([t.weight for t in tenants])
    # controllers per tenant: proportional to weight, at least one each while there are enough
    share = weights / weights.sum()
    per_tenant = np.floor(share * controllers).astype(np.int64)
    if controllers >= n_t:
        per_tenant = np.maximum(per_tenant, 1)
    while per_tenant.sum() > controllers:
        per_tenant[np.argmax(per_tenant)] -= 1
    order = np.argsort(-(share * controllers - per_tenant), kind="stable")
    per_tenant[order[: controllers - per_tenant.sum()]] += 1
    ctl_tenant = np.repeat(np.arange(n_t, dtype=np.int32), per_tenant)

    t_lat = np.array([t.lat for t in tenants])
    t_lon = np.array([t.lon for t in tenants])
    ctl_lat = t_lat[ctl_tenant] + rng.normal(0.0, 0.008, controllers)
    ctl_lon = t_lon[ctl_tenant] + rng.normal(0.0, 0.012, controllers)
    road = rng.choice(4, size=controllers, p=_ROAD_CLASS_SHARE).astype(np.int8)

    # cabinets: per tenant, consecutive controllers of that tenant share one
    cab_counts = -(-per_tenant // CONTROLLERS_PER_CABINET)  # ceil
    cab_tenant = np.repeat(np.arange(n_t, dtype=np.int32), cab_counts)
    first_cab = np.cumsum(cab_counts) - cab_counts
    first_ctl = np.cumsum(per_tenant) - per_tenant
    rank = np.arange(controllers) - first_ctl[ctl_tenant]
    ctl_cabinet = (first_cab[ctl_tenant] + rank // CONTROLLERS_PER_CABINET).astype(np.int32)
    n_cab = int(cab_counts.sum())
    cab_lat = np.zeros(n_cab)
    cab_lon = np.zeros(n_cab)
    np.add.at(cab_lat, ctl_cabinet, ctl_lat)
    np.add.at(cab_lon, ctl_cabinet, ctl_lon)
    fed = np.bincount(ctl_cabinet, minlength=n_cab)
    cab_lat /= fed
    cab_lon /= fed
    cabinet_ids = tuple(f"cab-{i + 1:05d}" for i in range(n_cab))
    body = rng.integers(0, 10, size=(n_cab, 17 - len(EAN_PREFIX)))
    eans = []
    for row in body:
        first17 = EAN_PREFIX + "".join(map(str, row.tolist()))
        eans.append(first17 + str(ean18_check_digit(first17)))

    # luminaires: models by road class, a few metres apart along the street
    lum_ctl = np.repeat(np.arange(controllers, dtype=np.int32), m)
    lum_idx = np.tile(np.arange(m, dtype=np.uint16), controllers)
    lum_road = road[lum_ctl]
    choice = rng.random(controllers * m)
    lum_model = np.zeros(controllers * m, dtype=np.int16)
    for cls, models in _MODELS_OF_CLASS.items():
        sel = lum_road == cls
        lum_model[sel] = np.asarray(models, dtype=np.int16)[(choice[sel] * len(models)).astype(int)]
    rated = np.array([mo.rated_w for mo in MODELS])[lum_model]
    lum_lat = ctl_lat[lum_ctl] + lum_idx * 2.5e-4
    lum_lon = ctl_lon[lum_ctl] + rng.normal(0.0, 1e-4, controllers * m)

    switched = np.random.default_rng([seed, 0x5E]).random(n_cab) < switched_fraction
    ids = tuple(controller_id(i + 1) for i in range(controllers))
    for t in tenants:
        validate_identifier(t.id, "tenant")
    return Inventory(
        seed=seed, luminaires_per_controller=m, tenants=tuple(tenants), models=MODELS,
        cabinet_ids=cabinet_ids, cabinet_tenant=cab_tenant, cabinet_ean=tuple(eans),
        cabinet_lat=cab_lat, cabinet_lon=cab_lon,
        controller_ids=ids, controller_tenant=ctl_tenant, controller_cabinet=ctl_cabinet,
        controller_lat=ctl_lat, controller_lon=ctl_lon, controller_road_class=road,
        luminaire_controller=lum_ctl, luminaire_index=lum_idx, luminaire_model=lum_model,
        luminaire_rated_w=rated, luminaire_lat=lum_lat, luminaire_lon=lum_lon,
        cabinet_switched=switched,
    )
