"""POST /auth/refresh: a person's valid token is renewed (a new short-lived one, the account's
current role, the login's start kept); expired, forged, disabled, moved, too old a session, and
API keys get nothing."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import jwt
import psycopg
import pytest
from fastapi.testclient import TestClient

from api.credentials import TOKEN_ALGORITHM, TOKEN_AUDIENCE, issue_token
from api.roles import Principal, Role
from tests.api.api_world import PASSWORD, SECRET, World

pytestmark = pytest.mark.integration


def _login(client: TestClient, world: World, role: Role) -> str:
    response = client.post("/api/v1/auth/token", data={"username": f"{role.value}@{world.a.tenant}.example",
                                                       "password": PASSWORD})
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def _refresh(client: TestClient, token: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    response = client.post("/api/v1/auth/refresh", headers={"Authorization": f"Bearer {token}"})
    return response.status_code, response.json()


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
