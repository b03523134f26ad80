"""A tenant's faults: list and filter, acknowledge, assign, comment, with their history."""

from __future__ import annotations

from typing import Any

from psycopg.rows import dict_row

from api import audit
from api.deps import Conn, TenantScope
from api.problems import Problem, not_found

COLUMNS = ("f.id, f.kind, f.severity, f.controller_id, f.luminaire_idx, f.cabinet_id, f.sensor,"
           " f.quantity, f.raised_at, f.acknowledged_at, f.acknowledged_by, f.cleared_at, f.cause,"
           " f.assigned_to, f.last_evidence_at,"
           " CASE WHEN f.cleared_at IS NOT NULL THEN 'cleared' WHEN f.acknowledged_at IS NOT NULL"
           " THEN 'acknowledged' ELSE 'open' END AS state")


async def _rows(conn: Conn, sql: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(sql, params)
        return await cur.fetchall()


async def list_faults(conn: Conn, scope: TenantScope, before: int | None, limit: int, state: str | None,
                      kind: str | None, severity: str | None, controller: str | None,
                      assigned_to: int | None) -> list[dict[str, Any]]:
    return await _rows(
        conn, f"SELECT {COLUMNS} FROM faults f WHERE f.tenant_id = %s"
        " AND (%s::bigint IS NULL OR f.id < %s)"
        " AND (%s::text IS NULL OR %s = CASE WHEN f.cleared_at IS NOT NULL THEN 'cleared'"
        "      WHEN f.acknowledged_at IS NOT NULL THEN 'acknowledged' ELSE 'open' END)"
        " AND (%s::text IS NULL OR f.kind = %s) AND (%s::text IS NULL OR f.severity = %s)"
        " AND (%s::text IS NULL OR f.controller_id = %s)"
        " AND (%s::bigint IS NULL OR f.assigned_to = %s) ORDER BY f.id DESC LIMIT %s",
        (scope.tenant, before, before, state, state, kind, kind, severity, severity, controller,
         controller, assigned_to, assigned_to, limit))


async def get_fault(conn: Conn, scope: TenantScope, fault_id: int) -> dict[str, Any]:
    rows = await _rows(conn, f"SELECT {COLUMNS}, f.detail FROM faults f WHERE f.tenant_id = %s"
                       " AND f.id = %s", (scope.tenant, fault_id))
    if not rows:
        raise not_found("fault")
    fault = rows[0]
    notes = await _rows(conn, "SELECT at, user_id, action, text, assignee FROM fault_notes"
                        " WHERE fault_id = %s ORDER BY at, id", (fault_id,))
    history: list[dict[str, Any]] = [{"at": fault["raised_at"], "action": "raised", "user_id": None,
                                      "text": fault["cause"], "assignee": None}]
    history += notes
    if fault["cleared_at"] is not None:
        history.append({"at": fault["cleared_at"], "action": "cleared", "user_id": None, "text": "",
                        "assignee": None})
    history.sort(key=lambda h: h["at"])
    return {**fault, "history": history}


async def _lock(conn: Conn, scope: TenantScope, fault_id: int) -> tuple[Any, ...]:
    row = await (await conn.execute("SELECT id, acknowledged_at FROM faults WHERE tenant_id = %s"
                                    " AND id = %s FOR UPDATE", (scope.tenant, fault_id))).fetchone()
    if row is None:
        raise not_found("fault")
    return tuple(row)


async def acknowledge(conn: Conn, scope: TenantScope, fault_id: int, text: str) -> dict[str, Any]:
    _, acknowledged_at = await _lock(conn, scope, fault_id)
    if acknowledged_at is not None:
        raise Problem(409, "this fault is already acknowledged")
    await conn.execute("UPDATE faults SET acknowledged_at = now(), acknowledged_by = %s WHERE id = %s",
                       (scope.user_id, fault_id))
    await conn.execute("INSERT INTO fault_notes (fault_id, user_id, action, text) VALUES"
                       " (%s, %s, 'acknowledged', %s)", (fault_id, scope.user_id, text))
    await audit.record(conn, scope, "fault.acknowledge", str(fault_id))
    return await get_fault(conn, scope, fault_id)


async def assign(conn: Conn, scope: TenantScope, fault_id: int, user_id: int | None) -> dict[str, Any]:
    await _lock(conn, scope, fault_id)
    if user_id is not None:
        found = await (await conn.execute("SELECT 1 FROM users WHERE tenant_id = %s AND id = %s"
                                          " AND disabled_at IS NULL", (scope.tenant, user_id))).fetchone()
        if found is None:
            raise Problem(404, "no active user of yours has that id")
    await conn.execute("UPDATE faults SET assigned_to = %s WHERE id = %s", (user_id, fault_id))
    await conn.execute("INSERT INTO fault_notes (fault_id, user_id, action, assignee) VALUES"
                       " (%s, %s, 'assigned', %s)", (fault_id, scope.user_id, user_id))
    await audit.record(conn, scope, "fault.assign", str(fault_id), {"assignee": user_id})
    return await get_fault(conn, scope, fault_id)


async def comment(conn: Conn, scope: TenantScope, fault_id: int, text: str) -> dict[str, Any]:
    await _lock(conn, scope, fault_id)
    await conn.execute("INSERT INTO fault_notes (fault_id, user_id, action, text) VALUES"
                       " (%s, %s, 'comment', %s)", (fault_id, scope.user_id, text))
    await audit.record(conn, scope, "fault.comment", str(fault_id))
    return await get_fault(conn, scope, fault_id)
