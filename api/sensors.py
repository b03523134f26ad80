"""A tenant's urban sensors (the sensor boxes of multifunction poles, sensor index 32..63 on their
controller) with their position and each quantity's latest reading, for the dashboard's map.

A sensor is a (controller, sensor index) with series in the sensor inventory (`sensor_state`,
kept by ingest: ingest/sensor_state.py) whose newest reading is within the window, placed at its
controller's position: one row per series read, none of the readings."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from psycopg.rows import dict_row

from api.deps import Conn, TenantScope
from wire.records import Quantity
from wire.sensor_channels import URBAN_SENSOR_BASE, URBAN_SENSOR_LAST

LATEST = """
SELECT c.id AS controller_id, c.lon, c.lat, s.sensor, s.quantity, s.time, s.value::float8 AS value
FROM controllers c
JOIN sensor_state s ON s.controller_key = c.key
WHERE c.tenant_id = %(tenant)s AND c.status <> 'retired'
  AND s.sensor BETWEEN %(first)s AND %(last)s AND s.time > %(since)s
ORDER BY c.id, s.sensor, s.quantity
"""
"""A series' newest reading is the newest of the window exactly when it lies in the window."""


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
