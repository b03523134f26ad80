"""Energy from the 15-minute rollups ingest keeps: per luminaire, group, municipality and supply
point, with savings against full rated power over the same lit intervals; the grid operator's
view of every supply point and its settlement day."""

from __future__ import annotations

from datetime import date
from typing import Any

from psycopg.rows import dict_row

from api.deps import Conn, GridScope, TenantScope
from api.problems import not_found
from api.settlement import day_bounds, settlement_rows
from api.timeseries import TimeRange

LUMINAIRE_ENERGY = """
SELECT time_bucket(%(bucket)s::interval, e.bucket, %(tz)s) AS start, sum(e.energy_wh)::float8 AS energy_wh,
       sum(CASE WHEN e.energy_wh > 0 THEN l.rated_power_w * 0.25 ELSE 0 END)::float8 AS full_power_wh,
       bool_or(e.estimated) AS estimated
FROM energy_15min e
JOIN controllers c ON c.key = e.controller_key
JOIN luminaires l ON l.controller_id = c.id AND l.idx = e.luminaire
WHERE c.tenant_id = %(tenant)s AND e.bucket >= %(start)s AND e.bucket < %(end)s AND {which}
GROUP BY start ORDER BY start
"""

SUPPLY_ENERGY = """
SELECT time_bucket(%(bucket)s::interval, s.bucket, %(tz)s) AS start, sum(s.energy_wh)::float8 AS energy_wh,
       bool_or(s.estimated) AS estimated
FROM energy_15min_supply s JOIN supply_points p ON p.ean = s.ean
WHERE {which} AND s.bucket >= %(start)s AND s.bucket < %(end)s
GROUP BY start ORDER BY start
"""


async def _rows(conn: Conn, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(sql, params)
        return await cur.fetchall()


async def _timezone(conn: Conn, tenant: str) -> str:
    row = await (await conn.execute("SELECT timezone FROM tenants WHERE id = %s", (tenant,))).fetchone()
    return str(row[0]) if row is not None else "UTC"


def _report(rows: list[dict[str, Any]], span: TimeRange, with_savings: bool) -> dict[str, Any]:
    total = sum(r["energy_wh"] for r in rows)
    report: dict[str, Any] = {"from": span.start, "to": span.end, "interval_s":
                              int(span.bucket.total_seconds()), "energy_wh": total, "intervals": rows}
    if with_savings:
        full = sum(r["full_power_wh"] or 0.0 for r in rows)
        report["full_power_wh"] = full
        report["savings_wh"] = full - total
        report["savings_ratio"] = (full - total) / full if full > 0 else None
    return report


async def for_luminaire(conn: Conn, scope: TenantScope, luminaire_id: int, span: TimeRange) -> dict[str, Any]:
    found = await (await conn.execute("SELECT 1 FROM luminaires WHERE tenant_id = %s AND id = %s",
                                      (scope.tenant, luminaire_id))).fetchone()
    if found is None:
        raise not_found("luminaire")
    rows = await _rows(conn, LUMINAIRE_ENERGY.format(which="l.id = %(id)s"), {
        "bucket": span.bucket, "tz": await _timezone(conn, scope.tenant), "tenant": scope.tenant,
        "start": span.start, "end": span.end, "id": luminaire_id})
    return _report(rows, span, True)


async def for_group(conn: Conn, scope: TenantScope, group_id: int, span: TimeRange) -> dict[str, Any]:
    found = await (await conn.execute("SELECT 1 FROM groups WHERE tenant_id = %s AND id = %s",
                                      (scope.tenant, group_id))).fetchone()
    if found is None:
        raise not_found("group")
    rows = await _rows(conn, LUMINAIRE_ENERGY.format(
        which="l.id IN (SELECT luminaire_id FROM group_members WHERE group_id = %(id)s)"), {
        "bucket": span.bucket, "tz": await _timezone(conn, scope.tenant), "tenant": scope.tenant,
        "start": span.start, "end": span.end, "id": group_id})
    return _report(rows, span, True)


async def for_municipality(conn: Conn, scope: TenantScope, span: TimeRange) -> dict[str, Any]:
    """The tenant's supply points together (the metered total; savings are per luminaire and group)."""
    rows = await _rows(conn, SUPPLY_ENERGY.format(which="p.tenant_id = %(tenant)s"), {
        "bucket": span.bucket, "tz": await _timezone(conn, scope.tenant), "tenant": scope.tenant,
        "start": span.start, "end": span.end})
    return _report(rows, span, False)


async def for_supply_point(conn: Conn, scope: TenantScope, ean: str, span: TimeRange) -> dict[str, Any]:
    found = await (await conn.execute("SELECT 1 FROM supply_points WHERE tenant_id = %s AND ean = %s",
                                      (scope.tenant, ean))).fetchone()
    if found is None:
        raise not_found("supply point")
    rows = await _rows(conn, SUPPLY_ENERGY.format(which="p.ean = %(ean)s"), {
        "bucket": span.bucket, "tz": await _timezone(conn, scope.tenant), "ean": ean,
        "start": span.start, "end": span.end})
    return {"ean": ean, **_report(rows, span, False)}


# ----------------------------------------------------------------- the grid operator

async def grid_supply_points(conn: Conn, grid: GridScope, after: str | None,
                             limit: int) -> list[dict[str, Any]]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT p.ean, p.tenant_id AS tenant, p.name, p.contracted_kw FROM"
                          " supply_points p WHERE (%s::text IS NULL OR p.ean > %s) ORDER BY p.ean"
                          " LIMIT %s", (after, after, limit))
        return await cur.fetchall()


async def _supply_tz(conn: Conn, ean: str) -> str:
    row = await (await conn.execute("SELECT t.timezone FROM supply_points p JOIN tenants t ON"
                                    " t.id = p.tenant_id WHERE p.ean = %s", (ean,))).fetchone()
    if row is None:
        raise not_found("supply point")
    return str(row[0])


async def grid_energy(conn: Conn, grid: GridScope, ean: str, span: TimeRange) -> dict[str, Any]:
    tz = await _supply_tz(conn, ean)
    rows = await _rows(conn, SUPPLY_ENERGY.format(which="p.ean = %(ean)s"), {
        "bucket": span.bucket, "tz": tz, "ean": ean, "start": span.start, "end": span.end})
    return {"ean": ean, **_report(rows, span, False)}


async def settlement(conn: Conn, grid: GridScope, ean: str, day: date) -> dict[str, Any]:
    """One local day of one supply point in 15-minute intervals (92, 96 or 100), each measured,
    estimated or missing: the body of the daily settlement file."""
    tz = await _supply_tz(conn, ean)
    start, end = day_bounds(day, tz)
    rows = await (await conn.execute(
        "SELECT bucket, energy_wh, estimated FROM energy_15min_supply WHERE ean = %s AND bucket >= %s"
        " AND bucket < %s", (ean, start, end))).fetchall()
    intervals = settlement_rows(day, tz, {r[0]: (float(r[1]), bool(r[2])) for r in rows})
    measured = sum(1 for i in intervals if i["quality"] == "measured")
    return {"ean": ean, "day": day, "timezone": tz, "version": 1, "intervals": intervals,
            "energy_wh": sum(float(str(i["energy_wh"])) for i in intervals if i["energy_wh"] is not None),
            "complete": measured == len(intervals)}
