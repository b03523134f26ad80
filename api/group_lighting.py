"""A group's lighting as the energy manager describes it for the optimiser (`group_lighting`):
its rated EN 13201 class, design photometry at 100 % and the rules of its dimming steps."""

from __future__ import annotations

from typing import Annotated, Any

from psycopg.rows import dict_row
from pydantic import BaseModel, ConfigDict, Field

from api import audit
from api.deps import Conn, TenantScope
from api.problems import Problem, not_found

COLUMNS = ("rated_class", "design_at_full", "maintenance_factor", "lm_per_w", "clo", "max_steps",
           "min_step_min", "presence_hold_s", "presence_adaptive")


class Lighting(BaseModel):
    """What the optimiser needs to know of a group's road and luminaires."""

    model_config = ConfigDict(extra="forbid")
    rated_class: Annotated[str, Field(pattern=r"^(M[1-6]|C[0-5]|P[1-6])$",
                                      description="EN 13201 class the road is rated for")]
    design_at_full: Annotated[float, Field(gt=0, le=1000, allow_inf_nan=False,
                                           description="cd/m² (M) or lx (C, P) at 100 %, new")]
    maintenance_factor: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] = 0.8
    lm_per_w: Annotated[float, Field(gt=0, le=300, allow_inf_nan=False)] = 140.0
    clo: bool = False
    max_steps: Annotated[int, Field(ge=0, le=46)] = 4
    min_step_min: Annotated[int, Field(ge=15, le=720)] = 60
    presence_hold_s: Annotated[int, Field(ge=1, le=3600)] | None = None
    presence_adaptive: bool = False


async def _group_exists(conn: Conn, scope: TenantScope, group_id: int) -> None:
    found = await (await conn.execute("SELECT 1 FROM groups WHERE tenant_id = %s AND id = %s",
                                      (scope.tenant, group_id))).fetchone()
    if found is None:
        raise not_found("group")


SELECT = ("SELECT gl.group_id, " + ", ".join(f"gl.{c}" for c in COLUMNS) + ", gl.updated_at"
          " FROM group_lighting gl JOIN groups g ON g.id = gl.group_id"
          " WHERE g.tenant_id = %s AND gl.group_id = %s")


async def described(conn: Conn, scope: TenantScope, group_id: int) -> dict[str, Any] | None:
    """The group's description, or None when it has none (404 when the group is not ours)."""
    await _group_exists(conn, scope, group_id)
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(SELECT, (scope.tenant, group_id))
        return await cur.fetchone()


async def get(conn: Conn, scope: TenantScope, group_id: int) -> dict[str, Any]:
    found = await described(conn, scope, group_id)
    if found is None:
        raise Problem(404, "this group's lighting is not described yet "
                      "(PUT /groups/{id}/lighting)")
    return found


async def put(conn: Conn, scope: TenantScope, group_id: int, body: Lighting) -> dict[str, Any]:
    await _group_exists(conn, scope, group_id)
    values = body.model_dump()
    await conn.execute(
        "INSERT INTO group_lighting (group_id, " + ", ".join(COLUMNS) + ") VALUES (%s, "
        + ", ".join(["%s"] * len(COLUMNS)) + ") ON CONFLICT (group_id) DO UPDATE SET "
        + ", ".join(f"{c} = excluded.{c}" for c in COLUMNS) + ", updated_at = now()",
        (group_id, *(values[c] for c in COLUMNS)))
    await audit.record(conn, scope, "group.lighting", str(group_id), values)
    return await get(conn, scope, group_id)
