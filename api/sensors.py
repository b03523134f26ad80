"""A tenant's urban sensors (the sensor boxes of multifunction poles, sensor index 32..63 on their
controller) with their position and each quantity's latest reading, for the dashboard's map.

Sensors have no inventory of their own: a sensor is a (controller, sensor index) that reported in
the window, placed at its controller's position. The query walks the readings' index
(controller_key, sensor, quantity, time DESC) as a skip scan: per controller of the tenant, the
next (sensor, quantity) after the previous one, then that series' newest reading, so it reads a
few index entries per series, not the window's readings."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from psycopg.rows import dict_row

from api.deps import Conn, TenantScope
from wire.records import Quantity
from wire.sensor_channels import URBAN_SENSOR_BASE

URBAN_SENSOR_LAST = 63
"""The last sensor index of the urban sensor range (wire.sensor_channels: boxes are 32..63)."""

LATEST = """
WITH RECURSIVE series AS (
    SELECT c.key, f.sensor, f.quantity
    FROM controllers c
    CROSS JOIN LATERAL (
        SELECT r.sensor, r.quantity FROM sensor_readings r
        WHERE r.controller_key = c.key AND r.sensor BETWEEN %(first)s AND %(last)s
          AND r.time > %(since)s
        ORDER BY r.sensor, r.quantity LIMIT 1) f
    WHERE c.tenant_id = %(tenant)s AND c.status <> 'retired'
  UNION ALL
    SELECT s.key, n.sensor, n.quantity
    FROM series s
    CROSS JOIN LATERAL (
        SELECT r.sensor, r.quantity FROM sensor_readings r
        WHERE r.controller_key = s.key AND r.sensor BETWEEN %(first)s AND %(last)s
          AND r.time > %(since)s AND (r.sensor, r.quantity) > (s.sensor, s.quantity)
        ORDER BY r.sensor, r.quantity LIMIT 1) n
)
SELECT c.id AS controller_id, c.lon, c.lat, s.sensor, s.quantity, l.time, l.value::float8 AS value
FROM series s
JOIN controllers c ON c.key = s.key
CROSS JOIN LATERAL (
    SELECT r.time, r.value FROM sensor_readings r
    WHERE r.controller_key = s.key AND r.sensor = s.sensor AND r.quantity = s.quantity
      AND r.time > %(since)s
    ORDER BY r.time DESC LIMIT 1) l
ORDER BY c.id, s.sensor, s.quantity
"""


QUANTITIES: dict[int, Quantity] = {int(q): q for q in Quantity}


def _quantity(code: int) -> dict[str, Any]:
    known = QUANTITIES.get(code)
    if known is None:
        return {"quantity": code, "name": None, "unit": None}
    return {"quantity": code, "name": known.name.lower(), "unit": known.unit}


def group_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One item per (controller, sensor), its readings in quantity order (rows come sorted)."""
    items: list[dict[str, Any]] = []
    for row in rows:
        key = (row["controller_id"], row["sensor"])
        if not items or (items[-1]["controller_id"], items[-1]["sensor"]) != key:
            items.append({"controller_id": row["controller_id"], "sensor": row["sensor"],
                          "lon": row["lon"], "lat": row["lat"], "latest": None, "readings": []})
        item = items[-1]
        item["readings"].append({**_quantity(row["quantity"]), "value": row["value"],
                                 "time": row["time"]})
        item["latest"] = row["time"] if item["latest"] is None else max(item["latest"], row["time"])
    return items


async def urban_sensors(conn: Conn, scope: TenantScope, now: datetime,
                        window: timedelta) -> list[dict[str, Any]]:
    """The tenant's urban sensors that reported within `window` before `now`, each with the
    newest reading of every quantity it reported in that window."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(LATEST, {"tenant": scope.tenant, "since": now - window,
                                   "first": URBAN_SENSOR_BASE, "last": URBAN_SENSOR_LAST})
        return group_rows(await cur.fetchall())
