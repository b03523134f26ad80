"""Commands, faults and schedules: what people do to the installed base."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from api import commands, faults, group_lighting, proposals, schedules
from api.commands import CommandRequest, GroupChoice
from api.deps import ConnDep, Scope
from api.group_lighting import Lighting
from api.pagination import decode_cursor, next_cursor
from api.routes.params import DEFAULT, MAX_ID, Cursor, Id, IdentQuery, Limit, WordQuery
from api.schedules import PlanBody
from wire.messages import Calendar, CalendarCommand, ScheduleCommand, Text

router = APIRouter(prefix="/api/v1", tags=["commands, faults, schedules"])

Status = Literal["created", "sent", "accepted", "done", "failed", "expired"]


class Issued(BaseModel):
    id: str
    devices: int
    sent: int
    issued_at: datetime
    expires_at: datetime


class DeviceStatus(BaseModel):
    command_id: str
    controller_id: str
    luminaire_id: int | None
    status: Status
    reason: str | None


class Progress(BaseModel):
    id: str
    target: dict[str, Any]
    body: dict[str, Any]
    issued_at: datetime
    expires_at: datetime
    issued_by: int | None
    total: int
    counts: dict[Status, int]
    summary: str = Field(description="e.g. '1812 of 1840 done, 28 failed'")
    not_done: list[DeviceStatus] = Field(description="devices failed or expired (first 1,000)")
    devices: list[DeviceStatus] | None = Field(description="every device, for at most 100")


class Batch(BaseModel):
    id: str
    target: dict[str, Any]
    body: dict[str, Any]
    issued_at: datetime
    expires_at: datetime
    devices: int
    issued_by: int | None


class BatchPage(BaseModel):
    items: list[Batch]
    next_cursor: str | None


@router.post("/commands", response_model=Issued, status_code=202)
async def issue(body: CommandRequest, request: Request, conn: ConnDep, scope: Scope) -> Any:
    """Fan out to the controllers, publish; follow it with GET /commands/{id}. The target is one
    luminaire, a list of up to 10,000 of the tenant's luminaires (`{"luminaires": [ids]}`, each
    once; an id not of the tenant refuses the list with 404 naming it in `unknown_luminaires`,
    and nothing is sent), a group or the whole tenant."""
    members = await commands.members_of(conn, scope, body.target)
    issued = await commands.issue(conn, scope, request.app.state.command_link,
                                  commands.target_document(body.target), commands.fan_out(members),
                                  body.action, timedelta(seconds=body.expires_in_s),
                                  request.app.state.clock)
    request.app.state.metrics.commands.inc(issued["sent"])
    return issued


@router.get("/commands", response_model=BatchPage)
async def batches(conn: ConnDep, scope: Scope, cursor: Cursor = None, limit: Limit = DEFAULT) -> Any:
    before = decode_cursor(cursor, str)
    assert before is None or isinstance(before, str)
    items = await commands.list_batches(conn, scope, before, limit)
    return {"items": items, "next_cursor": next_cursor([i["id"] for i in items], limit)}


@router.get("/commands/{batch_id}", response_model=Progress)
async def progress(batch_id: Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")], request: Request,
                   conn: ConnDep, scope: Scope) -> Any:
    return await commands.progress(conn, scope, batch_id, request.app.state.clock.now())


# ----------------------------------------------------------------- faults

FaultState = Literal["open", "acknowledged", "cleared"]


class HistoryEntry(BaseModel):
    at: datetime
    action: str
    user_id: int | None
    text: str
    assignee: int | None


class FaultOut(BaseModel):
    id: int
    kind: str
    severity: str
    state: FaultState
    controller_id: str | None
    luminaire_idx: int | None
    cabinet_id: str | None
    sensor: int | None
    quantity: int | None
    raised_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: int | None
    cleared_at: datetime | None
    cause: str
    assigned_to: int | None
    last_evidence_at: datetime | None


class FaultDetail(FaultOut):
    detail: dict[str, Any]
    history: list[HistoryEntry]


class FaultPage(BaseModel):
    items: list[FaultOut]
    next_cursor: str | None


class Note(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: Annotated[Text, Field(max_length=2000)] = ""


class Comment(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: Annotated[Text, Field(min_length=1, max_length=2000)]


class Assignment(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_id: Annotated[int, Field(ge=1, le=(1 << 63) - 1)] | None


@router.get("/faults", response_model=FaultPage)
async def list_faults(conn: ConnDep, scope: Scope, cursor: Cursor = None, limit: Limit = DEFAULT,
                      state: Annotated[FaultState | None, Query()] = None, kind: WordQuery = None,
                      severity: Annotated[Literal["info", "warning", "critical"] | None, Query()] = None,
                      controller: IdentQuery = None,
                      assigned_to: Annotated[int | None, Query(ge=1, le=(1 << 63) - 1)] = None) -> Any:
    before = decode_cursor(cursor, int)
    assert before is None or isinstance(before, int)
    items = await faults.list_faults(conn, scope, before, limit, state, kind, severity, controller,
                                     assigned_to)
    return {"items": items, "next_cursor": next_cursor([i["id"] for i in items], limit)}


@router.get("/faults/{fault_id}", response_model=FaultDetail)
async def fault(fault_id: Id, conn: ConnDep, scope: Scope) -> Any:
    return await faults.get_fault(conn, scope, fault_id)


@router.post("/faults/{fault_id}/acknowledge", response_model=FaultDetail)
async def acknowledge(fault_id: Id, body: Note, conn: ConnDep, scope: Scope) -> Any:
    return await faults.acknowledge(conn, scope, fault_id, body.text)


@router.post("/faults/{fault_id}/assign", response_model=FaultDetail)
async def assign(fault_id: Id, body: Assignment, conn: ConnDep, scope: Scope) -> Any:
    return await faults.assign(conn, scope, fault_id, body.user_id)


@router.post("/faults/{fault_id}/comments", response_model=FaultDetail, status_code=201)
async def comment(fault_id: Id, body: Comment, conn: ConnDep, scope: Scope) -> Any:
    return await faults.comment(conn, scope, fault_id, body.text)


# ----------------------------------------------------------------- schedules

class ScheduleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[Text, Field(min_length=1, max_length=128)]
    body: PlanBody = Field(description="a calendar (programs, week, special days) or a "
                           "one-profile schedule (steps), stored as sent")


class LastPush(BaseModel):
    """A schedule's newest push: one command batch to the controllers of one of its groups."""

    id: str = Field(description="the command batch (GET /commands/{id} for each device)")
    issued_at: datetime
    group_id: int | None
    total: int
    counts: dict[Status, int]


class ScheduleOut(BaseModel):
    id: int
    name: str
    version: int
    body: PlanBody
    created_at: datetime
    group_ids: list[int] = []
    last_push: LastPush | None = Field(None, description="in the list only: its newest push")


class GroupSchedule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    schedule_id: Annotated[int, Field(ge=1, le=(1 << 63) - 1)] | None


class Push(BaseModel):
    model_config = ConfigDict(extra="forbid")
    expires_in_s: Annotated[int, Field(ge=10, le=7 * 86_400)] = 86_400


class ProposalRequest(BaseModel):
    """What the optimiser is asked: a group and the nights to plan from tonight."""

    model_config = ConfigDict(extra="forbid")
    group_id: Annotated[int, Field(ge=1, le=(1 << 63) - 1)]
    nights: Annotated[int, Field(ge=1, le=31)] = 7


class ProposalStep(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    from_: str = Field(alias="from", description="'sunset' or local HH:MM")
    level: int = Field(description="DALI arc level 0..254")
    light_pct: float
    why: str


class ProposalNight(BaseModel):
    night: date
    program: str
    energy_wh: float
    baseline_wh: float
    savings_wh: float
    steps: list[ProposalStep]


class Proposal(BaseModel):
    """The optimiser's calendar for a group, with its predicted energy against the full-power
    dusk-to-dawn baseline and why each step is where it is."""

    group_id: int
    first_night: date
    last_night: date
    body: Calendar
    predicted_energy_wh: float
    baseline_energy_wh: float
    savings_wh: float
    nights: list[ProposalNight]
    source: Literal["job", "on_demand"] = Field(
        description="job: the optimiser job's stored proposal; on_demand: computed now")
    id: int | None = Field(description="the stored proposal's id (None when on demand)")
    created_at: datetime | None
    inputs: dict[str, Any] = Field(description="class, luminaires, traffic and photometry used")


class LightingOut(Lighting):
    group_id: int
    updated_at: datetime


class PreviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    group_id: Annotated[int, Field(ge=1, le=MAX_ID)]
    body: PlanBody
    night: Annotated[date, Field(ge=date(1970, 1, 1), le=date(2200, 12, 31),
                                 description="local date of the evening; tonight when absent")
                     ] | None = None


class Preview(BaseModel):
    """A night of a plan for a group, minute by minute, as the controllers run it."""

    group_id: int
    night: date
    program: str
    luminaires: int
    sunset: datetime
    sunrise: datetime
    t: list[int] = Field(description="epoch seconds of each minute")
    level: list[int] = Field(description="arc level 0..254 each minute")
    light_pct: list[float]
    power_w: list[float] = Field(description="the group's input power each minute")
    baseline_w: list[float] = Field(description="full power from dusk to dawn")
    energy_wh: float
    baseline_wh: float
    savings_wh: float


@router.get("/schedules", response_model=list[ScheduleOut])
async def list_schedules(request: Request, conn: ConnDep, scope: Scope) -> Any:
    """Every schedule, with the groups it is assigned to and its latest push's progress."""
    return await schedules.list_schedules(conn, scope, request.app.state.clock.now())


@router.post("/schedules", response_model=ScheduleOut, status_code=201)
async def create_schedule(body: ScheduleIn, conn: ConnDep, scope: Scope) -> Any:
    """A new schedule, or the next version of the schedule of that name."""
    return await schedules.create_schedule(conn, scope, body.name, body.body)


@router.get("/schedules/proposals", response_model=list[Proposal])
async def stored_proposals(conn: ConnDep, scope: Scope,
                           group_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
                           limit: Limit = 20) -> Any:
    """The optimiser job's stored proposals, newest first (of one group with `group_id`)."""
    return await proposals.stored(conn, scope, group_id, None, limit)


@router.post("/schedules/proposals", response_model=Proposal)
async def propose(body: ProposalRequest, request: Request, conn: ConnDep, scope: Scope) -> Any:
    """The optimiser's calendar for a group from tonight: the job's stored proposal for that first
    night and number of nights when there is one, else computed now. 409 until the group's
    lighting is described."""
    return await proposals.propose(conn, scope, body.group_id, body.nights,
                                   request.app.state.clock.now())


@router.post("/schedules/preview", response_model=Preview)
async def preview(body: PreviewRequest, request: Request, conn: ConnDep, scope: Scope) -> Any:
    """A schedule's or calendar's night for a group's luminaires: the level and power each minute
    (as the controllers' own schedule code runs it), its energy and the full-power baseline's."""
    curve, count = await proposals.preview_night(conn, scope, body.group_id, body.body, body.night,
                                                 request.app.state.clock.now())
    return {"group_id": body.group_id, "night": curve.day, "program": curve.program,
            "luminaires": count, "sunset": curve.sunset, "sunrise": curve.sunrise,
            "t": curve.t.astype(int).tolist(), "level": curve.level.tolist(),
            "light_pct": curve.light_pct.tolist(),
            "power_w": [round(x, 2) for x in curve.power_w.tolist()],
            "baseline_w": [round(x, 2) for x in curve.baseline_w.tolist()],
            "energy_wh": curve.energy_wh, "baseline_wh": curve.baseline_wh,
            "savings_wh": curve.baseline_wh - curve.energy_wh}


@router.get("/schedules/{schedule_id}", response_model=ScheduleOut)
async def get_schedule(schedule_id: Id, conn: ConnDep, scope: Scope) -> Any:
    return await schedules.get_schedule(conn, scope, schedule_id)


@router.delete("/schedules/{schedule_id}", status_code=204)
async def delete_schedule(schedule_id: Id, conn: ConnDep, scope: Scope) -> None:
    await schedules.delete_schedule(conn, scope, schedule_id)


@router.put("/groups/{group_id}/schedule", status_code=204)
async def assign_schedule(group_id: Id, body: GroupSchedule, conn: ConnDep, scope: Scope) -> None:
    await schedules.assign(conn, scope, group_id, body.schedule_id)


@router.get("/groups/{group_id}/lighting", response_model=LightingOut)
async def get_lighting(group_id: Id, conn: ConnDep, scope: Scope) -> Any:
    """What the optimiser knows of the group's road and luminaires (404 until described)."""
    return await group_lighting.get(conn, scope, group_id)


@router.put("/groups/{group_id}/lighting", response_model=LightingOut)
async def put_lighting(group_id: Id, body: Lighting, conn: ConnDep, scope: Scope) -> Any:
    """Describe the group's lighting for the optimiser (rated class, photometry, step rules)."""
    return await group_lighting.put(conn, scope, group_id, body)


@router.post("/schedules/{schedule_id}/push", response_model=list[Issued], status_code=202)
async def push(schedule_id: Id, body: Push, request: Request, conn: ConnDep, scope: Scope) -> Any:
    """Send the schedule to the controllers of every group it is assigned to, one command each: a
    calendar command for a calendar, a schedule command for a one-profile schedule."""
    plan, group_ids = await schedules.body_of(conn, scope, schedule_id)
    placeholder = {"issued_at": datetime(2020, 1, 1).astimezone(),
                   "expires_at": datetime(2020, 1, 2).astimezone()}
    template: CalendarCommand | ScheduleCommand = (
        CalendarCommand(calendar=plan, **placeholder) if isinstance(plan, Calendar)
        else ScheduleCommand(schedule=plan, **placeholder))
    issued = []
    for group_id in group_ids:
        target = GroupChoice(group=group_id)
        members = await commands.members_of(conn, scope, target)
        if not members:
            continue
        expires_in = timedelta(seconds=body.expires_in_s)
        issued.append(await commands.issue(conn, scope, request.app.state.command_link,
                                           {"group": group_id, "schedule_id": schedule_id},
                                           commands.fan_out(members), template, expires_in,
                                           request.app.state.clock))
        request.app.state.metrics.commands.inc(issued[-1]["sent"])
    return issued
