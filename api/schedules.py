"""Schedules of a tenant: versions of a body that is a `wire.messages.Calendar` (weekday programs,
special days) or a one-profile `wire.messages.Schedule` (stored as sent), assigned to groups,
pushed to the controllers of those groups as calendar or schedule commands."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from pydantic import Discriminator, Tag, TypeAdapter

from api import audit
from api.commands import STATUS_SQL, STATUSES
from api.deps import Conn, TenantScope
from api.problems import Problem, not_found
from wire.messages import Calendar, Schedule


def _kind(value: Any) -> str:
    """A body with `programs` or `week` is a calendar; anything else is read as a schedule."""
    if isinstance(value, dict):
        return "calendar" if ("programs" in value or "week" in value) else "schedule"
    return "calendar" if isinstance(value, Calendar) else "schedule"


PlanBody = Annotated[Annotated[Calendar, Tag("calendar")] | Annotated[Schedule, Tag("schedule")],
                     Discriminator(_kind)]
"""A schedule's body: a calendar, or a one-profile schedule (kept as sent: it is pushed as a
schedule command, which the agent runs as a calendar of one program every night)."""
PLAN = TypeAdapter(PlanBody)


async def _rows(conn: Conn, sql: str, params: tuple[Any, ...] | dict[str, Any]) -> list[dict[str, Any]]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(sql, params)
        return await cur.fetchall()


LIST = """
SELECT s.id, s.name, s.version, s.body, s.created_at,
       coalesce((SELECT array_agg(gs.group_id ORDER BY gs.group_id) FROM group_schedules gs
                 WHERE gs.schedule_id = s.id), '{}') AS group_ids,
       p.id AS push_id, p.issued_at AS push_at, p.target AS push_target
FROM schedules s
LEFT JOIN LATERAL (
    SELECT b.id, b.issued_at, b.target FROM command_batches b
    WHERE b.tenant_id = s.tenant_id AND b.target->>'schedule_id' = s.id::text
    ORDER BY b.issued_at DESC, b.id DESC LIMIT 1) p ON true
WHERE s.tenant_id = %(tenant)s
ORDER BY s.name, s.version
"""
PUSH_COUNTS = f"""
SELECT c.batch_id, {STATUS_SQL} AS status, count(*)
FROM commands c WHERE c.tenant_id = %(tenant)s AND c.batch_id = ANY(%(batches)s)
GROUP BY 1, 2
"""


async def list_schedules(conn: Conn, scope: TenantScope, now: datetime) -> list[dict[str, Any]]:
    """Every schedule with the groups it is assigned to and its latest push (the newest command
    batch that pushed it: when, to which group, and its devices per status on `now`, the API
    clock's), so a list shows what runs where and whether it arrived."""
    rows = await _rows(conn, LIST, {"tenant": scope.tenant})
    batches = [r["push_id"] for r in rows if r["push_id"] is not None]
    counts: dict[str, dict[str, int]] = {b: dict.fromkeys(STATUSES, 0) for b in batches}
    if batches:
        for batch, status, n in await (await conn.execute(PUSH_COUNTS, {
                "tenant": scope.tenant, "batches": batches, "now": now})).fetchall():
            counts[batch][status] = int(n)
    out = []
    for r in rows:
        batch, at, target = r.pop("push_id"), r.pop("push_at"), r.pop("push_target")
        r["last_push"] = None if batch is None else {
            "id": batch, "issued_at": at, "group_id": target.get("group"),
            "total": sum(counts[batch].values()), "counts": counts[batch]}
        out.append(r)
    return out


async def get_schedule(conn: Conn, scope: TenantScope, schedule_id: int) -> dict[str, Any]:
    rows = await _rows(conn, "SELECT id, name, version, body, created_at FROM schedules"
                       " WHERE tenant_id = %s AND id = %s", (scope.tenant, schedule_id))
    if not rows:
        raise not_found("schedule")
    groups = await (await conn.execute("SELECT group_id FROM group_schedules WHERE schedule_id = %s"
                                       " ORDER BY group_id", (schedule_id,))).fetchall()
    return {**rows[0], "group_ids": [g[0] for g in groups]}


async def create_schedule(conn: Conn, scope: TenantScope, name: str,
                          body: Calendar | Schedule) -> dict[str, Any]:
    """A schedule's first version, or the next version of the schedule of that name."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"{scope.tenant}/{name}",))
    rows = await _rows(
        conn, "INSERT INTO schedules (tenant_id, name, version, body) SELECT %s, %s,"
        " coalesce(max(version), 0) + 1, %s FROM schedules WHERE tenant_id = %s AND name = %s"
        " RETURNING id, name, version, body, created_at",
        (scope.tenant, name, Jsonb(body.model_dump(mode="json")), scope.tenant, name))
    await audit.record(conn, scope, "schedule.create", name, {"version": rows[0]["version"]})
    return {**rows[0], "group_ids": []}


async def delete_schedule(conn: Conn, scope: TenantScope, schedule_id: int) -> None:
    row = await (await conn.execute("DELETE FROM schedules WHERE tenant_id = %s AND id = %s"
                                    " RETURNING name", (scope.tenant, schedule_id))).fetchone()
    if row is None:
        raise not_found("schedule")
    await audit.record(conn, scope, "schedule.delete", str(schedule_id))


async def assign(conn: Conn, scope: TenantScope, group_id: int, schedule_id: int | None) -> None:
    group = await (await conn.execute("SELECT 1 FROM groups WHERE tenant_id = %s AND id = %s",
                                      (scope.tenant, group_id))).fetchone()
    if group is None:
        raise not_found("group")
    if schedule_id is None:
        await conn.execute("DELETE FROM group_schedules WHERE group_id = %s", (group_id,))
    else:
        found = await (await conn.execute("SELECT 1 FROM schedules WHERE tenant_id = %s AND id = %s",
                                          (scope.tenant, schedule_id))).fetchone()
        if found is None:
            raise Problem(404, "no schedule of yours has that id")
        await conn.execute(
            "INSERT INTO group_schedules (group_id, schedule_id, assigned_by) VALUES (%s, %s, %s)"
            " ON CONFLICT (group_id) DO UPDATE SET schedule_id = excluded.schedule_id,"
            " assigned_at = now(), assigned_by = excluded.assigned_by",
            (group_id, schedule_id, scope.user_id))
    await audit.record(conn, scope, "group.schedule", str(group_id), {"schedule_id": schedule_id})


async def body_of(conn: Conn, scope: TenantScope,
                  schedule_id: int) -> tuple[Calendar | Schedule, list[int]]:
    found = await get_schedule(conn, scope, schedule_id)
    if not found["group_ids"]:
        raise Problem(409, "this schedule is assigned to no group; assign it first")
    return PLAN.validate_python(found["body"]), found["group_ids"]
