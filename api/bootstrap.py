"""The first tenants, people and keys, created from the command line (`luciole api create-...`)
before anyone can log in; the same rules as the routes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
from psycopg.types.json import Jsonb

from api.credentials import hash_password, new_api_key
from api.roles import Role
from wire.topics import validate_identifier


class BootstrapError(ValueError):
    """Refused; the text says why."""


def create_tenant(dsn: str, tenant: str, name: str, timezone: str = "Europe/Brussels") -> None:
    validate_identifier(tenant, "tenant")
    with psycopg.connect(dsn) as conn:
        conn.execute("INSERT INTO tenants (id, name, timezone) VALUES (%s, %s, %s)"
                     " ON CONFLICT (id) DO NOTHING", (tenant, name, timezone))


def create_user(dsn: str, email: str, role: Role, tenant: str | None, password: str,
                name: str = "") -> int:
    """A user of a tenant, or the grid operator (no tenant)."""
    if (role is Role.GRID_OPERATOR) != (tenant is None):
        raise BootstrapError("the grid operator has no tenant; every other role needs one")
    if len(password) < 12:
        raise BootstrapError("passwords have at least 12 characters")
    with psycopg.connect(dsn) as conn:
        if tenant is not None and conn.execute("SELECT 1 FROM tenants WHERE id = %s",
                                               (tenant,)).fetchone() is None:
            raise BootstrapError(f"no tenant {tenant!r}; create it first")
        try:
            row = conn.execute("INSERT INTO users (tenant_id, email, role, name, password_hash)"
                               " VALUES (%s, %s, %s, %s, %s) RETURNING id",
                               (tenant, email, role.value, name, hash_password(password))).fetchone()
        except psycopg.errors.UniqueViolation:
            raise BootstrapError(f"a user {email} exists") from None
        assert row is not None
        conn.execute("INSERT INTO audit_log (tenant_id, user_id, action, target, detail) VALUES"
                     " (%s, %s, 'user.create', %s, %s)", (tenant, row[0], email,
                                                          Jsonb({"by": "command line"})))
        return int(row[0])


def create_key(dsn: str, email: str, role: Role, name: str, days: int | None) -> str:
    """A key of the user `email` acting as `role` (the grid operator's key only as grid
    operator); returns the secret, which is not stored."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT id, tenant_id FROM users WHERE lower(email) = lower(%s)"
                           " AND disabled_at IS NULL", (email,)).fetchone()
        if row is None:
            raise BootstrapError(f"no active user {email}")
        if (row[1] is None) != (role is Role.GRID_OPERATOR):
            raise BootstrapError("the grid operator's keys act as grid operator, and only theirs")
        key = new_api_key()
        expires = datetime.now(UTC) + timedelta(days=days) if days else None
        conn.execute("INSERT INTO api_keys (user_id, prefix, key_hash, role, name, expires_at)"
                     " VALUES (%s, %s, %s, %s, %s, %s)",
                     (row[0], key.prefix, key.key_hash, role.value, name, expires))
        conn.execute("INSERT INTO audit_log (tenant_id, user_id, action, target, detail) VALUES"
                     " (%s, %s, 'key.create', %s, %s)",
                     (row[1], row[0], key.prefix, Jsonb({"by": "command line", "role": role.value})))
        return key.secret
