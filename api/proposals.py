"""The optimiser on demand: a group's proposal, the job's stored one for the same first night when
there is one, else computed now by the job's own code path (rows read here, the optimiser run in a
worker thread); and a plan's night previewed for a group's luminaires."""

from __future__ import annotations

import asyncio
from datetime import date, datetime
from typing import Any

from psycopg.rows import dict_row

from analytics.optimiser import OptimiserError, propose_for_group
from analytics.optimiser_job import (
    DEFAULT_RATED_W,
    GROUP_BY_ID,
    PRESENCE,
    first_night,
    group_row,
    presence_params,
    proposal_inputs,
)
from analytics.photometry import Photometry
from api import group_lighting
from api.deps import Conn, TenantScope
from api.problems import Problem
from api.schedule_preview import Curve, PreviewError, preview
from wire.nights import Plan, Position

HISTORY_DAYS = 28
DESCRIBE_FIRST = "describe the group's lighting first (PUT /groups/{id}/lighting)"

STORED = """
SELECT id, group_id, first_night, last_night, calendar, predicted_kwh, baseline_kwh, nights,
       inputs, created_at
FROM schedule_proposals
WHERE tenant_id = %s AND (%s::bigint IS NULL OR group_id = %s)
  AND (%s::date IS NULL OR first_night = %s)
ORDER BY created_at DESC, id DESC
LIMIT %s
"""


def _nights_wh(nights: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The optimiser's per-night explanations (kWh) in the API's units (Wh)."""
    out = []
    for n in nights:
        energy, baseline = n["energy_kwh"] * 1000.0, n["baseline_kwh"] * 1000.0
        out.append({"night": n["night"], "program": n["program"], "energy_wh": energy,
                    "baseline_wh": baseline, "savings_wh": baseline - energy,
                    "steps": n["steps"]})
    return out


def _stored_out(row: dict[str, Any]) -> dict[str, Any]:
    predicted, baseline = row["predicted_kwh"] * 1000.0, row["baseline_kwh"] * 1000.0
    return {"id": row["id"], "group_id": row["group_id"], "first_night": row["first_night"],
            "last_night": row["last_night"], "body": row["calendar"],
            "predicted_energy_wh": predicted, "baseline_energy_wh": baseline,
            "savings_wh": baseline - predicted, "nights": _nights_wh(row["nights"]),
            "inputs": row["inputs"], "created_at": row["created_at"], "source": "job"}


async def stored(conn: Conn, scope: TenantScope, group_id: int | None, first: date | None,
                 limit: int) -> list[dict[str, Any]]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(STORED, (scope.tenant, group_id, group_id, first, first, limit))
        return [_stored_out(r) for r in await cur.fetchall()]


async def _group(conn: Conn, scope: TenantScope, group_id: int,
                 now: datetime) -> tuple[tuple[Any, ...], list[tuple[Any, ...]]]:
    """The group's row of the job's query and its presence readings; 404 when not ours, 409
    when not described or without a luminaire in service."""
    if await group_lighting.described(conn, scope, group_id) is None:
        raise Problem(409, DESCRIBE_FIRST)
    row = await (await conn.execute(GROUP_BY_ID, (scope.tenant, group_id))).fetchone()
    if row is None:
        raise Problem(409, "the group has no luminaire in service")
    hour = now.replace(minute=0, second=0, microsecond=0)
    readings = await (await conn.execute(PRESENCE, presence_params(row, hour, HISTORY_DAYS))
                      ).fetchall()
    return row, readings


def _compute(row: tuple[Any, ...], readings: list[tuple[Any, ...]], first: date,
             nights: int) -> dict[str, Any]:
    """The CPU part, in a worker thread: the job's group and the optimiser's proposal."""
    built, used = group_row(row, readings)
    proposal = propose_for_group(built.group, first, nights, built.constraints)
    predicted, baseline = proposal.energy_kwh * 1000.0, proposal.baseline_kwh * 1000.0
    return {"id": None, "group_id": int(built.group.id), "first_night": first,
            "last_night": proposal.nights[-1].day,
            "body": proposal.calendar.model_dump(mode="json"),
            "predicted_energy_wh": predicted, "baseline_energy_wh": baseline,
            "savings_wh": baseline - predicted,
            "nights": [{**n, "energy_wh": plan.energy_kwh * 1000.0,
                        "baseline_wh": plan.baseline_kwh * 1000.0,
                        "savings_wh": plan.savings_kwh * 1000.0}
                       for n, plan in zip(_nights_wh(proposal.explanations()), proposal.nights,
                                          strict=True)],
            "inputs": proposal_inputs(built, used), "created_at": None, "source": "on_demand"}


async def propose(conn: Conn, scope: TenantScope, group_id: int, nights: int,
                  now: datetime) -> dict[str, Any]:
    """The job's proposal for this first night and number of nights when stored, else on demand;
    tonight is `now`'s (the API clock's)."""
    row, readings = await _group(conn, scope, group_id, now)
    first = first_night(now, str(row[2]))
    for found in await stored(conn, scope, group_id, first, 1):
        if (found["last_night"] - found["first_night"]).days + 1 == nights:
            return found
    try:
        return await asyncio.to_thread(_compute, row, readings, first, nights)
    except (OptimiserError, ValueError) as exc:
        raise Problem(422, f"the optimiser cannot plan this group: {exc}") from None


GROUP_LUMINAIRES = """
SELECT count(l.id), coalesce(avg(l.rated_power_w), 0), avg(coalesce(l.lat, c.lat)),
       avg(coalesce(l.lon, c.lon))
FROM group_members m JOIN luminaires l ON l.id = m.luminaire_id
JOIN controllers c ON c.id = l.controller_id
WHERE m.group_id = %s AND l.tenant_id = %s AND c.status <> 'retired'
"""


async def preview_night(conn: Conn, scope: TenantScope, group_id: int, plan: Plan,
                        day: date | None, now: datetime) -> tuple[Curve, int]:
    """The plan's night for the group's luminaires in service (their mean rated power and
    position; the described maintenance factor and efficacy, defaults when not described)."""
    lighting = await group_lighting.described(conn, scope, group_id)  # 404 when not ours
    count, rated_w, lat, lon = await (await conn.execute(GROUP_LUMINAIRES, (group_id, scope.tenant))
                                      ).fetchone() or (0, 0, None, None)
    if not count:
        raise Problem(409, "the group has no luminaire in service")
    photometry = Photometry(
        rated_w=min(float(rated_w), 2000.0) or DEFAULT_RATED_W,
        lm_per_w=float(lighting["lm_per_w"]) if lighting else 140.0,
        maintenance_factor=float(lighting["maintenance_factor"]) if lighting else 0.8,
        clo=plan.clo)
    if day is None:
        day = first_night(now, plan.timezone)
    position = Position(float(lat) if lat is not None else 50.85,
                        float(lon) if lon is not None else 4.35)
    try:
        return await asyncio.to_thread(preview, plan, position, day, photometry, int(count)), int(count)
    except PreviewError as exc:
        raise Problem(422, str(exc)) from None
