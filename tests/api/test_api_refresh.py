"""POST /auth/refresh: a person's valid token is renewed (a new short-lived one, the account's
current role, the login's start kept); expired, forged, disabled, moved, too old a session, and
API keys get nothing. The grid operator renews in its own scope (POST /grid/auth/refresh) on the
same terms, and its renewed token keeps its limits."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import jwt
import psycopg
import pytest
from fastapi.testclient import TestClient

from api.access import RULES, Audience
from api.credentials import TOKEN_ALGORITHM, TOKEN_AUDIENCE, issue_token, new_api_key
from api.roles import Principal, Role
from tests.api.api_world import PASSWORD, SECRET, World
from tests.api.route_walk import call

pytestmark = pytest.mark.integration


def _login(client: TestClient, world: World, role: Role) -> str:
    response = client.post("/api/v1/auth/token", data={"username": f"{role.value}@{world.a.tenant}.example",
                                                       "password": PASSWORD})
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def _refresh(client: TestClient, token: str,
             path: str = "/api/v1/auth/refresh") -> tuple[int, dict]:  # type: ignore[type-arg]
    response = client.post(path, headers={"Authorization": f"Bearer {token}"})
    return response.status_code, response.json()


GRID_REFRESH = "/api/v1/grid/auth/refresh"


def _claims(token: str) -> dict:  # type: ignore[type-arg]
    return jwt.decode(token, SECRET, algorithms=[TOKEN_ALGORITHM], audience=TOKEN_AUDIENCE)  # type: ignore[no-any-return]


def test_a_valid_token_is_renewed_with_the_current_role(client: TestClient, world: World,
                                                         db_dsn: str) -> None:
    token = _login(client, world, Role.OPERATOR)
    time.sleep(1.1)
    status, body = _refresh(client, token)
    assert status == 200 and body["expires_in"] == 900
    renewed = body["access_token"]
    assert renewed != token
    old, new = _claims(token), _claims(renewed)
    assert new["auth_time"] == old["auth_time"] and new["iat"] > old["iat"]
    assert new["exp"] - new["iat"] == 900
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {renewed}"})
    assert me.json()["role"] == "operator"
    # the role changed meanwhile: the renewal carries the account's role, not the token's
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute("UPDATE users SET role = 'viewer' WHERE id = %s", (world.a.users[Role.OPERATOR],))
    status, body = _refresh(client, renewed)
    assert status == 200 and _claims(body["access_token"])["role"] == "viewer"


def test_expired_forged_disabled_moved_and_old_sessions_get_nothing(client: TestClient, world: World,
                                                                     db_dsn: str) -> None:
    a = world.a
    user = a.users[Role.TECHNICIAN]
    principal = Principal(user, a.tenant, Role.TECHNICIAN)
    now = datetime.now(UTC)
    expired = issue_token(principal, SECRET, timedelta(minutes=15), now - timedelta(minutes=16))
    forged = issue_token(principal, "not-the-signing-secret-but-32-chars-long", timedelta(minutes=15), now)
    too_old = issue_token(principal, SECRET, timedelta(minutes=15), now,
                          auth_time=int((now - timedelta(hours=13)).timestamp()))
    moved = issue_token(Principal(user, world.b.tenant, Role.TECHNICIAN), SECRET, timedelta(minutes=15), now)
    for token in (expired, forged, too_old, moved, "garbage", ""):
        status, body = _refresh(client, token)
        assert status == 401, (token, body)
        assert "access_token" not in body and body["detail"]
    valid = issue_token(principal, SECRET, timedelta(minutes=15), now)
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute("UPDATE users SET disabled_at = now() WHERE id = %s", (user,))
    status, body = _refresh(client, valid)
    assert status == 401 and "no longer active" in body["detail"]


def test_an_api_key_is_not_renewed(client: TestClient, world: World) -> None:
    created = client.post("/api/v1/keys", headers=world.headers(world.a, Role.ADMIN),
                          json={"name": "k", "role": "viewer"})
    assert created.status_code == 201, created.text
    key = created.json()["key"]
    response = client.post("/api/v1/auth/refresh", headers={"X-API-Key": key})
    assert response.status_code == 403 and "API key" in response.json()["detail"]


def _grid_login(client: TestClient) -> str:
    response = client.post("/api/v1/auth/token", data={"username": "grid@dso.example",
                                                       "password": PASSWORD})
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def test_the_grid_operator_renews_its_own_token_and_keeps_its_limits(client: TestClient,
                                                                     world: World) -> None:
    token = _grid_login(client)
    time.sleep(1.1)
    status, body = _refresh(client, token, GRID_REFRESH)
    assert status == 200 and body["expires_in"] == 900, body
    renewed = body["access_token"]
    old, new = _claims(token), _claims(renewed)
    assert new["role"] == "grid_operator" and new["tid"] is None and new["sub"] == str(world.grid_user)
    assert new["auth_time"] == old["auth_time"] and new["iat"] > old["iat"]
    assert new["exp"] - new["iat"] == 900
    # and again, from the renewed one: a session goes on as long as the renewals do
    status, again = _refresh(client, renewed, GRID_REFRESH)
    assert status == 200 and _claims(again["access_token"])["auth_time"] == old["auth_time"]
    # a tenant's renewal is not the grid operator's, nor the other way round
    status, body = _refresh(client, renewed)
    assert status == 403 and "access_token" not in body
    status, body = _refresh(client, world.token(world.a, Role.ADMIN), GRID_REFRESH)
    assert status == 403 and "access_token" not in body
    # the renewed token keeps the grid operator's limits: every tenant's supply points' energy
    # and settlement, and nothing of a tenant
    bearer = {"Authorization": f"Bearer {again['access_token']}"}
    points = client.get("/api/v1/grid/supply-points", headers=bearer)
    assert points.status_code == 200
    assert {p["ean"] for p in points.json()["items"]} == {world.a.ean, world.b.ean}
    energy = client.get(f"/api/v1/grid/supply-points/{world.b.ean}/energy", headers=bearer)
    assert energy.status_code == 200, energy.text
    refused = []
    for (method, template), rule in sorted(RULES.items()):
        if rule.audience is Audience.TENANT:
            response = call(method, template, world.a).send(client, bearer)
            if response.status_code != 403:
                refused.append(f"{method} {template}: {response.status_code}")
    assert refused == []


def test_expired_revoked_garbled_grid_renewals_get_a_problem(client: TestClient, world: World,
                                                             db_dsn: str) -> None:
    grid = Principal(world.grid_user, None, Role.GRID_OPERATOR)
    now = datetime.now(UTC)
    expired = issue_token(grid, SECRET, timedelta(minutes=15), now - timedelta(minutes=16))
    forged = issue_token(grid, "not-the-signing-secret-but-32-chars-long", timedelta(minutes=15), now)
    too_old = issue_token(grid, SECRET, timedelta(minutes=15), now,
                          auth_time=int((now - timedelta(hours=13)).timestamp()))
    claims = _claims(issue_token(grid, SECRET, timedelta(minutes=15), now))
    with_tenant = jwt.encode({**claims, "tid": world.a.tenant}, SECRET, algorithm=TOKEN_ALGORITHM)
    as_viewer = jwt.encode({**claims, "role": "viewer"}, SECRET, algorithm=TOKEN_ALGORITHM)
    header, payload, signature = issue_token(grid, SECRET, timedelta(minutes=15), now).split(".")
    cases = {"expired": expired, "forged": forged, "too old a session": too_old,
             "a tenant in a grid token": with_tenant, "a role of no tenant": as_viewer,
             "truncated": f"{header}.{payload}.{signature[:-4]}", "garbage": "garbage",
             "two parts": f"{header}.{payload}", "empty": "", "huge": "x" * 6000,
             "not base64": "!!.@@.##", "a key's shape": "lk_0123456789ab_" + "z" * 40}
    for what, token in cases.items():
        response = client.post(GRID_REFRESH, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, (what, response.text)
        assert response.headers["content-type"] == "application/problem+json", what
        body = response.json()
        assert body["status"] == 401 and body["detail"] and "access_token" not in body, what
    # no credentials at all
    response = client.post(GRID_REFRESH)
    assert response.status_code == 401 and response.json()["detail"]
    # a key of the grid operator is not renewed; once revoked it is refused outright
    key = new_api_key()
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO api_keys (user_id, prefix, key_hash, role, name) VALUES"
                     " (%s, %s, %s, 'grid_operator', 'settlement robot')",
                     (world.grid_user, key.prefix, key.key_hash))
    response = client.post(GRID_REFRESH, headers={"X-API-Key": key.secret})
    assert response.status_code == 403 and "API key" in response.json()["detail"]
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute("UPDATE api_keys SET revoked_at = now() WHERE prefix = %s", (key.prefix,))
    response = client.post(GRID_REFRESH, headers={"X-API-Key": key.secret})
    assert response.status_code == 401 and "revoked" in response.json()["detail"]
    # the account disabled: a token still valid is not renewed
    valid = issue_token(grid, SECRET, timedelta(minutes=15), now)
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute("UPDATE users SET disabled_at = now() WHERE id = %s", (world.grid_user,))
    status, body = _refresh(client, valid, GRID_REFRESH)
    assert status == 401 and "no longer active" in body["detail"]
