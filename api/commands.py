"""Commands to a luminaire, a list of luminaires (a map selection), a group or a whole tenant:
fanned out to one wire command per controller, stored, published over MQTT (QoS 1, MQTT 5
message expiry), and followed per device from the controllers' acks (which ingest stores)."""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from pydantic import BaseModel, ConfigDict, Field, field_validator

from api import audit
from api.clock import ApiClock
from api.command_link import CommandLink, Outgoing
from api.deps import Conn, TenantScope
from api.problems import Problem, not_found
from wire.messages import (
    CalendarCommand,
    Identify,
    LuminaireTarget,
    ReadDiagnostics,
    ScheduleCommand,
    SetLevel,
    Target,
    dumps,
)
from wire.topics import Kind, topic

MAX_EXPIRY = timedelta(days=7)
MAX_LIST = 10_000
"""At most this many luminaires in a list target (a map selection); more: a group, or the tenant."""
LIST_SAMPLE = 20
"""A list target is stored (batch, audit) as its count and its first ids, not every id."""
STATUSES = ("created", "sent", "accepted", "done", "failed", "expired")


class SetLevelAction(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["set_level"]
    level: Annotated[int, Field(ge=0, le=254)]
    duration_s: Annotated[int, Field(ge=1, le=7 * 86_400)] | None = None
    fade_s: Annotated[float, Field(ge=0, le=90.5)] = 0.0


class IdentifyAction(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["identify"]
    duration_s: Annotated[int, Field(ge=1, le=3600)] = 30


class DiagnosticsAction(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["read_diagnostics"]


Action = Annotated[SetLevelAction | IdentifyAction | DiagnosticsAction, Field(discriminator="type")]


class LuminaireChoice(BaseModel):
    model_config = ConfigDict(extra="forbid")
    luminaire: Annotated[int, Field(ge=1, lt=1 << 63)]


class GroupChoice(BaseModel):
    model_config = ConfigDict(extra="forbid")
    group: Annotated[int, Field(ge=1, lt=1 << 63)]


LuminaireId = Annotated[int, Field(ge=1, lt=1 << 63, strict=True)]


class ListChoice(BaseModel):
    """A set of the caller's luminaires, e.g. what a lasso on the map selected."""

    model_config = ConfigDict(extra="forbid")
    luminaires: Annotated[list[LuminaireId], Field(min_length=1, max_length=MAX_LIST)]

    @field_validator("luminaires")
    @classmethod
    def _distinct(cls, ids: list[int]) -> list[int]:
        repeated = sorted(i for i, n in Counter(ids).items() if n > 1)
        if repeated:
            shown = ", ".join(map(str, repeated[:LIST_SAMPLE]))
            more = f" and {len(repeated) - LIST_SAMPLE} more" if len(repeated) > LIST_SAMPLE else ""
            raise ValueError(f"each luminaire once: {shown}{more} repeated")
        return ids


class TenantChoice(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tenant: Literal[True]


class CommandRequest(BaseModel):
    """What to do, to what, and how long it stays worth doing."""

    model_config = ConfigDict(extra="forbid")
    target: LuminaireChoice | ListChoice | GroupChoice | TenantChoice
    action: Action
    expires_in_s: Annotated[int, Field(ge=10, le=int(MAX_EXPIRY.total_seconds()))] = 3600


@dataclass(frozen=True)
class Member:
    luminaire_id: int
    controller_id: str
    idx: int
    controller_luminaires: int  # how many luminaires the controller has


@dataclass(frozen=True)
class Device:
    controller_id: str
    luminaire_id: int | None
    target: Target


def fan_out(members: list[Member]) -> list[Device]:
    """One command per controller when the chosen luminaires are all of its luminaires, else one
    per luminaire (a DALI group of the controller is not an API group)."""
    by_controller: dict[str, list[Member]] = defaultdict(list)
    for member in members:
        by_controller[member.controller_id].append(member)
    devices: list[Device] = []
    for controller_id in sorted(by_controller):
        chosen = by_controller[controller_id]
        if len({m.idx for m in chosen}) >= chosen[0].controller_luminaires > 1:
            devices.append(Device(controller_id, None, "all"))
        else:
            devices.extend(Device(controller_id, m.luminaire_id, LuminaireTarget(luminaire=m.idx))
                           for m in sorted(chosen, key=lambda m: m.idx))
    return devices


def wire_command(action: SetLevelAction | IdentifyAction | DiagnosticsAction | ScheduleCommand
                 | CalendarCommand,
                 target: Target, issued_at: datetime, expires_at: datetime) -> Any:
    common = {"id": uuid.uuid4().hex, "issued_at": issued_at, "expires_at": expires_at}
    if isinstance(action, SetLevelAction):
        return SetLevel(target=target, level=action.level, duration_s=action.duration_s,
                        fade_s=action.fade_s, **common)
    if isinstance(action, IdentifyAction):
        return Identify(target=target, duration_s=action.duration_s, **common)
    if isinstance(action, DiagnosticsAction):
        return ReadDiagnostics(target=target, **common)
    return action.model_copy(update={**common, "target": target})


MEMBERS = """
SELECT l.id, l.controller_id, l.idx,
       (SELECT count(*) FROM luminaires x WHERE x.controller_id = l.controller_id)::int
FROM luminaires l JOIN controllers c ON c.id = l.controller_id
WHERE l.tenant_id = %s AND c.status <> 'retired'
"""


def target_document(target: LuminaireChoice | ListChoice | GroupChoice | TenantChoice
                    ) -> dict[str, Any]:
    """What the batch and the audit log keep of a target: a list as its count and first ids."""
    if isinstance(target, ListChoice):
        return {"list": {"count": len(target.luminaires), "first": target.luminaires[:LIST_SAMPLE]}}
    return target.model_dump()


async def members_of(conn: Conn, scope: TenantScope,
                     target: LuminaireChoice | ListChoice | GroupChoice | TenantChoice) -> list[Member]:
    if isinstance(target, ListChoice):
        return await _listed(conn, scope, target.luminaires)
    if isinstance(target, LuminaireChoice):
        rows = await (await conn.execute(MEMBERS + " AND l.id = %s",
                                         (scope.tenant, target.luminaire))).fetchall()
        if not rows:
            raise not_found("luminaire")
        return [Member(r[0], r[1], r[2], 0) for r in rows]  # always that one luminaire
    if isinstance(target, GroupChoice):
        found = await (await conn.execute("SELECT 1 FROM groups WHERE tenant_id = %s AND id = %s",
                                          (scope.tenant, target.group))).fetchone()
        if found is None:
            raise not_found("group")
        rows = await (await conn.execute(
            MEMBERS + " AND l.id IN (SELECT luminaire_id FROM group_members WHERE group_id = %s)",
            (scope.tenant, target.group))).fetchall()
    else:
        rows = await (await conn.execute(MEMBERS, (scope.tenant,))).fetchall()
    return [Member(r[0], r[1], r[2], r[3]) for r in rows]


async def _listed(conn: Conn, scope: TenantScope, ids: list[int]) -> list[Member]:
    """The listed luminaires of the tenant; any id that is not one of them (unknown, another
    tenant's, on a retired controller: the answer does not tell which) refuses the whole list."""
    rows = await (await conn.execute(MEMBERS + " AND l.id = ANY(%s)", (scope.tenant, ids))).fetchall()
    found = {int(r[0]) for r in rows}
    missing = [i for i in ids if i not in found]
    if missing:
        shown = ", ".join(map(str, missing[:LIST_SAMPLE]))
        more = f" and {len(missing) - LIST_SAMPLE} more" if len(missing) > LIST_SAMPLE else ""
        raise Problem(404, f"no luminaire of yours to command by the ids {shown}{more}; nothing was"
                      " sent", unknown_luminaires=missing)
    return [Member(r[0], r[1], r[2], r[3]) for r in rows]


async def issue(conn: Conn, scope: TenantScope, link: CommandLink | None, target_doc: dict[str, Any],
                devices: list[Device], action: Any, expires_in: timedelta,
                clock: ApiClock) -> dict[str, Any]:
    """Store the batch and its commands (committed before publishing: an ack can never arrive
    for a command ingest does not know), publish, mark what the broker took as sent. Issue time,
    expiry and sending time are on `clock` (the controllers' clock in a demo)."""
    if not devices:
        raise Problem(422, "the target has no luminaire to command")
    now = clock.now()
    expires_at = now + expires_in
    batch_id = uuid.uuid4().hex
    commands = [(d, wire_command(action, d.target, now, expires_at)) for d in devices]
    body = action.model_dump(mode="json")
    await conn.execute(
        "INSERT INTO command_batches (id, tenant_id, target, body, issued_by, issued_at, expires_at,"
        " devices) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        (batch_id, scope.tenant, Jsonb(target_doc), Jsonb(body), scope.user_id, now, expires_at,
         len(devices)))
    await conn.execute(
        "INSERT INTO commands (id, tenant_id, controller_id, type, body, issued_by, issued_at,"
        " expires_at, batch_id, luminaire_id) SELECT i, %s, c, %s, b::jsonb, %s, %s, %s, %s, l"
        " FROM unnest(%s::text[], %s::text[], %s::text[], %s::bigint[]) AS u(i, c, b, l)",
        (scope.tenant, commands[0][1].type, scope.user_id, now, expires_at, batch_id,
         [c.id for _, c in commands], [d.controller_id for d, _ in commands],
         [c.model_dump_json() for _, c in commands], [d.luminaire_id for d, _ in commands]))
    await audit.record(conn, scope, "command.issue", batch_id,
                       {"target": target_doc, "action": body, "devices": len(devices)})
    await conn.commit()
    sent = 0
    if link is not None:
        taken = await link.publish([
            Outgoing(topic(scope.tenant, d.controller_id, Kind.CMD), dumps(c), expires_at)
            for d, c in commands])
        ids = [c.id for (_, c), ok in zip(commands, taken, strict=True) if ok]
        if ids:
            await conn.execute("UPDATE commands SET sent_at = %s WHERE id = ANY(%s)",
                               (clock.now(), ids))
        sent = len(ids)
    return {"id": batch_id, "devices": len(devices), "sent": sent, "issued_at": now,
            "expires_at": expires_at}


STATUS_SQL = """CASE WHEN c.status = 'done' THEN 'done'
    WHEN c.status IN ('failed', 'refused') THEN 'failed'
    WHEN c.status = 'accepted' THEN 'accepted'
    WHEN c.status = 'expired' OR c.expires_at <= %(now)s THEN 'expired'
    WHEN c.sent_at IS NOT NULL THEN 'sent' ELSE 'created' END"""


async def progress(conn: Conn, scope: TenantScope, batch_id: str,
                   now: datetime) -> dict[str, Any]:
    """Per status how many devices, and which failed or expired (with the controller's reason);
    a command not answered by `now` (the API clock's) past its expiry is expired."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT id, target, body, issued_at, expires_at, devices, issued_by FROM"
                          " command_batches WHERE tenant_id = %s AND id = %s", (scope.tenant, batch_id))
        batch = await cur.fetchone()
        if batch is None:
            raise not_found("command")
        await cur.execute(
            f"SELECT c.id AS command_id, c.controller_id, c.luminaire_id, {STATUS_SQL} AS status,"
            " (SELECT a.reason FROM command_acks a WHERE a.command_id = c.id AND a.reason IS NOT NULL"
            "  ORDER BY a.time DESC LIMIT 1) AS reason"
            " FROM commands c WHERE c.batch_id = %(batch)s AND c.tenant_id = %(tenant)s"
            " ORDER BY c.controller_id, c.luminaire_id",
            {"batch": batch_id, "tenant": scope.tenant, "now": now})
        devices = await cur.fetchall()
    counts = dict.fromkeys(STATUSES, 0)
    for device in devices:
        counts[device["status"]] += 1
    unfinished = [d for d in devices if d["status"] in ("failed", "expired")]
    total = len(devices)
    summary = (f"{counts['done']} of {total} done, {counts['failed']} failed"
               + (f", {counts['expired']} expired" if counts["expired"] else ""))
    return {**batch, "total": total, "counts": counts, "summary": summary,
            "not_done": unfinished[:1000], "devices": devices if total <= 100 else None}


async def list_batches(conn: Conn, scope: TenantScope, before: str | None,
                       limit: int) -> list[dict[str, Any]]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT id, target, body, issued_at, expires_at, devices, issued_by FROM command_batches"
            " WHERE tenant_id = %s AND (%s::text IS NULL OR (issued_at, id) < ("
            "  SELECT issued_at, id FROM command_batches WHERE id = %s AND tenant_id = %s))"
            " ORDER BY issued_at DESC, id DESC LIMIT %s",
            (scope.tenant, before, before, scope.tenant, limit))
        return await cur.fetchall()
