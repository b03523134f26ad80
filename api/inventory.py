"""The installed base of a tenant: controllers, luminaires, cabinets, supply points, groups.
Every statement binds the scope's tenant; an id of another tenant is simply not found."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from psycopg.errors import ForeignKeyViolation, UniqueViolation
from psycopg.rows import dict_row

from api import audit
from api.credentials import new_claim_code
from api.deps import Conn, TenantScope
from api.geojson import FEATURE_COLLECTION_HEAD, FEATURE_COLLECTION_TAIL
from api.problems import Problem, not_found

CONTROLLER_COLUMNS = ("id, cabinet_id, pole_id, lat, lon, firmware, status, online, last_seen,"
                      " created_at")
LUMINAIRE_COLUMNS = ("id, controller_id, idx, model, gtin, serial, rated_power_w, lat, lon,"
                     " road_class, installed_at")


async def _rows(conn: Conn, sql: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(sql, params)
        return await cur.fetchall()


async def _one(conn: Conn, sql: str, params: tuple[Any, ...], what: str) -> dict[str, Any]:
    rows = await _rows(conn, sql, params)
    if not rows:
        raise not_found(what)
    return rows[0]


# ----------------------------------------------------------------- controllers

async def list_controllers(conn: Conn, scope: TenantScope, after: str | None, limit: int,
                           cabinet: str | None, status: str | None) -> list[dict[str, Any]]:
    return await _rows(conn, f"SELECT {CONTROLLER_COLUMNS} FROM controllers WHERE tenant_id = %s"
                       " AND (%s::text IS NULL OR id > %s) AND (%s::text IS NULL OR cabinet_id = %s)"
                       " AND (%s::text IS NULL OR status = %s) ORDER BY id LIMIT %s",
                       (scope.tenant, after, after, cabinet, cabinet, status, status, limit))


async def get_controller(conn: Conn, scope: TenantScope, controller_id: str) -> dict[str, Any]:
    return await _one(conn, f"SELECT {CONTROLLER_COLUMNS} FROM controllers WHERE tenant_id = %s"
                      " AND id = %s", (scope.tenant, controller_id), "controller")


async def _check_cabinet(conn: Conn, scope: TenantScope, cabinet_id: str | None) -> None:
    if cabinet_id is None:
        return
    found = await (await conn.execute("SELECT 1 FROM cabinets WHERE tenant_id = %s AND id = %s",
                                      (scope.tenant, cabinet_id))).fetchone()
    if found is None:
        raise not_found("cabinet")


async def create_controller(conn: Conn, scope: TenantScope, values: dict[str, Any]) -> dict[str, Any]:
    """Register a controller, unprovisioned, with a claim code shown once."""
    await _check_cabinet(conn, scope, values.get("cabinet_id"))
    code, code_hash = new_claim_code()
    try:
        row = await _one(conn, "INSERT INTO controllers (id, tenant_id, cabinet_id, pole_id, lat, lon,"
                         " claim_code_hash) VALUES (%s, %s, %s, %s, %s, %s, %s)"
                         f" RETURNING {CONTROLLER_COLUMNS}",
                         (values["id"], scope.tenant, values.get("cabinet_id"), values.get("pole_id"),
                          values.get("lat"), values.get("lon"), code_hash), "controller")
    except UniqueViolation:
        raise Problem(409, "this controller id is taken") from None
    await audit.record(conn, scope, "controller.create", values["id"])
    return {**row, "claim_code": code}


async def update_controller(conn: Conn, scope: TenantScope, controller_id: str,
                            values: dict[str, Any]) -> dict[str, Any]:
    if "cabinet_id" in values:
        await _check_cabinet(conn, scope, values["cabinet_id"])
    current = await get_controller(conn, scope, controller_id)
    merged = {k: values.get(k, current[k]) for k in ("cabinet_id", "pole_id", "lat", "lon")}
    row = await _one(conn, "UPDATE controllers SET cabinet_id = %s, pole_id = %s, lat = %s, lon = %s"
                     f" WHERE tenant_id = %s AND id = %s RETURNING {CONTROLLER_COLUMNS}",
                     (merged["cabinet_id"], merged["pole_id"], merged["lat"], merged["lon"],
                      scope.tenant, controller_id), "controller")
    await audit.record(conn, scope, "controller.update", controller_id,
                       {k: v for k, v in values.items() if k in merged})
    return row


async def delete_controller(conn: Conn, scope: TenantScope, controller_id: str) -> None:
    """Retire: the controller's history stays (telemetry, commands, faults)."""
    row = await (await conn.execute(
        "UPDATE controllers SET status = 'retired', claim_code_hash = NULL WHERE tenant_id = %s"
        " AND id = %s RETURNING id", (scope.tenant, controller_id))).fetchone()
    if row is None:
        raise not_found("controller")
    await audit.record(conn, scope, "controller.retire", controller_id)


async def new_claim(conn: Conn, scope: TenantScope, controller_id: str) -> str:
    """A new claim code for a controller not provisioned yet (the old one stops working)."""
    code, code_hash = new_claim_code()
    row = await (await conn.execute(
        "UPDATE controllers SET claim_code_hash = %s WHERE tenant_id = %s AND id = %s"
        " AND status = 'unprovisioned' RETURNING id", (code_hash, scope.tenant, controller_id))
    ).fetchone()
    if row is None:
        await get_controller(conn, scope, controller_id)  # 404 when not ours
        raise Problem(409, "this controller is provisioned; retire it first to claim it again")
    await audit.record(conn, scope, "controller.claim_code", controller_id)
    return code


async def checklist(conn: Conn, scope: TenantScope, controller_id: str) -> dict[str, Any]:
    """The technician's checks as the centre sees them: first telemetry passes only when ingest
    stored a reading of this controller."""
    row = await _one(conn, "SELECT key, status, online, last_seen FROM controllers"
                     " WHERE tenant_id = %s AND id = %s", (scope.tenant, controller_id), "controller")
    first = await (await conn.execute(
        "SELECT min(time) FROM (SELECT time FROM luminaire_telemetry WHERE controller_key = %s"
        " ORDER BY time LIMIT 1) t", (row["key"],))).fetchone()
    first_at = first[0] if first is not None else None
    return {"controller_id": controller_id,
            "checks": [
                {"name": "registered", "ok": row["status"] == "active",
                 "detail": row["status"]},
                {"name": "online", "ok": bool(row["online"]),
                 "detail": f"last seen {row['last_seen']:%Y-%m-%dT%H:%M:%SZ}" if row["last_seen"]
                 else "never seen"},
                {"name": "first telemetry", "ok": first_at is not None,
                 "detail": f"first reading stored at {first_at:%Y-%m-%dT%H:%M:%SZ}" if first_at
                 else "no reading stored yet"},
            ]}


# ----------------------------------------------------------------- luminaires

async def list_luminaires(conn: Conn, scope: TenantScope, after: int | None, limit: int,
                          controller: str | None, road_class: str | None) -> list[dict[str, Any]]:
    return await _rows(conn, f"SELECT {LUMINAIRE_COLUMNS} FROM luminaires WHERE tenant_id = %s"
                       " AND (%s::bigint IS NULL OR id > %s)"
                       " AND (%s::text IS NULL OR controller_id = %s)"
                       " AND (%s::text IS NULL OR road_class = %s) ORDER BY id LIMIT %s",
                       (scope.tenant, after, after, controller, controller, road_class, road_class,
                        limit))


async def get_luminaire(conn: Conn, scope: TenantScope, luminaire_id: int) -> dict[str, Any]:
    return await _one(conn, f"SELECT {LUMINAIRE_COLUMNS} FROM luminaires WHERE tenant_id = %s"
                      " AND id = %s", (scope.tenant, luminaire_id), "luminaire")


async def create_luminaire(conn: Conn, scope: TenantScope, values: dict[str, Any]) -> dict[str, Any]:
    owner = await (await conn.execute("SELECT 1 FROM controllers WHERE tenant_id = %s AND id = %s",
                                      (scope.tenant, values["controller_id"]))).fetchone()
    if owner is None:
        raise not_found("controller")
    columns = [c for c in ("controller_id", "idx", "model", "gtin", "serial", "rated_power_w", "lat",
                           "lon", "road_class", "installed_at") if c in values]
    try:
        row = await _one(conn, f"INSERT INTO luminaires (tenant_id, {', '.join(columns)}) VALUES"
                         f" (%s, {', '.join(['%s'] * len(columns))}) RETURNING {LUMINAIRE_COLUMNS}",
                         (scope.tenant, *(values[c] for c in columns)), "luminaire")
    except UniqueViolation:
        raise Problem(409, "this controller already has a luminaire at that index") from None
    await audit.record(conn, scope, "luminaire.create", str(row["id"]))
    return row


async def update_luminaire(conn: Conn, scope: TenantScope, luminaire_id: int,
                           values: dict[str, Any]) -> dict[str, Any]:
    columns = [c for c in ("model", "gtin", "serial", "rated_power_w", "lat", "lon", "road_class",
                           "installed_at") if c in values]
    if not columns:
        return await get_luminaire(conn, scope, luminaire_id)
    sets = ", ".join(f"{c} = %s" for c in columns)
    row = await _one(conn, f"UPDATE luminaires SET {sets} WHERE tenant_id = %s AND id = %s"
                     f" RETURNING {LUMINAIRE_COLUMNS}",
                     (*(values[c] for c in columns), scope.tenant, luminaire_id), "luminaire")
    await audit.record(conn, scope, "luminaire.update", str(luminaire_id),
                       {c: str(values[c]) for c in columns})
    return row


async def delete_luminaire(conn: Conn, scope: TenantScope, luminaire_id: int) -> None:
    row = await (await conn.execute("DELETE FROM luminaires WHERE tenant_id = %s AND id = %s"
                                    " RETURNING id", (scope.tenant, luminaire_id))).fetchone()
    if row is None:
        raise not_found("luminaire")
    await audit.record(conn, scope, "luminaire.delete", str(luminaire_id))


# Every luminaire of the tenant (or of one controller) with its latest reading, in id order, each
# row a ready GeoJSON Feature that PostgreSQL wrote (row_to_json: compact, as UTF-8 bytes read
# in binary: no decoding), read through a server-side cursor and joined by commas a fetch at a time,
# so the worker builds no object and encodes nothing. Numbers and times are as PostgreSQL's JSON
# writes them (NaN and infinities of a real column as the strings "NaN", "Infinity").
GEOJSON_FEATURES = """
SELECT convert_to(row_to_json(f)::text, 'UTF8')
FROM (
    SELECT 'Feature' AS type, l.id,
           CASE WHEN l.lat IS NULL OR l.lon IS NULL THEN NULL ELSE row_to_json(g) END AS geometry,
           p AS properties
    FROM luminaires l JOIN controllers c ON c.id = l.controller_id
    LEFT JOIN luminaire_state s ON s.controller_key = c.key AND s.luminaire = l.idx
    CROSS JOIN LATERAL (SELECT 'Point' AS type, ARRAY[l.lon, l.lat] AS coordinates) g
    CROSS JOIN LATERAL (SELECT l.controller_id, l.idx, l.model, l.rated_power_w, l.road_class,
                               s.level, s.power_w, s.failure, s.time, c.online) p
    WHERE l.tenant_id = %(tenant)s
      AND (%(controller)s::text IS NULL OR l.controller_id = %(controller)s)
    ORDER BY l.id
) f
"""
GEOJSON_FETCH_ROWS = 2000


MAP_COLUMNS = """
SELECT json_build_object(
    'id', coalesce(json_agg(id), '[]'), 'lon', coalesce(json_agg(lon), '[]'),
    'lat', coalesce(json_agg(lat), '[]'), 'controller_id', coalesce(json_agg(controller_id), '[]'),
    'idx', coalesce(json_agg(idx), '[]'), 'level', coalesce(json_agg(level), '[]'),
    'online', coalesce(json_agg(online), '[]'),
    'changed_since', statement_timestamp() - interval '5 seconds')::text
FROM (SELECT l.id, l.lon, l.lat, l.controller_id, l.idx, s.level, c.online
      FROM luminaires l JOIN controllers c ON c.id = l.controller_id
      LEFT JOIN luminaire_state s ON s.controller_key = c.key AND s.luminaire = l.idx
      WHERE l.tenant_id = %s AND l.lat IS NOT NULL AND l.lon IS NOT NULL
      ORDER BY l.id) t
"""


async def map_columns(conn: Conn, scope: TenantScope) -> str:
    """The tenant's located luminaires for the map as columns (one array per field, in id order):
    a seventh of the GeoJSON's size and parsed in one go by the page; `changed_since` starts the
    page's sweeps of GET /live?changed_since=."""
    row = await (await conn.execute(MAP_COLUMNS, (scope.tenant,))).fetchone()
    assert row is not None
    return str(row[0])


async def luminaires_geojson(conn: Conn, scope: TenantScope,
                             controller: str | None) -> AsyncIterator[bytes]:
    """The tenant's luminaires as a GeoJSON FeatureCollection, streamed a fetch at a time: memory
    does not grow with the tenant."""
    yield FEATURE_COLLECTION_HEAD.encode()
    separator = b""
    async with conn.transaction(), conn.cursor(name="luminaires_geojson", binary=True) as cur:
        await cur.execute(GEOJSON_FEATURES, {"tenant": scope.tenant, "controller": controller})
        while rows := await cur.fetchmany(GEOJSON_FETCH_ROWS):
            yield separator + b",".join([row[0] for row in rows])
            separator = b","
    yield FEATURE_COLLECTION_TAIL.encode()


# ----------------------------------------------------------------- cabinets, supply points

async def list_cabinets(conn: Conn, scope: TenantScope) -> list[dict[str, Any]]:
    return await _rows(conn, "SELECT id, supply_point_ean, name, lat, lon, switched_supply"
                       " FROM cabinets WHERE tenant_id = %s ORDER BY id", (scope.tenant,))


async def get_cabinet(conn: Conn, scope: TenantScope, cabinet_id: str) -> dict[str, Any]:
    return await _one(conn, "SELECT id, supply_point_ean, name, lat, lon, switched_supply"
                      " FROM cabinets WHERE tenant_id = %s AND id = %s", (scope.tenant, cabinet_id),
                      "cabinet")


async def create_cabinet(conn: Conn, scope: TenantScope, values: dict[str, Any]) -> dict[str, Any]:
    ean = values.get("supply_point_ean")
    if ean is not None:
        found = await (await conn.execute("SELECT 1 FROM supply_points WHERE tenant_id = %s AND"
                                          " ean = %s", (scope.tenant, ean))).fetchone()
        if found is None:
            raise not_found("supply point")
    try:
        row = await _one(conn, "INSERT INTO cabinets (id, tenant_id, supply_point_ean, name, lat, lon,"
                         " switched_supply) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id,"
                         " supply_point_ean, name, lat, lon, switched_supply",
                         (values["id"], scope.tenant, ean, values.get("name", ""), values.get("lat"),
                          values.get("lon"), values.get("switched_supply", False)), "cabinet")
    except UniqueViolation:
        raise Problem(409, "this cabinet id is taken") from None
    await audit.record(conn, scope, "cabinet.create", values["id"])
    return row


async def delete_cabinet(conn: Conn, scope: TenantScope, cabinet_id: str) -> None:
    try:
        row = await (await conn.execute("DELETE FROM cabinets WHERE tenant_id = %s AND id = %s"
                                        " RETURNING id", (scope.tenant, cabinet_id))).fetchone()
    except ForeignKeyViolation:
        raise Problem(409, "controllers are still fed from this cabinet") from None
    if row is None:
        raise not_found("cabinet")
    await audit.record(conn, scope, "cabinet.delete", cabinet_id)


async def list_supply_points(conn: Conn, scope: TenantScope) -> list[dict[str, Any]]:
    return await _rows(conn, "SELECT ean, name, contracted_kw FROM supply_points WHERE tenant_id = %s"
                       " ORDER BY ean", (scope.tenant,))


async def create_supply_point(conn: Conn, scope: TenantScope, values: dict[str, Any]) -> dict[str, Any]:
    try:
        row = await _one(conn, "INSERT INTO supply_points (ean, tenant_id, name, contracted_kw) VALUES"
                         " (%s, %s, %s, %s) RETURNING ean, name, contracted_kw",
                         (values["ean"], scope.tenant, values["name"], values.get("contracted_kw")),
                         "supply point")
    except UniqueViolation:
        raise Problem(409, "this EAN is registered") from None
    await audit.record(conn, scope, "supply_point.create", values["ean"])
    return row


# ----------------------------------------------------------------- groups

async def list_groups(conn: Conn, scope: TenantScope) -> list[dict[str, Any]]:
    return await _rows(conn, "SELECT g.id, g.name, count(m.luminaire_id)::int AS members,"
                       " gs.schedule_id FROM groups g LEFT JOIN group_members m ON m.group_id = g.id"
                       " LEFT JOIN group_schedules gs ON gs.group_id = g.id WHERE g.tenant_id = %s"
                       " GROUP BY g.id, gs.schedule_id ORDER BY g.id", (scope.tenant,))


async def get_group(conn: Conn, scope: TenantScope, group_id: int) -> dict[str, Any]:
    group = await _one(conn, "SELECT g.id, g.name, gs.schedule_id FROM groups g LEFT JOIN"
                       " group_schedules gs ON gs.group_id = g.id WHERE g.tenant_id = %s AND g.id = %s",
                       (scope.tenant, group_id), "group")
    members = await (await conn.execute("SELECT luminaire_id FROM group_members WHERE group_id = %s"
                                        " ORDER BY luminaire_id", (group_id,))).fetchall()
    return {**group, "luminaire_ids": [m[0] for m in members]}


async def create_group(conn: Conn, scope: TenantScope, name: str) -> dict[str, Any]:
    try:
        row = await _one(conn, "INSERT INTO groups (tenant_id, name) VALUES (%s, %s) RETURNING id, name",
                         (scope.tenant, name), "group")
    except UniqueViolation:
        raise Problem(409, "a group of that name exists") from None
    await audit.record(conn, scope, "group.create", name)
    return {**row, "schedule_id": None, "luminaire_ids": []}


async def delete_group(conn: Conn, scope: TenantScope, group_id: int) -> None:
    row = await (await conn.execute("DELETE FROM groups WHERE tenant_id = %s AND id = %s RETURNING name",
                                    (scope.tenant, group_id))).fetchone()
    if row is None:
        raise not_found("group")
    await audit.record(conn, scope, "group.delete", row[0])


async def set_members(conn: Conn, scope: TenantScope, group_id: int,
                      luminaire_ids: list[int]) -> dict[str, Any]:
    await get_group(conn, scope, group_id)
    wanted = sorted(set(luminaire_ids))
    ours = await (await conn.execute("SELECT id FROM luminaires WHERE tenant_id = %s AND id = ANY(%s)",
                                     (scope.tenant, wanted))).fetchall()
    missing = sorted(set(wanted) - {r[0] for r in ours})
    if missing:
        raise Problem(404, f"no luminaire of yours has id {missing[:10]}", missing=missing[:100])
    await conn.execute("DELETE FROM group_members WHERE group_id = %s", (group_id,))
    await conn.execute("INSERT INTO group_members (group_id, luminaire_id) SELECT %s, unnest(%s::bigint[])",
                       (group_id, wanted))
    await audit.record(conn, scope, "group.members", str(group_id), {"count": len(wanted)})
    return await get_group(conn, scope, group_id)


# ----------------------------------------------------------------- bulk import

IMPORT_LUMINAIRES = """
INSERT INTO luminaires (tenant_id, controller_id, idx, model, gtin, serial, rated_power_w, lat, lon,
                        road_class, installed_at)
SELECT %s, * FROM unnest(%s::text[], %s::int2[], %s::text[], %s::text[], %s::text[], %s::real[],
                         %s::float8[], %s::float8[], %s::text[], %s::timestamptz[])
ON CONFLICT (controller_id, idx) DO UPDATE SET model = excluded.model, gtin = excluded.gtin,
    serial = excluded.serial, rated_power_w = excluded.rated_power_w, lat = excluded.lat,
    lon = excluded.lon, road_class = excluded.road_class, installed_at = excluded.installed_at
"""


async def import_luminaires(conn: Conn, scope: TenantScope, parsed: Any, atomic: bool) -> dict[str, Any]:
    """Write the good rows of a parsed inventory (api.inventory_import.Parsed); a row naming a
    controller or cabinet that is not the tenant's is refused. Atomic: nothing on any error."""
    from api.inventory_import import RowError

    rows = parsed.rows
    errors: list[RowError] = list(parsed.errors)
    controllers = sorted({r.controller_id for _, r in rows})
    cabinets = sorted({r.cabinet_id for _, r in rows if r.cabinet_id is not None})
    owners = dict(await (await conn.execute(
        "SELECT id, tenant_id FROM controllers WHERE id = ANY(%s)", (controllers,))).fetchall())
    ours_cab = {r[0] for r in await (await conn.execute(
        "SELECT id FROM cabinets WHERE tenant_id = %s AND id = ANY(%s)", (scope.tenant, cabinets))
    ).fetchall()}
    good = []
    for line, row in rows:
        owner = owners.get(row.controller_id)
        if owner is not None and owner != scope.tenant:
            errors.append(RowError(line, f"controller id {row.controller_id!r} is taken"))
        elif row.cabinet_id is not None and row.cabinet_id not in ours_cab:
            errors.append(RowError(line, f"no cabinet of yours is named {row.cabinet_id!r}"))
        else:
            good.append(row)
    errors.sort(key=lambda e: e.line)
    report = [{"line": e.line, "reason": e.reason} for e in errors]
    if atomic and errors:
        raise Problem(422, f"{len(errors)} bad rows; nothing imported (atomic)", errors=report)
    new_controllers: dict[str, Any] = {}
    for row in good:
        if row.controller_id not in owners and row.controller_id not in new_controllers:
            new_controllers[row.controller_id] = row
    if new_controllers:
        await conn.execute(
            "INSERT INTO controllers (id, tenant_id, cabinet_id, lat, lon) SELECT i, %s, c, la, lo"
            " FROM unnest(%s::text[], %s::text[], %s::float8[], %s::float8[]) AS u(i, c, la, lo)",
            (scope.tenant, list(new_controllers), [r.cabinet_id for r in new_controllers.values()],
             [r.lat for r in new_controllers.values()], [r.lon for r in new_controllers.values()]))
    if good:
        await conn.execute(IMPORT_LUMINAIRES, (
            scope.tenant, [r.controller_id for r in good], [r.idx for r in good],
            [r.model for r in good], [r.gtin for r in good], [r.serial for r in good],
            [r.rated_power_w for r in good], [r.lat for r in good], [r.lon for r in good],
            [r.road_class for r in good], [r.installed_at for r in good]))
    await audit.record(conn, scope, "luminaire.import", "", {
        "imported": len(good), "controllers_created": len(new_controllers), "errors": len(errors)})
    return {"imported": len(good), "controllers_created": len(new_controllers),
            "errors": report}
