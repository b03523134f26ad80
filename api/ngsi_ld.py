"""FIWARE Smart Data Models (Streetlighting) entities from Luciole's rows: key-values and normalized.

Pure functions on plain values. The key-values form is what the FIWARE JSON Schemas describe; the
normalized form wraps each attribute as an NGSI-LD Property, GeoProperty or Relationship and adds
the @context. What is left out on purpose (personal or security-relevant data): users, claim codes,
credentials, firmware versions, serial numbers and GTINs, supply-point EANs.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache, lru_cache
from typing import Any

from analytics.fault_types import (
    ABSOLUTE_LAMP_POWER_TOO_HIGH,
    ABSOLUTE_LAMP_POWER_TOO_LOW,
    CONTROL_GEAR_FAILURE,
    CYCLING_FAILURE,
    DIMMING_FAILURE,
    LAMP_FAILURE,
    LAMP_POWER_TOO_HIGH,
    LAMP_POWER_TOO_LOW,
    LAMP_UNEXPECTED_ON,
    POLE_TILTED,
    RELAY_FAILURE,
)
from wire.records import LEVEL_UNKNOWN, LuminaireFailure

CONTEXT = [
    "https://raw.githubusercontent.com/smart-data-models/dataModel.Streetlighting/master/context.jsonld",
    "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld",
]
"""The Streetlighting data models' @context, then the NGSI-LD core context."""

ENTITY_TYPES = ("Streetlight", "StreetlightControlCabinet", "StreetlightGroup", "StreetlightModel")

DATA_PROVIDER = "Luciole"

# Streetlight.status, most serious first: a tilted pole, then the gear in the lantern, then the lamp.
# Faults that do not show on the light itself (supply voltage, power factor, temperature, drift,
# a silent controller, a cabinet's supply) leave "ok": the enum has no "unknown".
_STATUS_BY_KIND: tuple[tuple[str, frozenset[str]], ...] = (
    ("columnIssue", frozenset({POLE_TILTED.name})),
    ("brokenLantern", frozenset({CONTROL_GEAR_FAILURE.name})),
    ("defectiveLamp", frozenset({LAMP_FAILURE.name, RELAY_FAILURE.name, CYCLING_FAILURE.name,
                                 DIMMING_FAILURE.name, LAMP_POWER_TOO_HIGH.name,
                                 LAMP_POWER_TOO_LOW.name, ABSOLUTE_LAMP_POWER_TOO_HIGH.name,
                                 ABSOLUTE_LAMP_POWER_TOO_LOW.name,
                                 LAMP_UNEXPECTED_ON.name})),
)

# Road classes as the inventory names them, and EN 13201 lighting classes (M1-M6 motorised
# traffic, C0-C5 conflict areas such as junctions, both on the road; P1-P6 pedestrians and
# low-speed areas).
_LOCATION_CATEGORY = {"arterial": "road", "collector": "road", "residential": "road",
                      "pedestrian": "pedestrianPath"}
_EN13201 = re.compile(r"^([MCP])[0-6]$")


@cache
def location_category(road_class: str | None) -> str | None:
    """Streetlight.locationCategory from a luminaire's road class, None when not known."""
    if not road_class:
        return None
    rc = road_class.strip()
    en = _EN13201.match(rc.upper())
    if en:
        return "pedestrianPath" if en[1] == "P" else "road"
    return _LOCATION_CATEGORY.get(rc.lower())

LOW_BELOW = 0.9
"""A lit luminaire whose light output is below this share of full light is `low` (dimmed)."""

_ABSENT_POWER = int(LuminaireFailure.ABSENT_POWER)
_ABSENT_DIAGNOSTICS = int(LuminaireFailure.ABSENT_DIAGNOSTICS)

COORDINATE_DIGITS = 7
"""Decimal places kept in coordinates (about 1 cm)."""


def entity_id(entity_type: str, tenant: str, *parts: object) -> str:
    """The NGSI-LD URN of an entity: urn:ngsi-ld:{type}:{tenant}:{parts...}."""
    return ":".join(["urn:ngsi-ld", entity_type, tenant, *(str(p) for p in parts)])


def streetlight_id(tenant: str, controller_id: str, idx: int) -> str:
    return f"urn:ngsi-ld:Streetlight:{tenant}:{controller_id}:{idx}"


@cache
def cabinet_id(tenant: str, cabinet: str) -> str:
    return entity_id("StreetlightControlCabinet", tenant, cabinet)


@cache
def group_id(tenant: str, group: int) -> str:
    return entity_id("StreetlightGroup", tenant, group)


@cache
def circuit_group_id(tenant: str, cabinet: str) -> str:
    """The group of every streetlight a cabinet feeds (its circuit, switched together)."""
    return entity_id("StreetlightGroup", tenant, "circuit", cabinet)


@cache
def model_id(tenant: str, model: str) -> str:
    """A model's URN; characters the NGSI identifier pattern refuses become '-', and then a short
    digest of the name keeps two names that read alike apart."""
    name = model.strip()
    safe = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "-._") else "-" for ch in name)[:64]
    if safe != name:
        safe = f"{safe}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"
    return entity_id("StreetlightModel", tenant, safe)


@cache
def relative_light(level: int) -> float:
    """Light output (0..1) of a DALI arc power level on the IEC 62386-102 logarithmic curve."""
    if level <= 0:
        return 0.0
    level = min(level, 254)
    return round(10.0 ** ((level - 1) / (253.0 / 3.0) - 1.0) / 100.0, 6)


def status_of(open_fault_kinds: Iterable[str]) -> str:
    """Streetlight.status from the kinds of the faults open on it, its controller and its cabinet."""
    if not open_fault_kinds:
        return "ok"
    kinds = set(open_fault_kinds)
    for status, causes in _STATUS_BY_KIND:
        if kinds & causes:
            return status
    return "ok"


@cache
def power_state_of(level: int) -> str:
    """Streetlight.powerState from a known arc level."""
    if level <= 0:
        return "off"
    return "low" if relative_light(level) < LOW_BELOW else "on"


def point(lon: float, lat: float) -> dict[str, Any]:
    """A GeoJSON Point, longitude first (RFC 7946)."""
    return {"type": "Point",
            "coordinates": [round(lon, COORDINATE_DIGITS), round(lat, COORDINATE_DIGITS)]}


def extent(lon_min: float, lat_min: float, lon_max: float, lat_max: float) -> dict[str, Any]:
    """A GeoJSON geometry covering a bounding box: a Point, a LineString when flat, else a Polygon
    (counter-clockwise exterior ring, RFC 7946)."""
    a, b = (round(lon_min, COORDINATE_DIGITS), round(lat_min, COORDINATE_DIGITS))
    c, d = (round(lon_max, COORDINATE_DIGITS), round(lat_max, COORDINATE_DIGITS))
    if a == c and b == d:
        return {"type": "Point", "coordinates": [a, b]}
    if a == c or b == d:
        return {"type": "LineString", "coordinates": [[a, b], [c, d]]}
    return {"type": "Polygon", "coordinates": [[[a, b], [c, b], [c, d], [a, d], [a, b]]]}


def _time(value: datetime) -> str:
    """ISO 8601, UTC as Z; remembered (a controller's luminaires report at the same time, and
    installation dates repeat), so an export formats each distinct time once. Keyed by the time
    zone too: two equal instants in two zones are written each in its own."""
    return _iso(value, value.tzinfo)


@lru_cache(maxsize=65_536)
def _iso(value: datetime, zone: object) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _finite(value: float | None) -> bool:
    return value is not None and _isfinite(value)


_isfinite = math.isfinite


@dataclass(frozen=True)
class LiveState:
    """The latest reading of a luminaire (luminaire_state), while its controller is online."""

    time: datetime
    level: int
    power_w: float
    voltage_v: float
    power_factor: float
    failure: int


@dataclass(frozen=True)
class StreetlightRow:
    """One luminaire with what the export says of it."""

    tenant: str
    tenant_name: str
    controller_id: str
    idx: int
    lon: float
    lat: float
    model: str | None = None
    rated_power_w: float | None = None
    road_class: str | None = None
    installed_at: datetime | None = None
    pole_id: str | None = None
    cabinet: str | None = None
    group: int | None = None
    open_faults: tuple[str, ...] = ()
    live: LiveState | None = None


def streetlight(row: StreetlightRow) -> dict[str, Any]:
    """The key-values Streetlight entity of a luminaire."""
    e: dict[str, Any] = {
        "id": streetlight_id(row.tenant, row.controller_id, row.idx),
        "type": "Streetlight",
        "location": point(row.lon, row.lat),
        "status": status_of(row.open_faults),
        "controllingMethod": "individual",
        "address": {"addressLocality": row.tenant_name},
        "dataProvider": DATA_PROVIDER,
    }
    if row.pole_id:
        e["streetPoleNum"] = row.pole_id
    if row.cabinet:
        e["refStreetlightControlCabinet"] = cabinet_id(row.tenant, row.cabinet)
    if row.group is not None:
        e["refStreetlightGroup"] = group_id(row.tenant, row.group)
    elif row.cabinet:
        e["refStreetlightGroup"] = circuit_group_id(row.tenant, row.cabinet)
    if row.model:
        e["refStreetlightModel"] = model_id(row.tenant, row.model)
    rated = row.rated_power_w
    if rated is not None and _isfinite(rated):
        e["powerRating"] = rated
    category = location_category(row.road_class)
    if category is not None:
        e["locationCategory"] = category
    if row.installed_at is not None:
        e["dateServiceStarted"] = _time(row.installed_at)
    live = row.live
    if live is not None and live.level != LEVEL_UNKNOWN:
        e["observationDateTime"] = _time(live.time)
        e["powerState"] = power_state_of(live.level)
        e["illuminanceLevel"] = relative_light(live.level)
        failure = live.failure
        if not failure & _ABSENT_POWER and _isfinite(live.power_w):
            e["powerConsumption"] = round(live.power_w, 2)
        if not failure & _ABSENT_DIAGNOSTICS:
            if _isfinite(live.voltage_v):
                e["voltage"] = round(live.voltage_v, 1)
            if _isfinite(live.power_factor):
                e["powerFactor"] = round(live.power_factor, 3)
    return e



@dataclass(frozen=True)
class CabinetRow:
    """A control cabinet with a position, the groups of the luminaires it feeds."""

    tenant: str
    tenant_name: str
    cabinet: str
    lon: float
    lat: float
    name: str = ""
    groups: tuple[int, ...] = ()
    controllers: int = 0
    contracted_kw: float | None = None


def control_cabinet(row: CabinetRow) -> dict[str, Any]:
    """The key-values StreetlightControlCabinet entity of a cabinet."""
    groups = [circuit_group_id(row.tenant, row.cabinet),
              *(group_id(row.tenant, g) for g in sorted(set(row.groups)))]
    e: dict[str, Any] = {
        "id": cabinet_id(row.tenant, row.cabinet),
        "type": "StreetlightControlCabinet",
        "location": point(row.lon, row.lat),
        "refStreetlightGroup": groups,
        # switching follows the schedules and the sun by itself; operators may command luminaires
        "workingMode": "semiautomatic",
        "address": {"addressLocality": row.tenant_name},
        "dataProvider": DATA_PROVIDER,
    }
    if row.name:
        e["name"] = row.name
    if row.controllers > 0:
        e["features"] = ["individualControl"]
    if _finite(row.contracted_kw):
        e["maximumPowerAvailable"] = row.contracted_kw
    return e


@dataclass(frozen=True)
class GroupRow:
    """A group of streetlights: a tenant's control group, or a cabinet's circuit (group None)."""

    tenant: str
    tenant_name: str
    members: tuple[tuple[str, int], ...]  # (controller_id, idx)
    bbox: tuple[float, float, float, float]  # lon_min, lat_min, lon_max, lat_max
    group: int | None = None
    name: str = ""
    cabinet: str | None = None  # the circuit's cabinet, or the one cabinet of all members
    levels: tuple[int, ...] = field(default=())  # known live levels of its members


def streetlight_group(row: GroupRow) -> dict[str, Any]:
    """The key-values StreetlightGroup entity of a group."""
    if row.group is not None:
        ident = group_id(row.tenant, row.group)
    elif row.cabinet is not None:
        ident = circuit_group_id(row.tenant, row.cabinet)
    else:
        raise ValueError("a group is a tenant's group or a cabinet's circuit")
    e: dict[str, Any] = {
        "id": ident,
        "type": "StreetlightGroup",
        "location": extent(*row.bbox),
        "address": {"addressLocality": row.tenant_name},
        "dataProvider": DATA_PROVIDER,
    }
    if row.name:
        e["name"] = row.name
    if row.cabinet is not None:
        e["refStreetlightControlCabinet"] = cabinet_id(row.tenant, row.cabinet)
        if row.group is None:
            e["circuitId"] = row.cabinet
    members = sorted({streetlight_id(row.tenant, c, i) for c, i in row.members})
    if members:
        e["refStreetlight"] = members
    known = [lv for lv in row.levels if lv != LEVEL_UNKNOWN]
    if known and len(set(known)) == 1 and len(known) == len(row.members):
        e["powerState"] = power_state_of(known[0])
        e["illuminanceLevel"] = relative_light(known[0])
    return e


def streetlight_model(tenant: str, model: str, rated_power_w: float | None) -> dict[str, Any]:
    """The key-values StreetlightModel entity of a luminaire model name."""
    e: dict[str, Any] = {"id": model_id(tenant, model), "type": "StreetlightModel", "name": model,
                         "lanternModelName": model, "lampTechnology": "LED",
                         "dataProvider": DATA_PROVIDER}
    if _finite(rated_power_w):
        e["powerConsumption"] = rated_power_w
    return e


# ----------------------------------------------------------------- normalized form

_RELATIONSHIPS = {"refStreetlightGroup", "refStreetlightControlCabinet", "refStreetlightModel",
                  "refStreetlight", "refDevice"}
_DATE_TIMES = {"observationDateTime", "dateServiceStarted", "dateLastLampChange",
               "dateLastSwitchingOn", "dateLastSwitchingOff", "dateLastProgramming",
               "dateMeteringStarted", "dateCreated", "dateModified"}


def normalized(entity: Mapping[str, Any]) -> dict[str, Any]:
    """The NGSI-LD normalized form of a key-values entity, with its @context."""
    out: dict[str, Any] = {"id": entity["id"], "type": entity["type"]}
    observed = entity.get("observationDateTime")
    live = _LIVE_ATTRIBUTES if observed else _NOTHING
    for name, value in entity.items():
        kind = _KIND.get(name, _PROPERTY)
        if kind is _PROPERTY:
            out[name] = ({"type": "Property", "value": value, "observedAt": observed}
                         if name in live else {"type": "Property", "value": value})
        elif kind is _RELATIONSHIP:
            out[name] = {"type": "Relationship", "object": value}
        elif kind is _DATE_TIME:
            out[name] = {"type": "Property", "value": {"@type": "DateTime", "@value": value}}
        elif kind is _GEO:
            out[name] = {"type": "GeoProperty", "value": value}
    out["@context"] = CONTEXT
    return out


_LIVE_ATTRIBUTES = frozenset({"powerState", "illuminanceLevel", "powerConsumption", "voltage",
                              "powerFactor"})
_NOTHING: frozenset[str] = frozenset()
_PROPERTY, _RELATIONSHIP, _DATE_TIME, _GEO, _SKIP = (object() for _ in range(5))
_KIND: dict[str, object] = {"id": _SKIP, "type": _SKIP, "location": _GEO,
                            **{n: _RELATIONSHIP for n in _RELATIONSHIPS},
                            **{n: _DATE_TIME for n in _DATE_TIMES}}
