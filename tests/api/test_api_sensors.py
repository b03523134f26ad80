"""GET /api/v1/map/sensors: a tenant's urban sensors at their controller's position with the newest
reading of each quantity; meters (sensor indexes below 32), old readings, other tenants' sensors
and retired controllers left out; hostile windows refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.roles import TENANT_ROLES, Role
from api.sensors import group_rows
from tests.api.api_world import World
from tests.sensor_rows import store_readings
from wire.records import Quantity

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def sensed(world: World, db_dsn: str) -> World:
    a, b = world.a, world.b
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute("UPDATE controllers SET lat = 50.85, lon = 4.35 WHERE id = %s", (a.controllers[1],))
    rows = []
    for minutes, noise in ((30, 50.0), (20, 61.5), (10, 55.25)):  # the newest is 10 minutes old
        at = NOW - timedelta(minutes=minutes)
        rows += [(a.controllers[1], 32, int(Quantity.NOISE_DBA), noise, at),
                 (a.controllers[1], 32, int(Quantity.NO2_UGM3), 20.0 + minutes, at),
                 (a.controllers[1], 0, int(Quantity.VOLTAGE_V), 231.0, at),  # a meter: not urban
                 (b.controllers[0], 32, int(Quantity.NOISE_DBA), 99.0, at)]  # tenant B's
    rows.append((a.controllers[1], 32, int(Quantity.PM25_UGM3), 7.5, NOW - timedelta(hours=5)))
    rows.append((a.controllers[0], 40, int(Quantity.TEMPERATURE_C), 3.0, NOW - timedelta(hours=30)))
    store_readings(db_dsn, rows)
    return world


def test_a_tenant_s_urban_sensors_with_their_latest_readings(client: TestClient, sensed: World,
                                                            db_dsn: str) -> None:
    a, b = sensed.a, sensed.b
    response = client.get("/api/v1/map/sensors", headers=sensed.headers(a, Role.VIEWER))
    assert response.status_code == 200, response.text
    body = response.json()
    assert [(s["controller_id"], s["sensor"]) for s in body["items"]] == [(a.controllers[1], 32)]
    sensor = body["items"][0]
    assert (sensor["lon"], sensor["lat"]) == (4.35, 50.85)
    readings = {r["name"]: (r["value"], r["unit"], r["quantity"]) for r in sensor["readings"]}
    assert readings == {"noise_dba": (55.25, "dB(A)", 1), "pm25_ugm3": (7.5, "µg/m³", 2),
                        "no2_ugm3": (30.0, "µg/m³", 3)}
    assert datetime.fromisoformat(sensor["latest"]) == NOW - timedelta(minutes=10)
    # a wider window finds the sensor silent for 30 hours; a narrower one drops the old quantity
    wide = client.get("/api/v1/map/sensors?hours=48", headers=sensed.headers(a, Role.VIEWER)).json()
    assert [(s["controller_id"], s["sensor"]) for s in wide["items"]] == [
        (a.controllers[0], 40), (a.controllers[1], 32)]
    narrow = client.get("/api/v1/map/sensors?hours=1", headers=sensed.headers(a, Role.VIEWER)).json()
    assert [r["name"] for r in narrow["items"][0]["readings"]] == ["noise_dba", "no2_ugm3"]

    # tenant B sees its own sensor only; every role of A reads; the grid operator and no one do not
    theirs = client.get("/api/v1/map/sensors", headers=sensed.headers(b, Role.OPERATOR)).json()
    assert [(s["controller_id"], s["readings"][0]["value"]) for s in theirs["items"]] == [
        (b.controllers[0], 99.0)]
    for role in sorted(TENANT_ROLES):
        assert client.get("/api/v1/map/sensors", headers=sensed.headers(a, role)).status_code == 200
    assert client.get("/api/v1/map/sensors",
                      headers=sensed.headers(None, Role.GRID_OPERATOR)).status_code == 403
    assert client.get("/api/v1/map/sensors").status_code == 401

    # hostile windows: a clear 422 each
    for hours in ("0", "-1", "169", "1e3", "abc", "", "24.5", "99999999999999999999", "%00"):
        refused = client.get(f"/api/v1/map/sensors?hours={hours}", headers=sensed.headers(a, Role.VIEWER))
        assert refused.status_code == 422, (hours, refused.text)
        assert refused.headers["content-type"] == "application/problem+json"
        assert "hours" in refused.json()["detail"]

    # a retired controller's sensor leaves the map
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute("UPDATE controllers SET status = 'retired' WHERE id = %s", (a.controllers[1],))
    assert client.get("/api/v1/map/sensors", headers=sensed.headers(a, Role.VIEWER)).json()["items"] == []


def test_rows_are_grouped_per_sensor_with_unknown_quantities_named_none() -> None:
    at = NOW
    rows = [{"controller_id": "c1", "lon": 1.0, "lat": 2.0, "sensor": 32, "quantity": 1, "time": at,
             "value": 3.0},
            {"controller_id": "c1", "lon": 1.0, "lat": 2.0, "sensor": 32, "quantity": 999,
             "time": at + timedelta(minutes=1), "value": 4.0},
            {"controller_id": "c1", "lon": 1.0, "lat": 2.0, "sensor": 33, "quantity": 4, "time": at,
             "value": 5.0}]
    items = group_rows(rows)
    assert [(i["sensor"], len(i["readings"]), i["latest"]) for i in items] == [
        (32, 2, at + timedelta(minutes=1)), (33, 1, at)]
    assert items[0]["readings"][1] == {"quantity": 999, "name": None, "unit": None, "value": 4.0,
                                       "time": at + timedelta(minutes=1)}
    assert items[1]["readings"][0]["name"] == "temperature_c"
