"""The audit log: every command, change and login, written in the transaction of what it records."""

from __future__ import annotations

from typing import Any

from psycopg.types.json import Jsonb

from api.deps import Conn, TenantScope

INSERT = """INSERT INTO audit_log (tenant_id, user_id, key_id, action, target, detail, remote)
            VALUES (%s, %s, %s, %s, %s, %s, %s)"""


async def record(conn: Conn, scope: TenantScope, action: str, target: str = "",
                 detail: dict[str, Any] | None = None) -> None:
    await conn.execute(INSERT, (scope.tenant, scope.principal.user_id, scope.principal.key_id,
                                action, target, Jsonb(detail or {}), scope.remote))


async def record_login(conn: Conn, tenant: str | None, user_id: int | None, email: str, ok: bool,
                       remote: str, why: str) -> None:
    await conn.execute(INSERT, (tenant, user_id, None, "login" if ok else "login_failed",
                                email, Jsonb({"why": why} if why else {}), remote))
