"""Controllers, luminaires (with GeoJSON and bulk import), cabinets, supply points and groups."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from api import inventory
from api.deps import ConnDep, Scope, StreamConnDep
from api.inventory_import import parse_csv, parse_geojson
from api.pagination import decode_cursor, next_cursor
from api.problems import Problem
from api.routes.etags import etag_json
from api.routes.params import DEFAULT, IDENT, Cursor, Id, IdentPath, IdentQuery, Limit, WordQuery
from wire.messages import Text

router = APIRouter(prefix="/api/v1", tags=["assets"])

Lat = Annotated[float, Field(ge=-90, le=90)]
Lon = Annotated[float, Field(ge=-180, le=180)]
IdentField = Annotated[str, Field(pattern=IDENT)]
Watts = Annotated[float, Field(ge=0, le=10_000), AfterValidator(lambda w: round(w, 3))]
"""Stored as a PostgreSQL real: milliwatts are plenty, and 1e-300 would underflow."""


class ControllerOut(BaseModel):
    id: str
    cabinet_id: str | None
    pole_id: str | None
    lat: float | None
    lon: float | None
    firmware: str | None
    status: Literal["unprovisioned", "active", "retired"]
    online: bool
    last_seen: datetime | None
    created_at: datetime


class ControllerCreated(ControllerOut):
    claim_code: str = Field(description="for `luciole provision`; shown this once only")


class ControllerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: IdentField
    cabinet_id: IdentField | None = None
    pole_id: Annotated[Text, Field(min_length=1, max_length=64)] | None = None
    lat: Lat | None = None
    lon: Lon | None = None


class ControllerPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cabinet_id: IdentField | None = None
    pole_id: Annotated[Text, Field(min_length=1, max_length=64)] | None = None
    lat: Lat | None = None
    lon: Lon | None = None


class ControllerPage(BaseModel):
    items: list[ControllerOut]
    next_cursor: str | None


class ClaimCode(BaseModel):
    controller_id: str
    claim_code: str


class Check(BaseModel):
    name: str
    ok: bool
    detail: str


class Checklist(BaseModel):
    controller_id: str
    checks: list[Check]


class LuminaireOut(BaseModel):
    id: int
    controller_id: str
    idx: int
    model: str | None
    gtin: str | None
    serial: str | None
    rated_power_w: float | None
    lat: float | None
    lon: float | None
    road_class: str | None
    installed_at: datetime | None


class LuminairePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: Annotated[Text, Field(max_length=128)] | None = None
    gtin: Annotated[str, Field(pattern=r"^[0-9]{8,14}$")] | None = None
    serial: Annotated[Text, Field(max_length=64)] | None = None
    rated_power_w: Watts | None = None
    lat: Lat | None = None
    lon: Lon | None = None
    road_class: Annotated[Text, Field(max_length=16)] | None = None
    installed_at: AwareDatetime | None = None


class LuminaireIn(LuminairePatch):
    controller_id: IdentField
    idx: Annotated[int, Field(ge=0, le=1023)]


class LuminairePage(BaseModel):
    items: list[LuminaireOut]
    next_cursor: str | None


class ImportError_(BaseModel):
    line: int = Field(description="CSV line (the header is line 1) or GeoJSON feature number")
    reason: str


class ImportReport(BaseModel):
    imported: int
    controllers_created: int
    errors: list[ImportError_]


class CabinetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: IdentField
    supply_point_ean: Annotated[str, Field(pattern=r"^[0-9]{18}$")] | None = None
    name: Annotated[Text, Field(max_length=128)] = ""
    lat: Lat | None = None
    lon: Lon | None = None
    switched_supply: bool = False


class CabinetOut(BaseModel):
    id: str
    supply_point_ean: str | None
    name: str
    lat: float | None
    lon: float | None
    switched_supply: bool


class SupplyPointIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ean: Annotated[str, Field(pattern=r"^[0-9]{18}$")]
    name: Annotated[Text, Field(min_length=1, max_length=128)]
    contracted_kw: Annotated[float, Field(gt=0, le=100_000)] | None = None


class SupplyPointOut(BaseModel):
    ean: str
    name: str
    contracted_kw: float | None


class GroupIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[Text, Field(min_length=1, max_length=128)]


class GroupSummary(BaseModel):
    id: int
    name: str
    members: int
    schedule_id: int | None


class GroupOut(BaseModel):
    id: int
    name: str
    schedule_id: int | None
    luminaire_ids: list[int]


class Members(BaseModel):
    model_config = ConfigDict(extra="forbid")
    luminaire_ids: Annotated[list[Annotated[int, Field(ge=1, le=(1 << 63) - 1)]],
                             Field(max_length=200_000)]


def _str_cursor(cursor: str | None) -> str | None:
    key = decode_cursor(cursor, str)
    assert key is None or isinstance(key, str)
    return key


def _int_cursor(cursor: str | None) -> int | None:
    key = decode_cursor(cursor, int)
    assert key is None or isinstance(key, int)
    return key


# ----------------------------------------------------------------- controllers

@router.get("/controllers", response_model=ControllerPage)
async def controllers(conn: ConnDep, scope: Scope, cursor: Cursor = None, limit: Limit = DEFAULT,
                      cabinet: IdentQuery = None,
                      status: Annotated[Literal["unprovisioned", "active", "retired"] | None,
                                        Query()] = None) -> Any:
    items = await inventory.list_controllers(conn, scope, _str_cursor(cursor), limit, cabinet, status)
    return {"items": items, "next_cursor": next_cursor([i["id"] for i in items], limit)}


@router.post("/controllers", response_model=ControllerCreated, status_code=201)
async def create_controller(body: ControllerIn, conn: ConnDep, scope: Scope) -> Any:
    return await inventory.create_controller(conn, scope, body.model_dump())


@router.get("/controllers/{controller_id}", response_model=ControllerOut)
async def controller(controller_id: IdentPath, request: Request, conn: ConnDep, scope: Scope) -> Any:
    return etag_json(request, ControllerOut(**await inventory.get_controller(conn, scope, controller_id)))


@router.patch("/controllers/{controller_id}", response_model=ControllerOut)
async def update_controller(controller_id: IdentPath, body: ControllerPatch, conn: ConnDep,
                            scope: Scope) -> Any:
    return await inventory.update_controller(conn, scope, controller_id,
                                             body.model_dump(exclude_unset=True))


@router.delete("/controllers/{controller_id}", status_code=204)
async def retire_controller(controller_id: IdentPath, conn: ConnDep, scope: Scope) -> Response:
    await inventory.delete_controller(conn, scope, controller_id)
    return Response(status_code=204)


@router.post("/controllers/{controller_id}/claim-code", response_model=ClaimCode, status_code=201)
async def claim_code(controller_id: IdentPath, conn: ConnDep, scope: Scope) -> Any:
    return {"controller_id": controller_id,
            "claim_code": await inventory.new_claim(conn, scope, controller_id)}


@router.get("/controllers/{controller_id}/checklist", response_model=Checklist)
async def checklist(controller_id: IdentPath, conn: ConnDep, scope: Scope) -> Any:
    return await inventory.checklist(conn, scope, controller_id)


# ----------------------------------------------------------------- luminaires

@router.get("/luminaires", response_model=LuminairePage)
async def luminaires(conn: ConnDep, scope: Scope, cursor: Cursor = None, limit: Limit = DEFAULT,
                     controller: IdentQuery = None, road_class: WordQuery = None) -> Any:
    items = await inventory.list_luminaires(conn, scope, _int_cursor(cursor), limit, controller,
                                            road_class)
    return {"items": items, "next_cursor": next_cursor([i["id"] for i in items], limit)}


@router.post("/luminaires", response_model=LuminaireOut, status_code=201)
async def create_luminaire(body: LuminaireIn, conn: ConnDep, scope: Scope) -> Any:
    return await inventory.create_luminaire(conn, scope, body.model_dump(exclude_unset=True))


@router.get("/luminaires.geojson", response_class=StreamingResponse,
            responses={200: {"content": {"application/geo+json": {}}}})
async def luminaires_geojson(conn: StreamConnDep, scope: Scope,
                             controller: IdentQuery = None) -> StreamingResponse:
    """Every luminaire of the tenant as a GeoJSON FeatureCollection, with its live level (streamed
    in id order)."""
    return StreamingResponse(inventory.luminaires_geojson(conn, scope, controller),
                             media_type="application/geo+json")


@router.get("/map/luminaires", responses={200: {"content": {"application/json": {}}}})
async def map_luminaires(conn: ConnDep, scope: Scope) -> Response:
    """The tenant's located luminaires as columns for the dashboard's map: `id`, `lon`, `lat`,
    `controller_id`, `idx`, `level` (null: no reading yet) and `online`, arrays of one length in
    id order."""
    return Response(await inventory.map_columns(conn, scope), media_type="application/json")


@router.post("/luminaires/import", response_model=ImportReport,
             openapi_extra={"requestBody": {"required": True, "content": {
                 "text/csv": {"schema": {"type": "string"}},
                 "application/geo+json": {"schema": {"type": "object"}}}}})
async def import_luminaires(request: Request, conn: ConnDep, scope: Scope,
                            atomic: Annotated[bool, Query()] = False) -> Any:
    """A CSV (header: some of api.inventory_import.COLUMNS) or a GeoJSON FeatureCollection of
    Points; every bad row comes back with its line and reason; `atomic` imports nothing then."""
    limit = request.app.state.settings.max_import_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise Problem(413, f"at most {limit} bytes per import")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Problem(413, f"at most {limit} bytes per import")
        chunks.append(chunk)
    try:
        text = b"".join(chunks).decode("utf-8-sig")
    except UnicodeDecodeError:
        raise Problem(422, "the file is not UTF-8 text") from None
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind in ("text/csv", "text/plain"):
        parsed = parse_csv(text)
    elif kind in ("application/geo+json", "application/json"):
        parsed = parse_geojson(text)
    else:
        raise Problem(415, "send text/csv or application/geo+json")
    return await inventory.import_luminaires(conn, scope, parsed, atomic)


@router.get("/luminaires/{luminaire_id}", response_model=LuminaireOut)
async def luminaire(luminaire_id: Id, request: Request, conn: ConnDep, scope: Scope) -> Any:
    return etag_json(request, LuminaireOut(**await inventory.get_luminaire(conn, scope, luminaire_id)))


@router.patch("/luminaires/{luminaire_id}", response_model=LuminaireOut)
async def update_luminaire(luminaire_id: Id, body: LuminairePatch, conn: ConnDep, scope: Scope) -> Any:
    return await inventory.update_luminaire(conn, scope, luminaire_id, body.model_dump(exclude_unset=True))


@router.delete("/luminaires/{luminaire_id}", status_code=204)
async def delete_luminaire(luminaire_id: Id, conn: ConnDep, scope: Scope) -> Response:
    await inventory.delete_luminaire(conn, scope, luminaire_id)
    return Response(status_code=204)


# ----------------------------------------------------------------- cabinets, supply points

@router.get("/cabinets", response_model=list[CabinetOut])
async def cabinets(conn: ConnDep, scope: Scope) -> Any:
    return await inventory.list_cabinets(conn, scope)


@router.post("/cabinets", response_model=CabinetOut, status_code=201)
async def create_cabinet(body: CabinetIn, conn: ConnDep, scope: Scope) -> Any:
    return await inventory.create_cabinet(conn, scope, body.model_dump())


@router.get("/cabinets/{cabinet_id}", response_model=CabinetOut)
async def cabinet(cabinet_id: IdentPath, conn: ConnDep, scope: Scope) -> Any:
    return await inventory.get_cabinet(conn, scope, cabinet_id)


@router.delete("/cabinets/{cabinet_id}", status_code=204)
async def delete_cabinet(cabinet_id: IdentPath, conn: ConnDep, scope: Scope) -> Response:
    await inventory.delete_cabinet(conn, scope, cabinet_id)
    return Response(status_code=204)


@router.get("/supply-points", response_model=list[SupplyPointOut])
async def supply_points(conn: ConnDep, scope: Scope) -> Any:
    return await inventory.list_supply_points(conn, scope)


@router.post("/supply-points", response_model=SupplyPointOut, status_code=201)
async def create_supply_point(body: SupplyPointIn, conn: ConnDep, scope: Scope) -> Any:
    return await inventory.create_supply_point(conn, scope, body.model_dump())


# ----------------------------------------------------------------- groups

@router.get("/groups", response_model=list[GroupSummary])
async def groups(conn: ConnDep, scope: Scope) -> Any:
    return await inventory.list_groups(conn, scope)


@router.post("/groups", response_model=GroupOut, status_code=201)
async def create_group(body: GroupIn, conn: ConnDep, scope: Scope) -> Any:
    return await inventory.create_group(conn, scope, body.name)


@router.get("/groups/{group_id}", response_model=GroupOut)
async def group(group_id: Id, conn: ConnDep, scope: Scope) -> Any:
    return await inventory.get_group(conn, scope, group_id)


@router.delete("/groups/{group_id}", status_code=204)
async def delete_group(group_id: Id, conn: ConnDep, scope: Scope) -> Response:
    await inventory.delete_group(conn, scope, group_id)
    return Response(status_code=204)


@router.put("/groups/{group_id}/members", response_model=GroupOut)
async def set_members(group_id: Id, body: Members, conn: ConnDep, scope: Scope) -> Any:
    return await inventory.set_members(conn, scope, group_id, body.luminaire_ids)


