"""People log in (OAuth2 password flow) and machines present keys: wrong passwords, lockout, the
rate limit, tampered and expired tokens, revoked and expired keys; all of it in the audit log."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.credentials import issue_token
from api.roles import Principal, Role
from tests.api.api_world import PASSWORD, SECRET, World
from tests.api.conftest import api_settings
from tests.conftest import RunningStack

TOKEN = "/api/v1/auth/token"


def login(client: TestClient, email: str, password: str) -> object:
    return client.post(TOKEN, data={"username": email, "password": password})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_login_gives_a_short_lived_token(client: TestClient, world: World) -> None:
    response = login(client, "operator@town-a.example", PASSWORD)
    assert response.status_code == 200, response.text  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert body["token_type"] == "bearer" and body["expires_in"] == 900
    me = client.get("/api/v1/me", headers=bearer(body["access_token"])).json()
    assert me == {"user_id": world.a.users[Role.OPERATOR], "tenant": "town-a", "role": "operator",
                  "key_id": None}


def test_wrong_password_and_unknown_email_answer_alike(client: TestClient, world: World) -> None:
    wrong = login(client, "operator@town-a.example", "not the password")
    unknown = login(client, "nobody@town-a.example", PASSWORD)
    for response in (wrong, unknown):
        assert response.status_code == 401  # type: ignore[attr-defined]
        assert response.headers["content-type"] == "application/problem+json"  # type: ignore[attr-defined]
    assert wrong.json()["detail"] == unknown.json()["detail"]  # type: ignore[attr-defined]


def test_lockout_after_five_failures(client: TestClient, world: World, db_dsn: str) -> None:
    email = "viewer@town-a.example"
    for _ in range(5):
        assert login(client, email, "wrong password!").status_code == 401  # type: ignore[attr-defined]
    # locked: even the right password is refused now
    assert login(client, email, PASSWORD).status_code == 401  # type: ignore[attr-defined]
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        row = conn.execute("SELECT locked_until FROM users WHERE email = %s", (email,)).fetchone()
        assert row is not None and row[0] > datetime.now(UTC) + timedelta(minutes=10)
        conn.execute("UPDATE users SET locked_until = now() - interval '1 s' WHERE email = %s", (email,))
    assert login(client, email, PASSWORD).status_code == 200  # type: ignore[attr-defined]
    # every attempt is in the admin's audit log
    audit = client.get("/api/v1/audit", headers=world.headers(world.a, Role.ADMIN)).json()["items"]
    actions = [(e["action"], e["target"]) for e in audit if e["target"] == email]
    assert actions.count(("login_failed", email)) == 6 and actions.count(("login", email)) == 1


@pytest.fixture
def strict_client(stack: RunningStack, db_dsn: str, tmp_path: Path, world: World) -> Iterator[TestClient]:
    settings = api_settings(stack, db_dsn, tmp_path / "run", login_rate_per_min=3)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


def test_login_rate_limit_per_address(strict_client: TestClient) -> None:
    codes = [login(strict_client, f"u{i}@town-a.example", "x").status_code  # type: ignore[attr-defined]
             for i in range(4)]
    assert codes == [401, 401, 401, 429]
    # other traffic goes on
    assert strict_client.get("/healthz").status_code == 200


def _tampered(token: str) -> list[str]:
    head, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["role"] = "admin"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    none_head = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').decode().rstrip("=")
    return [f"{head}.{forged}.{signature}", f"{none_head}.{forged}.", token[:-4] + "AAAA",
            "garbage", "a.b.c", token + "x"]


def test_tampered_foreign_and_expired_tokens_are_refused(client: TestClient, world: World) -> None:
    good = world.token(world.a, Role.VIEWER)
    assert client.get("/api/v1/me", headers=bearer(good)).status_code == 200
    principal = Principal(world.a.users[Role.VIEWER], "town-a", Role.VIEWER)
    expired = issue_token(principal, SECRET, timedelta(minutes=15),
                          datetime.now(UTC) - timedelta(minutes=16))
    foreign = issue_token(principal, "another-secret-another-secret-xx", timedelta(minutes=15),
                          datetime.now(UTC))
    wrong_audience = jwt.encode({"sub": "1", "role": "admin", "tid": "town-a", "aud": "other",
                                 "iat": 0, "exp": 4102444800}, SECRET, algorithm="HS256")
    for token in [*_tampered(good), expired, foreign, wrong_audience]:
        response = client.get("/api/v1/me", headers=bearer(token))
        assert response.status_code == 401, token
        assert response.headers["www-authenticate"].startswith("Bearer")


def test_api_keys_shown_once_scoped_revocable_expiring(client: TestClient, world: World,
                                                       db_dsn: str) -> None:
    admin = world.headers(world.a, Role.ADMIN)
    created = client.post("/api/v1/keys", json={"name": "scada", "role": "operator",
                                                "expires_in_days": 30}, headers=admin)
    assert created.status_code == 201, created.text
    key = created.json()["key"]
    listed = client.get("/api/v1/keys", headers=admin).json()
    assert all("key" not in k for k in listed) and key not in json.dumps(listed)
    with psycopg.connect(db_dsn) as conn:
        stored = conn.execute("SELECT key_hash FROM api_keys WHERE prefix = %s",
                              (created.json()["prefix"],)).fetchone()
    assert stored is not None and key not in stored[0]
    for headers in ({"X-API-Key": key}, bearer(key)):
        me = client.get("/api/v1/me", headers=headers)
        assert me.json()["role"] == "operator" and me.json()["tenant"] == "town-a"
    # the key's role, not its owner's: an operator key cannot manage users
    assert client.get("/api/v1/users", headers={"X-API-Key": key}).status_code == 403
    for wrong in [key[:-2] + "zz", "lk_" + "0" * 12 + "_" + "x" * 43, "lk_short_x", "lk_"]:
        assert client.get("/api/v1/me", headers={"X-API-Key": wrong}).status_code == 401
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute("UPDATE api_keys SET expires_at = now() - interval '1 s' WHERE prefix = %s",
                     (created.json()["prefix"],))
    assert client.get("/api/v1/me", headers={"X-API-Key": key}).json()["detail"] == \
        "this API key has expired"
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute("UPDATE api_keys SET expires_at = NULL WHERE prefix = %s",
                     (created.json()["prefix"],))
    assert client.get("/api/v1/me", headers={"X-API-Key": key}).status_code == 200
    assert client.delete(f"/api/v1/keys/{created.json()['id']}", headers=admin).status_code == 204
    refused = client.get("/api/v1/me", headers={"X-API-Key": key})
    assert refused.status_code == 401 and refused.json()["detail"] == "this API key was revoked"
    actions = [e["action"] for e in client.get("/api/v1/audit", headers=admin).json()["items"]]
    assert "key.create" in actions and "key.revoke" in actions


def test_a_disabled_user_loses_keys_and_logins(client: TestClient, world: World) -> None:
    admin = world.headers(world.a, Role.ADMIN)
    viewer = world.a.users[Role.VIEWER]
    assert client.delete(f"/api/v1/users/{viewer}", headers=admin).status_code == 204
    assert login(client, "viewer@town-a.example", PASSWORD).status_code == 401  # type: ignore[attr-defined]
    assert client.delete(f"/api/v1/users/{world.a.users[Role.ADMIN]}", headers=admin).status_code == 409
