"""The open-data exports and the tenant GeoJSON, now streamed and encoded by orjson, against the
implementation they replaced (tests/api/opendata_reference.py): the same JSON documents once
parsed, entity for entity and in the same order, on a district with groups (a luminaire in
several), faults open on luminaires, controllers and cabinets, live states (unknown levels, gear
without diagnostics or metering, offline controllers, times with microseconds), non-finite
ratings and odd model names."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.roles import Role
from controller_fw_sim.fleet_inventory import TENANTS, build_inventory
from luciole.seed import seed_inventory
from tests.api import opendata_reference as reference
from tests.api.api_world import World
from tests.api.city import seed
from tests.api.conftest import PublicApi

pytestmark = pytest.mark.integration

TENANT = "anderlecht"  # the city's and the district's first municipality


def _vary(conn: psycopg.Connection[Any], tenant: str) -> None:
    """What a real installed base holds beside the plain rows."""
    conn.execute(
        "INSERT INTO luminaire_state (controller_key, luminaire, time, level, status, power_w,"
        " energy_wh, voltage_v, power_factor, driver_temp_c, failure)"
        " SELECT c.key, l.idx, now() - (l.id %% 900) * interval '1.000137 second',"
        " (ARRAY[0, 1, 120, 200, 254, 255])[1 + l.id %% 6], 0, 20 + (l.id %% 17) * 1.3, 1000,"
        " 229.5 + (l.id %% 7) * 0.33, 0.9 + (l.id %% 9) * 0.011, 41,"
        " (ARRAY[0, 512, 1024, 1536, 1])[1 + l.id %% 5]"
        " FROM luminaires l JOIN controllers c ON c.id = l.controller_id WHERE l.tenant_id = %s"
        " ON CONFLICT DO NOTHING", (tenant,))
    conn.execute("UPDATE controllers SET online = key %% 3 <> 0 WHERE tenant_id = %s", (tenant,))
    conn.execute("UPDATE luminaires SET installed_at = now() - id * interval '3.5 day'"
                 " WHERE tenant_id = %s AND id %% 4 = 0", (tenant,))
    conn.execute("UPDATE luminaires SET rated_power_w = 'NaN' WHERE id IN (SELECT min(id) FROM"
                 " luminaires WHERE tenant_id = %s AND model IS NOT NULL)", (tenant,))
    conn.execute("UPDATE luminaires SET model = 'Lanterne \"Tour\" · 2/3 ⚡' WHERE tenant_id = %s"
                 " AND id %% 13 = 0", (tenant,))
    conn.execute("UPDATE supply_points SET contracted_kw = 17.5 WHERE tenant_id = %s", (tenant,))
    for name, step in (("evens", 2), ("thirds", 3), ("sevenths", 7)):
        conn.execute("INSERT INTO groups (tenant_id, name) VALUES (%s, %s)", (tenant, name))
        conn.execute(
            "INSERT INTO group_members (group_id, luminaire_id) SELECT g.id, l.id FROM groups g"
            " JOIN luminaires l ON l.tenant_id = g.tenant_id AND l.id %% %s = 0"
            " WHERE g.tenant_id = %s AND g.name = %s", (step, tenant, name))
    conn.execute(
        "INSERT INTO faults (tenant_id, controller_id, luminaire_idx, kind, severity, raised_at)"
        " SELECT l.tenant_id, l.controller_id, l.idx, (ARRAY['lampFailure', 'supplyVoltageTooHigh',"
        " 'controlGearCommFailure', 'dimmingFailure'])[1 + l.id %% 4], 'warning', now()"
        " FROM luminaires l WHERE l.tenant_id = %s AND l.id %% 5 = 0"
        " ON CONFLICT DO NOTHING", (tenant,))
    conn.execute(
        "INSERT INTO faults (tenant_id, controller_id, kind, severity, raised_at)"
        " SELECT tenant_id, id, 'poleTilted', 'warning', now() FROM controllers"
        " WHERE tenant_id = %s AND key %% 11 = 0", (tenant,))
    conn.execute(
        "INSERT INTO faults (tenant_id, cabinet_id, kind, severity, raised_at)"
        " SELECT tenant_id, id, 'relayFailure', 'critical', now() FROM cabinets"
        " WHERE tenant_id = %s AND lat IS NOT NULL ORDER BY id LIMIT 2", (tenant,))


async def _reference(dsn: str, what: str) -> Any:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        if what == "geojson":
            text = await reference.geojson(conn, TENANT, "Anderlecht")
        else:
            text = await reference.entities(conn, TENANT, "Anderlecht", what == "keyValues")
    return json.loads(text)


def test_the_exports_are_the_documents_they_were(public_api: PublicApi) -> None:
    seed(public_api.owner_dsn)
    seed_inventory(public_api.owner_dsn, build_inventory(60, 4, seed=5, tenants=TENANTS[:1]))
    with psycopg.connect(public_api.owner_dsn, autocommit=True) as conn:
        _vary(conn, TENANT)
    base = f"/api/v1/opendata/{TENANT}"
    documents: dict[str, Any] = {}
    for what, path in (("geojson", f"{base}/streetlights.geojson"),
                       ("keyValues", f"{base}/ngsi-ld/entities?options=keyValues"),
                       ("normalized", f"{base}/ngsi-ld/entities")):
        with public_api.client.stream("GET", path) as response:
            assert response.status_code == 200
            chunks = list(response.iter_bytes())
        assert len(chunks) > 2  # streamed, not one body
        served = json.loads(b"".join(chunks))
        expected = asyncio.run(_reference(public_api.api_dsn, what))
        listed = served["features"] if what == "geojson" else served
        assert len(listed) > 200
        assert served == expected, what
        documents[what] = served
    lights = [e for e in documents["keyValues"] if e["type"] == "Streetlight"]
    # the variety above is in the comparison: statuses, live attributes, groups, ratings
    assert {e["status"] for e in lights} >= {"ok", "defectiveLamp", "brokenLantern", "columnIssue"}
    assert {e.get("powerState") for e in lights} >= {"off", "low", "on", None}
    assert any("voltage" in e for e in lights) and any("voltage" not in e for e in lights)


def test_the_tenant_geojson_is_the_document_postgresql_built(client: TestClient, world: World,
                                                            db_dsn: str) -> None:
    a = world.a
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        _vary(conn, a.tenant)
        conn.execute("UPDATE luminaires SET rated_power_w = 'Infinity' WHERE id = %s",
                     (a.luminaires[-1],))
        conn.execute("UPDATE luminaires SET lat = NULL WHERE id = %s", (a.luminaires[0],))
        (expected,) = conn.execute(reference.TENANT_GEOJSON, (a.tenant,)).fetchone()  # type: ignore[misc]
    headers = world.headers(a, Role.VIEWER)
    with client.stream("GET", "/api/v1/luminaires.geojson", headers=headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/geo+json"
        body = b"".join(response.iter_bytes())
    served = json.loads(body)
    assert served == json.loads(expected)
    assert served["features"] and any(f["geometry"] is None for f in served["features"])
    assert any(f["properties"]["rated_power_w"] in ("NaN", "Infinity") for f in served["features"])
    one = client.get("/api/v1/luminaires.geojson", params={"controller": a.controllers[0]},
                     headers=headers).json()
    assert {f["properties"]["controller_id"] for f in one["features"]} == {a.controllers[0]}
