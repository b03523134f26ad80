"""Tenant isolation, roles and the grid operator's limits, walked over every route of the app:
enumerated from the app itself, so a route added without a rule fails here (and the app does not
start)."""

from __future__ import annotations

import hashlib

import psycopg
import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient

from api.access import RULES, Audience, Registry, UndeclaredRoute, flatten
from api.app import create_app
from api.roles import TENANT_ROLES, Role
from api.settings import ApiSettings
from tests.api.api_world import TenantAssets, World
from tests.api.route_walk import call

B_TABLES = {
    "tenants": "id = %s", "users": "tenant_id = %s", "supply_points": "tenant_id = %s",
    "cabinets": "tenant_id = %s", "controllers": "tenant_id = %s", "luminaires": "tenant_id = %s",
    "groups": "tenant_id = %s", "schedules": "tenant_id = %s", "faults": "tenant_id = %s",
    "commands": "tenant_id = %s", "command_batches": "tenant_id = %s", "audit_log": "tenant_id = %s",
    "api_keys": "user_id IN (SELECT id FROM users WHERE tenant_id = %s)",
    "group_members": "group_id IN (SELECT id FROM groups WHERE tenant_id = %s)",
    "group_schedules": "group_id IN (SELECT id FROM groups WHERE tenant_id = %s)",
    "fault_notes": "fault_id IN (SELECT id FROM faults WHERE tenant_id = %s)",
    "group_lighting": "group_id IN (SELECT id FROM groups WHERE tenant_id = %s)",
}


def snapshot(dsn: str, tenant: str) -> str:
    """A digest of every row a tenant owns."""
    digest = hashlib.sha256()
    with psycopg.connect(dsn) as conn:
        for table, where in sorted(B_TABLES.items()):
            rows = conn.execute(f"SELECT t::text FROM {table} t WHERE {where} ORDER BY 1",
                                (tenant,)).fetchall()
            digest.update(f"{table}:{len(rows)}:".encode())
            for row in rows:
                digest.update(row[0].encode())
    return digest.hexdigest()


def app_routes(app: FastAPI) -> list[tuple[str, str]]:
    return sorted(set(flatten(app.routes)))


def test_every_route_of_the_app_is_declared(settings: ApiSettings) -> None:
    app = create_app(settings)
    routes = app_routes(app)
    assert len(routes) >= 60
    rules = app.state.registry.rules  # RULES plus the routers declared public as mounted
    undeclared = [r for r in routes if r not in rules]
    assert undeclared == []


def test_an_undeclared_route_stops_the_app() -> None:
    app = FastAPI()
    router = APIRouter()

    @router.get("/api/v1/forgotten")
    def forgotten() -> int:
        return 1

    app.include_router(router)
    with pytest.raises(UndeclaredRoute, match="GET /api/v1/forgotten"):
        Registry(RULES).check(app.routes)


def test_a_mounted_router_is_declared_public_in_one_line() -> None:
    router = APIRouter()

    @router.get("/api/v1/open311/services.json")
    def services() -> list[str]:
        return []

    registry = Registry({})
    registry.public_router(router)
    assert registry.rule("GET", "/api/v1/open311/services.json") is not None
    assert registry.rule("GET", "/api/v1/open311/services.json").audience is Audience.PUBLIC  # type: ignore[union-attr]


def _tenant_routes() -> list[tuple[str, str]]:
    return sorted(k for k, rule in RULES.items() if rule.audience is Audience.TENANT)


def _leaks(response: object, b: TenantAssets) -> bool:
    """B's names in an answer (a problem's `instance` echoes the request's own path: not a leak)."""
    text: str = response.text  # type: ignore[attr-defined]
    if response.headers.get("content-type") == "application/problem+json":  # type: ignore[attr-defined]
        body = response.json()  # type: ignore[attr-defined]
        body.pop("instance", None)
        text = str(body)
    return b.tenant in text or any(c in text for c in b.controllers) or b.ean in text


def test_tenant_a_never_reaches_tenant_b(client: TestClient, world: World, db_dsn: str) -> None:
    """Every tenant-scoped route, every role of A, aimed at B's assets: 403 or 404, never B's
    data, and nothing of B changes."""
    before = snapshot(db_dsn, world.b.tenant)
    failures = []
    for method, template in _tenant_routes():
        for role in sorted(TENANT_ROLES):
            request = call(method, template, world.b)
            response = request.send(client, world.headers(world.a, role))
            if response.status_code >= 500:
                failures.append(f"{role} {method} {template}: {response.status_code}")
            elif request.aimed and response.status_code not in (403, 404):
                failures.append(f"{role} {method} {template}: {response.status_code} {response.text[:200]}")
            elif _leaks(response, world.b):
                failures.append(f"{role} {method} {template}: B's data in the answer")
    assert failures == [], "\n".join(failures)
    assert snapshot(db_dsn, world.b.tenant) == before


def test_roles_are_held_to_their_rules(client: TestClient, world: World, db_dsn: str) -> None:
    """A role outside a route's rule gets 403 on its own tenant's assets and changes nothing;
    a role inside it is let through (reads answer 200)."""
    before = snapshot(db_dsn, world.a.tenant)
    failures = []
    for method, template in _tenant_routes():
        allowed = RULES[(method, template)].roles
        for role in sorted(TENANT_ROLES - allowed):
            response = call(method, template, world.a).send(client, world.headers(world.a, role))
            if response.status_code != 403:
                failures.append(f"{role} {method} {template}: {response.status_code}")
        if method == "GET":
            for role in sorted(allowed):
                response = call(method, template, world.a).send(client, world.headers(world.a, role))
                if response.status_code not in (200, 304):
                    failures.append(f"{role} GET {template}: {response.status_code} {response.text[:200]}")
    assert failures == []
    assert snapshot(db_dsn, world.a.tenant) == before


def test_the_grid_operator_reads_supply_points_and_nothing_else(client: TestClient, world: World,
                                                                db_dsn: str) -> None:
    before = (snapshot(db_dsn, world.a.tenant), snapshot(db_dsn, world.b.tenant))
    grid = world.headers(None, Role.GRID_OPERATOR)
    failures = []
    for (method, template), rule in sorted(RULES.items()):
        if rule.audience is Audience.TENANT:
            response = call(method, template, world.a).send(client, grid)
            if response.status_code != 403:
                failures.append(f"grid {method} {template}: {response.status_code}")
        elif rule.audience is Audience.GRID:
            for tenant in (world.a, world.b):  # every tenant's supply points
                response = call(method, template, tenant).send(client, grid)
                if response.status_code != 200:
                    failures.append(f"grid {method} {template}: {response.status_code} {response.text}")
            for role in sorted(TENANT_ROLES):  # and no tenant's user
                response = call(method, template, world.a).send(client, world.headers(world.a, role))
                if response.status_code != 403:
                    failures.append(f"{role} {method} {template}: {response.status_code}")
    assert failures == []
    listed = client.get("/api/v1/grid/supply-points", headers=grid).json()["items"]
    assert {p["ean"] for p in listed} == {world.a.ean, world.b.ean}
    assert (snapshot(db_dsn, world.a.tenant), snapshot(db_dsn, world.b.tenant)) == before


def test_no_identity_no_access(client: TestClient, world: World) -> None:
    failures = []
    for (method, template), rule in sorted(RULES.items()):
        if rule.audience is Audience.PUBLIC:
            continue
        response = call(method, template, world.a).send(client, {})
        if response.status_code != 401 or response.headers["content-type"] != "application/problem+json":
            failures.append(f"{method} {template}: {response.status_code}")
    assert failures == []
