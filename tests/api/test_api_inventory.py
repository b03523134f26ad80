"""Bulk import from hostile files, GeoJSON out, CRUD with ETags, provisioning by claim code with
a real broker account, and the technician's first-telemetry check."""

from __future__ import annotations

import json

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.roles import Role
from edge_agent.provision import ProvisionResponse
from luciole.compose import BrokerDeviceAccounts
from tests.api.api_world import World
from tests.conftest import RunningStack
from tests.mqtt_probe import Probe

pytestmark = pytest.mark.integration
IMPORT = "/api/v1/luminaires/import"


def _count(dsn: str, tenant: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM luminaires WHERE tenant_id = %s", (tenant,)).fetchone()
        assert row is not None
        return int(row[0])


def _inventory(rows: int, bad_every: int = 0) -> str:
    lines = ["controller_id,idx,model,rated_power_w,lat,lon,road_class"]
    for i in range(rows):
        if bad_every and i % bad_every == 3:
            lines.append(f"imp-{i // 4},{i % 4},LX,-5,50.8,4.3,M3")  # negative power
        else:
            lines.append(f"imp-{i // 4},{i % 4},LX,40,50.8,4.3,M3")
    return "\n".join(lines) + "\n"


def test_bulk_import_thousands_with_every_bad_row_reported(client: TestClient, world: World,
                                                           db_dsn: str) -> None:
    h = {**world.headers(world.a, Role.TECHNICIAN), "Content-Type": "text/csv"}
    before = _count(db_dsn, world.a.tenant)
    text = _inventory(4000, bad_every=100)
    # a row naming another tenant's controller, a duplicate, a broken line
    text += f"{world.b.controllers[0]},3,LX,40,50,4,M3\nimp-0,0,LX,40,50,4,M3\nimp-x,not-a-number\n"
    atomic = client.post(IMPORT + "?atomic=true", content=text, headers=h)
    assert atomic.status_code == 422
    assert _count(db_dsn, world.a.tenant) == before  # nothing imported
    errors = atomic.json()["errors"]
    assert len(errors) == 40 + 3
    assert errors[0] == {"line": 5, "reason": "rated_power_w: Input should be greater than or equal to 0"}
    lines = {e["line"]: e["reason"] for e in errors}
    assert "is taken" in lines[4002] and "already on line 2" in lines[4003] and "cells" in lines[4004]

    partial = client.post(IMPORT, content=text, headers=h)
    assert partial.status_code == 200
    assert partial.json()["imported"] == 4000 - 40 and len(partial.json()["errors"]) == 43
    assert partial.json()["controllers_created"] == 1000
    assert _count(db_dsn, world.a.tenant) == before + 3960
    with psycopg.connect(db_dsn) as conn:
        row = conn.execute("SELECT tenant_id FROM controllers WHERE id = %s",
                           (world.b.controllers[0],)).fetchone()
    assert row is not None and row[0] == world.b.tenant
    # importing again updates in place (and adds line 5's luminaire, refused the first time)
    again = client.post(IMPORT, content=_inventory(8), headers=h)
    assert again.json()["imported"] == 8 and again.json()["controllers_created"] == 0
    assert _count(db_dsn, world.a.tenant) == before + 3961


@pytest.mark.parametrize(("body", "content_type", "status"), [
    (b"\xff\xfe\x00garbage", "text/csv", 422),
    (b"controller_id,idx\nctl,0\n", "application/xml", 415),
    (b"{not json", "application/geo+json", 200),
    (b'{"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": '
     b'{"type": "Point", "coordinates": [1e999, 50]}, "properties": {"controller_id": "g-1", "idx": 0}}]}',
     "application/geo+json", 200),
    (b"controller_id,idx\n" + b"x" * 40_000_000, "text/csv", 413),
])
def test_hostile_import_bodies(client: TestClient, world: World, db_dsn: str, body: bytes,
                               content_type: str, status: int) -> None:
    before = _count(db_dsn, world.a.tenant)
    response = client.post(IMPORT, content=body, headers={
        **world.headers(world.a, Role.ADMIN), "Content-Type": content_type})
    assert response.status_code == status, response.text[:300]
    if status == 200:
        assert response.json()["imported"] == 0 and response.json()["errors"]
    else:
        assert response.headers["content-type"] == "application/problem+json"
    assert _count(db_dsn, world.a.tenant) == before
    assert client.get("/healthz").status_code == 200  # other traffic goes on


def test_geojson_of_a_tenant(client: TestClient, world: World) -> None:
    response = client.get("/api/v1/luminaires.geojson", headers=world.headers(world.a, Role.VIEWER))
    assert response.headers["content-type"] == "application/geo+json"
    doc = json.loads(response.text)
    assert doc["type"] == "FeatureCollection" and len(doc["features"]) == 4
    assert doc["features"][0]["geometry"] == {"type": "Point", "coordinates": [4.3, 50.8]}
    assert {f["properties"]["controller_id"] for f in doc["features"]} == set(world.a.controllers)


def test_map_columns_of_a_tenant(client: TestClient, world: World, db_dsn: str) -> None:
    with psycopg.connect(db_dsn, autocommit=True) as conn:  # an unlocated luminaire is left out
        conn.execute("UPDATE luminaires SET lat = NULL, lon = NULL WHERE id = %s", (world.a.luminaires[3],))
        conn.execute("UPDATE controllers SET online = false WHERE id = %s", (world.a.controllers[1],))
    response = client.get("/api/v1/map/luminaires", headers=world.headers(world.a, Role.VIEWER))
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    doc = response.json()
    assert doc["id"] == sorted(world.a.luminaires)[:3]
    assert doc["lon"] == [4.3] * 3 and doc["lat"] == [50.8] * 3 and doc["idx"] == [0, 1, 0]
    assert doc["controller_id"] == [world.a.controllers[0]] * 2 + [world.a.controllers[1]]
    assert doc["level"] == [None] * 3 and doc["online"] == [True, True, False]
    # the other tenant's map holds its own luminaires only; no token, nothing
    other = client.get("/api/v1/map/luminaires", headers=world.headers(world.b, Role.VIEWER)).json()
    assert other["id"] == sorted(world.b.luminaires)
    assert client.get("/api/v1/map/luminaires").status_code == 401
    assert client.get("/api/v1/map/luminaires",
                      headers=world.headers(None, Role.GRID_OPERATOR)).status_code == 403


def test_etag_and_crud(client: TestClient, world: World) -> None:
    h = world.headers(world.a, Role.OPERATOR)
    path = f"/api/v1/luminaires/{world.a.luminaires[0]}"
    first = client.get(path, headers=h)
    tag = first.headers["etag"]
    assert client.get(path, headers={**h, "If-None-Match": tag}).status_code == 304
    changed = client.patch(path, headers=h, json={"model": "Teceo 2"})
    assert changed.status_code == 200 and changed.json()["model"] == "Teceo 2"
    assert client.get(path, headers={**h, "If-None-Match": tag}).status_code == 200
    page = client.get("/api/v1/luminaires?limit=3", headers=h).json()
    rest = client.get(f"/api/v1/luminaires?limit=3&cursor={page['next_cursor']}", headers=h).json()
    ids = [i["id"] for i in page["items"] + rest["items"]]
    assert ids == sorted(world.a.luminaires) and rest["next_cursor"] is None
    assert client.get("/api/v1/luminaires?cursor=bm9wZQ", headers=h).status_code == 400


def test_provisioning_by_claim_code(stack: RunningStack, world: World, db_dsn: str,
                                    settings: object) -> None:
    from api.app import create_app
    from api.settings import ApiSettings

    assert isinstance(settings, ApiSettings)
    e = stack.endpoints
    accounts = BrokerDeviceAccounts(e.mqtt_host, e.mqtt_port, *_admin(stack))
    with TestClient(create_app(settings, accounts), raise_server_exceptions=False) as client:
        h = world.headers(world.a, Role.TECHNICIAN)
        created = client.post("/api/v1/controllers", headers=h,
                              json={"id": "ctl-new-pole", "cabinet_id": world.a.cabinet})
        assert created.status_code == 201 and created.json()["status"] == "unprovisioned"
        code = created.json()["claim_code"]
        request = {"claim_code": code, "controller_id": None, "pole_id": "P-77", "lat": 50.83,
                   "lon": 4.39, "luminaire_model": "Teceo", "cabinet_id": world.a.cabinet}
        assert client.post("/api/v1/provision", json={**request, "claim_code": "CLAIM-WRONG"}
                           ).status_code == 403
        assert client.post("/api/v1/provision", json={**request, "pole_id": "P-town-a-0"}
                           ).status_code == 409
        response = client.post("/api/v1/provision", json=request)
        assert response.status_code == 201, response.text
        answer = ProvisionResponse.model_validate_json(response.content)  # the agent's contract
        assert (answer.controller_id, answer.tenant) == ("ctl-new-pole", "town-a")
        # the credentials work on the real broker, once; the code does not work twice
        with Probe(answer.mqtt.host, answer.mqtt.port, answer.mqtt.username,
                   answer.mqtt.password, client_id=answer.controller_id) as probe:
            assert probe.accepted
        used = client.post("/api/v1/provision", json=request)
        assert used.status_code == 403 and used.json()["detail"] == "unknown or already used claim code"
        # first telemetry passes only once ingest stored a reading
        check = f"/api/v1/controllers/{answer.controller_id}/checklist"
        steps = {c["name"]: c["ok"] for c in client.get(check, headers=h).json()["checks"]}
        assert steps == {"registered": True, "online": False, "first telemetry": False}
        with psycopg.connect(db_dsn, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO luminaire_telemetry SELECT now(), key, 0, 254, 0, 30, 1, 230, 0.1, 0.9,"
                " 40, 0, 0, 0, 1, 0 FROM controllers WHERE id = %s", (answer.controller_id,))
        steps = {c["name"]: c["ok"] for c in client.get(check, headers=h).json()["checks"]}
        assert steps["first telemetry"] is True


def _admin(stack: RunningStack) -> tuple[str, str]:
    endpoints = stack.stack.endpoints()  # the admin account (the observer is the tests' own)
    return endpoints.mqtt_username, endpoints.mqtt_password
