"""PostgreSQL login roles: an owner that runs migrations, and one role per service.

Roles are cluster objects, like the database itself: the launcher creates them with the
cluster's bootstrap superuser, which nothing else uses. What each role may do inside the
database is in the migrations (0007). Passwords reach PostgreSQL only as SCRAM-SHA-256
verifiers computed here, so the server never sees (or logs) the secret itself.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from enum import StrEnum

import psycopg
from psycopg import sql

OWNER = "luciole"
SCRAM_ITERATIONS = 4096


class DbService(StrEnum):
    """A service's database role; grants in luciole/migrations/0007_least_privilege.sql."""

    INGEST = "luciole_ingest"
    JOBS = "luciole_jobs"
    API = "luciole_api"


# Every login role of the stack: none is a superuser, none may create roles or databases, none
# bypasses row-level security, none replicates.
ROLE_ATTRIBUTES = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"


def scram_verifier(password: str, iterations: int = SCRAM_ITERATIONS,
                   salt: bytes | None = None) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for `password` (RFC 5802 / 7677)."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def ensure_login_role(conn: psycopg.Connection, name: str, password: str) -> None:
    """Create `name` (or reset its attributes and password) as an unprivileged login role."""
    exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone()
    verb = sql.SQL("ALTER ROLE" if exists else "CREATE ROLE")
    conn.execute(sql.SQL("{} {} WITH {} PASSWORD {}").format(
        verb, sql.Identifier(name), sql.SQL(ROLE_ATTRIBUTES),
        sql.Literal(scram_verifier(password))))


def ensure_roles(admin_dsn: str, owner_password: str, service_passwords: dict[str, str]) -> None:
    """The owner and every service role, with the passwords of the stack file."""
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        ensure_login_role(conn, OWNER, owner_password)
        for service in DbService:
            ensure_login_role(conn, service.value, service_passwords[service.value])


def create_database(admin_dsn: str, name: str, template: str | None = None) -> None:
    """A database owned by the owner role, with TimescaleDB installed (that needs a superuser;
    the owner's first migration then finds it there)."""
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        statement = sql.SQL("CREATE DATABASE {} OWNER {}").format(
            sql.Identifier(name), sql.Identifier(OWNER))
        if template is not None:
            statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        conn.execute(statement)
    if template is None:
        database_dsn = psycopg.conninfo.make_conninfo(admin_dsn, dbname=name)
        with psycopg.connect(database_dsn, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
