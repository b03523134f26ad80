"""The open-data export as it was written before its speed work (the per-cabinet subqueries,
arrays aggregated in order, the standard library's JSON encoder), kept as the oracle the routes
are checked against: the same entities, in the same order, the same values."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import psycopg

from api.ngsi_ld import (
    CabinetRow,
    GroupRow,
    LiveState,
    StreetlightRow,
    control_cabinet,
    normalized,
    streetlight,
    streetlight_group,
    streetlight_model,
)
from wire.records import LEVEL_UNKNOWN

FETCH_ROWS = 2000
"""Rows fetched from the server-side cursor at a time."""

# A luminaire's position is its own, else its controller's (one pole). Retired controllers and
# luminaires with no position at all are not exported (an entity must have a location); a cabinet's
# reference is given only when that cabinet is exported too.
_STREETLIGHTS = """
WITH lf AS (
    SELECT controller_id, luminaire_idx, array_agg(kind) AS kinds FROM faults
    WHERE tenant_id = %(tenant)s AND cleared_at IS NULL AND luminaire_idx IS NOT NULL
      AND sensor IS NULL
    GROUP BY controller_id, luminaire_idx),
cf AS (
    SELECT controller_id, array_agg(kind) AS kinds FROM faults
    WHERE tenant_id = %(tenant)s AND cleared_at IS NULL AND controller_id IS NOT NULL
      AND luminaire_idx IS NULL AND sensor IS NULL
    GROUP BY controller_id),
kf AS (
    SELECT cabinet_id, array_agg(kind) AS kinds FROM faults
    WHERE tenant_id = %(tenant)s AND cleared_at IS NULL AND controller_id IS NULL
      AND cabinet_id IS NOT NULL
    GROUP BY cabinet_id),
gm AS (
    SELECT m.luminaire_id, min(m.group_id) AS group_id
    FROM group_members m JOIN groups g ON g.id = m.group_id
    WHERE g.tenant_id = %(tenant)s
    GROUP BY m.luminaire_id)
SELECT c.id, l.idx, coalesce(l.lon, c.lon), coalesce(l.lat, c.lat), l.model, l.rated_power_w,
       l.road_class, l.installed_at, c.pole_id,
       CASE WHEN k.lat IS NOT NULL AND k.lon IS NOT NULL THEN k.id END,
       gm.group_id,
       coalesce(lf.kinds, '{}') || coalesce(cf.kinds, '{}') || coalesce(kf.kinds, '{}'),
       c.online, s.time, s.level, s.power_w, s.voltage_v, s.power_factor, s.failure
FROM luminaires l
JOIN controllers c ON c.id = l.controller_id AND c.tenant_id = l.tenant_id
LEFT JOIN cabinets k ON k.id = c.cabinet_id AND k.tenant_id = c.tenant_id
LEFT JOIN luminaire_state s ON s.controller_key = c.key AND s.luminaire = l.idx
LEFT JOIN lf ON lf.controller_id = l.controller_id AND lf.luminaire_idx = l.idx
LEFT JOIN cf ON cf.controller_id = l.controller_id
LEFT JOIN kf ON kf.cabinet_id = c.cabinet_id
LEFT JOIN gm ON gm.luminaire_id = l.id
WHERE l.tenant_id = %(tenant)s AND c.status <> 'retired'
  AND coalesce(l.lat, c.lat) IS NOT NULL AND coalesce(l.lon, c.lon) IS NOT NULL
ORDER BY c.id, l.idx
"""

_CABINETS = """
SELECT k.id, k.name, k.lon, k.lat, sp.contracted_kw,
       (SELECT count(*) FROM controllers c
        WHERE c.cabinet_id = k.id AND c.tenant_id = k.tenant_id AND c.status <> 'retired'),
       coalesce((SELECT array_agg(DISTINCT m.group_id)
                 FROM controllers c
                 JOIN luminaires l ON l.controller_id = c.id
                 JOIN group_members m ON m.luminaire_id = l.id
                 JOIN groups g ON g.id = m.group_id AND g.tenant_id = k.tenant_id
                 WHERE c.cabinet_id = k.id AND c.tenant_id = k.tenant_id AND c.status <> 'retired'
                   AND coalesce(l.lat, c.lat) IS NOT NULL AND coalesce(l.lon, c.lon) IS NOT NULL),
                '{}')
FROM cabinets k
LEFT JOIN supply_points sp ON sp.ean = k.supply_point_ean AND sp.tenant_id = k.tenant_id
WHERE k.tenant_id = %(tenant)s AND k.lat IS NOT NULL AND k.lon IS NOT NULL
ORDER BY k.id
"""

# the members of each tenant group that the export has as Streetlight entities
_GROUPS = """
SELECT g.id, g.name,
       min(coalesce(l.lon, c.lon)), min(coalesce(l.lat, c.lat)),
       max(coalesce(l.lon, c.lon)), max(coalesce(l.lat, c.lat)),
       array_agg(c.id::text ORDER BY c.id, l.idx), array_agg(l.idx ORDER BY c.id, l.idx),
       array_agg(CASE WHEN c.online THEN s.level END ORDER BY c.id, l.idx),
       count(DISTINCT c.cabinet_id), min(c.cabinet_id),
       bool_and(k.lat IS NOT NULL AND k.lon IS NOT NULL)
FROM groups g
JOIN group_members m ON m.group_id = g.id
JOIN luminaires l ON l.id = m.luminaire_id AND l.tenant_id = g.tenant_id
JOIN controllers c ON c.id = l.controller_id AND c.tenant_id = g.tenant_id
LEFT JOIN cabinets k ON k.id = c.cabinet_id
LEFT JOIN luminaire_state s ON s.controller_key = c.key AND s.luminaire = l.idx
WHERE g.tenant_id = %(tenant)s AND c.status <> 'retired'
  AND coalesce(l.lat, c.lat) IS NOT NULL AND coalesce(l.lon, c.lon) IS NOT NULL
GROUP BY g.id
ORDER BY g.id
"""

# each exported cabinet's circuit: the streetlights it feeds (its own position when it feeds none)
_CIRCUITS = """
SELECT k.id, k.lon, k.lat,
       min(coalesce(l.lon, c.lon)), min(coalesce(l.lat, c.lat)),
       max(coalesce(l.lon, c.lon)), max(coalesce(l.lat, c.lat)),
       coalesce(array_agg(c.id::text ORDER BY c.id, l.idx) FILTER (WHERE l.id IS NOT NULL), '{}'),
       coalesce(array_agg(l.idx ORDER BY c.id, l.idx) FILTER (WHERE l.id IS NOT NULL), '{}'),
       coalesce(array_agg(CASE WHEN c.online THEN s.level END ORDER BY c.id, l.idx)
                FILTER (WHERE l.id IS NOT NULL), '{}')
FROM cabinets k
LEFT JOIN controllers c ON c.cabinet_id = k.id AND c.tenant_id = k.tenant_id
                       AND c.status <> 'retired'
LEFT JOIN luminaires l ON l.controller_id = c.id
                      AND coalesce(l.lat, c.lat) IS NOT NULL AND coalesce(l.lon, c.lon) IS NOT NULL
LEFT JOIN luminaire_state s ON s.controller_key = c.key AND s.luminaire = l.idx
WHERE k.tenant_id = %(tenant)s AND k.lat IS NOT NULL AND k.lon IS NOT NULL
GROUP BY k.id
ORDER BY k.id
"""

_MODELS = """
SELECT l.model, CASE WHEN min(l.rated_power_w) = max(l.rated_power_w) THEN min(l.rated_power_w) END
FROM luminaires l JOIN controllers c ON c.id = l.controller_id AND c.tenant_id = l.tenant_id
WHERE l.tenant_id = %(tenant)s AND c.status <> 'retired' AND l.model IS NOT NULL
  AND btrim(l.model) <> ''
  AND coalesce(l.lat, c.lat) IS NOT NULL AND coalesce(l.lon, c.lon) IS NOT NULL
GROUP BY l.model
ORDER BY l.model
"""



async def _rows(conn: psycopg.AsyncConnection[Any], query: str, tenant: str,
                name: str) -> AsyncIterator[tuple[Any, ...]]:
    """The rows of `query` through a server-side cursor, FETCH_ROWS at a time."""
    async with conn.transaction(), conn.cursor(name=name) as cur:
        cur.itersize = FETCH_ROWS
        await cur.execute(query, {"tenant": tenant})
        async for row in cur:
            yield row


def _level(value: int | None) -> int:
    return LEVEL_UNKNOWN if value is None else int(value)


async def streetlights(conn: psycopg.AsyncConnection[Any], tenant: str,
                       name: str) -> AsyncIterator[dict[str, Any]]:
    """The tenant's Streetlight entities (key-values), in controller and luminaire order."""
    async for r in _rows(conn, _STREETLIGHTS, tenant, "open_data_streetlights"):
        live = None
        if r[12] and r[13] is not None:
            live = LiveState(time=r[13], level=int(r[14]), power_w=r[15], voltage_v=r[16],
                             power_factor=r[17], failure=int(r[18]))
        yield streetlight(StreetlightRow(
            tenant=tenant, tenant_name=name, controller_id=r[0], idx=int(r[1]), lon=r[2], lat=r[3],
            model=r[4], rated_power_w=r[5], road_class=r[6], installed_at=r[7], pole_id=r[8],
            cabinet=r[9], group=r[10], open_faults=tuple(r[11]), live=live))


async def cabinets(conn: psycopg.AsyncConnection[Any], tenant: str,
                   name: str) -> AsyncIterator[dict[str, Any]]:
    """The tenant's StreetlightControlCabinet entities (key-values)."""
    async for r in _rows(conn, _CABINETS, tenant, "open_data_cabinets"):
        yield control_cabinet(CabinetRow(
            tenant=tenant, tenant_name=name, cabinet=r[0], name=r[1] or "", lon=r[2], lat=r[3],
            contracted_kw=r[4], controllers=int(r[5]), groups=tuple(r[6])))


async def groups(conn: psycopg.AsyncConnection[Any], tenant: str,
                 name: str) -> AsyncIterator[dict[str, Any]]:
    """The tenant's StreetlightGroup entities: its control groups, then each cabinet's circuit."""
    async for r in _rows(conn, _GROUPS, tenant, "open_data_groups"):
        one_cabinet = r[10] if r[9] == 1 and r[11] else None
        yield streetlight_group(GroupRow(
            tenant=tenant, tenant_name=name, group=int(r[0]), name=r[1], bbox=(r[2], r[3], r[4], r[5]),
            members=tuple(zip(r[6], r[7], strict=True)), levels=tuple(_level(v) for v in r[8]),
            cabinet=one_cabinet))
    async for r in _rows(conn, _CIRCUITS, tenant, "open_data_circuits"):
        bbox = (r[3], r[4], r[5], r[6]) if r[3] is not None else (r[1], r[2], r[1], r[2])
        yield streetlight_group(GroupRow(
            tenant=tenant, tenant_name=name, cabinet=r[0], name=f"circuit of cabinet {r[0]}",
            bbox=bbox, members=tuple(zip(r[7], r[8], strict=True)),
            levels=tuple(_level(v) for v in r[9])))


async def models(conn: psycopg.AsyncConnection[Any], tenant: str,
                 name: str) -> AsyncIterator[dict[str, Any]]:
    """The StreetlightModel entities of the luminaire models the tenant's streetlights name."""
    async for r in _rows(conn, _MODELS, tenant, "open_data_models"):
        yield streetlight_model(tenant, r[0], r[1])



# The tenant GeoJSON (GET /luminaires.geojson) as PostgreSQL built it, in one row.
TENANT_GEOJSON = """
SELECT json_build_object('type', 'FeatureCollection', 'features', coalesce(json_agg(
    json_build_object('type', 'Feature', 'id', l.id,
        'geometry', CASE WHEN l.lat IS NULL OR l.lon IS NULL THEN NULL ELSE
            json_build_object('type', 'Point', 'coordinates', json_build_array(l.lon, l.lat)) END,
        'properties', json_build_object('controller_id', l.controller_id, 'idx', l.idx,
            'model', l.model, 'rated_power_w', l.rated_power_w, 'road_class', l.road_class,
            'level', s.level, 'power_w', s.power_w, 'failure', s.failure, 'time', s.time,
            'online', c.online))
    ORDER BY l.id), '[]'::json))::text
FROM luminaires l JOIN controllers c ON c.id = l.controller_id
LEFT JOIN luminaire_state s ON s.controller_key = c.key AND s.luminaire = l.idx
WHERE l.tenant_id = %s
"""

_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _feature(entity: dict[str, Any]) -> dict[str, Any]:
    properties = {k: v for k, v in entity.items() if k not in ("id", "location")}
    return {"type": "Feature", "id": entity["id"], "geometry": entity["location"],
            "properties": properties}


async def geojson(conn: psycopg.AsyncConnection[Any], tenant: str, name: str) -> str:
    features = [_feature(e) async for e in streetlights(conn, tenant, name)]
    features += [_feature(e) async for e in cabinets(conn, tenant, name)]
    return _ENCODER.encode({"type": "FeatureCollection", "features": features})


async def entities(conn: psycopg.AsyncConnection[Any], tenant: str, name: str,
                   key_values: bool) -> str:
    out: list[dict[str, Any]] = []
    for produce in (streetlights, cabinets, groups, models):
        async for e in produce(conn, tenant, name):
            out.append(e if key_values else normalized(e))
    return _ENCODER.encode(out)
