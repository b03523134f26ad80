"""People and keys: login with lockout and rate limit, users and API keys of a tenant, the audit
log. SQL here; the rules are in api.credentials."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

from psycopg.errors import UniqueViolation

from api import audit
from api.credentials import (
    CredentialError,
    after_login,
    hash_password,
    is_locked,
    issue_token,
    new_api_key,
    token_auth_time,
    verify_password,
)
from api.deps import Conn, TenantScope
from api.problems import Problem, not_found
from api.roles import Principal, Role
from api.settings import ApiSettings

INVALID_LOGIN = "wrong email or password, or the account is locked"


async def _refuse(conn: Conn) -> NoReturn:
    """A refused login still counts: its attempt, the lockout and the audit line are committed."""
    await conn.commit()
    raise Problem(401, INVALID_LOGIN, headers={"WWW-Authenticate": 'Bearer realm="luciole"'})


async def login(conn: Conn, settings: ApiSettings, email: str, password: str, remote: str) -> str:
    """A bearer token for a correct password; 401 otherwise (the same answer whether the email
    exists, the password is wrong or the account is locked), 429 past the address' rate."""
    if settings.token_secret is None:
        raise Problem(503, "this server issues no tokens (no signing secret configured)")
    now = datetime.now(UTC)
    recent = await (await conn.execute(
        "SELECT count(*) FROM login_attempts WHERE remote = %s AND at > %s",
        (remote, now - timedelta(minutes=1)))).fetchone()
    if recent is not None and recent[0] >= settings.login_rate_per_min:
        raise Problem(429, "too many login attempts from this address; wait a minute",
                      headers={"Retry-After": "60"})
    row = await (await conn.execute(
        "SELECT id, tenant_id, role, password_hash, disabled_at, failed_logins, locked_until"
        " FROM users WHERE lower(email) = lower(%s) FOR UPDATE", (email,))).fetchone()
    stored = row[3] if row is not None and row[4] is None else None
    matches = verify_password(stored, password)
    await conn.execute("INSERT INTO login_attempts (email, remote, ok) VALUES (%s, %s, %s)",
                       (email[:320], remote, matches))
    if row is None:
        await audit.record_login(conn, None, None, email[:320], False, remote, "unknown email")
        await _refuse(conn)
    user_id, tenant, role, _, disabled_at, failed, locked_until = row
    if is_locked(locked_until, now):
        await audit.record_login(conn, tenant, user_id, email, False, remote, "locked")
        await _refuse(conn)
    outcome = after_login(matches, failed, now, settings.login_max_failures,
                          timedelta(seconds=settings.lockout_s))
    await conn.execute("UPDATE users SET failed_logins = %s, locked_until = %s WHERE id = %s",
                       (outcome.failed_logins, outcome.locked_until, user_id))
    if not matches:
        why = "disabled" if disabled_at is not None else "wrong password"
        if outcome.locked_until is not None:
            why += "; locked"
        await audit.record_login(conn, tenant, user_id, email, False, remote, why)
        await _refuse(conn)
    await audit.record_login(conn, tenant, user_id, email, True, remote, "")
    assert settings.token_secret is not None
    return issue_token(Principal(user_id, tenant, Role(role)),
                       settings.token_secret.get_secret_value(),
                       timedelta(seconds=settings.token_lifetime_s), now)


async def create_user(conn: Conn, scope: TenantScope, email: str, role: Role, name: str,
                      password: str) -> dict[str, Any]:
    if role is Role.GRID_OPERATOR:
        raise Problem(422, "the grid operator belongs to no tenant; create it with "
                      "`luciole api create-user --grid-operator`")
    try:
        row = await (await conn.execute(
            "INSERT INTO users (tenant_id, email, role, name, password_hash) VALUES (%s, %s, %s,"
            " %s, %s) RETURNING id, created_at",
            (scope.tenant, email, role.value, name, hash_password(password)))).fetchone()
    except UniqueViolation:
        raise Problem(409, "a user with this email exists") from None
    assert row is not None
    await audit.record(conn, scope, "user.create", email, {"role": role.value})
    return {"id": row[0], "email": email, "role": role, "name": name, "created_at": row[1],
            "disabled": False}


async def list_users(conn: Conn, scope: TenantScope) -> list[dict[str, Any]]:
    rows = await (await conn.execute(
        "SELECT id, email, role, name, created_at, disabled_at IS NOT NULL FROM users"
        " WHERE tenant_id = %s ORDER BY id", (scope.tenant,))).fetchall()
    return [{"id": r[0], "email": r[1], "role": r[2], "name": r[3], "created_at": r[4],
             "disabled": r[5]} for r in rows]


async def disable_user(conn: Conn, scope: TenantScope, user_id: int) -> None:
    if user_id == scope.user_id:
        raise Problem(409, "you cannot disable yourself")
    row = await (await conn.execute(
        "UPDATE users SET disabled_at = coalesce(disabled_at, now()) WHERE id = %s AND tenant_id = %s"
        " RETURNING email", (user_id, scope.tenant))).fetchone()
    if row is None:
        raise not_found("user")
    await conn.execute("UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE user_id = %s",
                       (user_id,))
    await audit.record(conn, scope, "user.disable", row[0])


async def create_key(conn: Conn, scope: TenantScope, name: str, role: Role,
                     expires_in_days: int | None) -> dict[str, Any]:
    if role is Role.GRID_OPERATOR:
        raise Problem(422, "a tenant's key cannot act as the grid operator")
    key = new_api_key()
    expires_at = (datetime.now(UTC) + timedelta(days=expires_in_days)) if expires_in_days else None
    row = await (await conn.execute(
        "INSERT INTO api_keys (user_id, prefix, key_hash, role, name, expires_at)"
        " VALUES (%s, %s, %s, %s, %s, %s) RETURNING id, created_at",
        (scope.user_id, key.prefix, key.key_hash, role.value, name, expires_at))).fetchone()
    assert row is not None
    await audit.record(conn, scope, "key.create", key.prefix, {"role": role.value, "name": name})
    return {"id": row[0], "prefix": key.prefix, "name": name, "role": role, "key": key.secret,
            "created_at": row[1], "expires_at": expires_at}


async def list_keys(conn: Conn, scope: TenantScope) -> list[dict[str, Any]]:
    rows = await (await conn.execute(
        "SELECT k.id, k.prefix, k.name, k.role, k.created_at, k.expires_at, k.revoked_at, u.email"
        " FROM api_keys k JOIN users u ON u.id = k.user_id WHERE u.tenant_id = %s ORDER BY k.id",
        (scope.tenant,))).fetchall()
    return [{"id": r[0], "prefix": r[1], "name": r[2], "role": r[3], "created_at": r[4],
             "expires_at": r[5], "revoked_at": r[6], "owner": r[7]} for r in rows]


async def revoke_key(conn: Conn, scope: TenantScope, key_id: int) -> None:
    row = await (await conn.execute(
        "UPDATE api_keys k SET revoked_at = coalesce(k.revoked_at, now()) FROM users u"
        " WHERE k.id = %s AND u.id = k.user_id AND u.tenant_id = %s RETURNING k.prefix",
        (key_id, scope.tenant))).fetchone()
    if row is None:
        raise not_found("API key")
    await audit.record(conn, scope, "key.revoke", row[0])


async def audit_page(conn: Conn, scope: TenantScope, after: int | None, limit: int,
                     action: str | None) -> list[dict[str, Any]]:
    rows = await (await conn.execute(
        "SELECT id, at, user_id, key_id, action, target, detail, remote FROM audit_log"
        " WHERE tenant_id = %s AND (%s::bigint IS NULL OR id < %s)"
        " AND (%s::text IS NULL OR action = %s) ORDER BY id DESC LIMIT %s",
        (scope.tenant, after, after, action, action, limit))).fetchall()
    return [{"id": r[0], "at": r[1], "user_id": r[2], "key_id": r[3], "action": r[4],
             "target": r[5], "detail": r[6], "remote": r[7]} for r in rows]


async def refresh(conn: Conn, settings: ApiSettings, token: str, principal: Principal) -> str:
    """A new short-lived token for a person whose token is still valid, whose account is still
    active in the same tenant (for the grid operator: still of no tenant), and whose login is
    younger than `session_max_s`; with the role the account has now. API keys are not renewed.
    The caller's route rule has already held the principal to its audience (a tenant's users on
    POST /auth/refresh, the grid operator on POST /grid/auth/refresh)."""
    if principal.key_id is not None:
        raise Problem(403, "an API key is not renewed: it lives until its own expiry")
    assert settings.token_secret is not None
    secret = settings.token_secret.get_secret_value()
    now = datetime.now(UTC)
    try:
        began = token_auth_time(token, secret, now)
    except CredentialError as exc:
        raise Problem(401, str(exc)) from None
    if now.timestamp() - began > settings.session_max_s:
        raise Problem(401, "the session has lasted its maximum: log in again")
    row = await (await conn.execute("SELECT tenant_id, role, disabled_at FROM users WHERE id = %s",
                                    (principal.user_id,))).fetchone()
    if row is None or row[2] is not None or row[0] != principal.tenant:
        raise Problem(401, "this account is no longer active: log in again")
    return issue_token(Principal(principal.user_id, row[0], Role(row[1])), secret,
                       timedelta(seconds=settings.token_lifetime_s), now, auth_time=began)
