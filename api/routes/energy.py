"""Energy per luminaire, group, municipality and supply point; the grid operator's routes."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel

from api import energy
from api import energy_report as rep
from api import settlement_files as settlement_files_store
from api.deps import ConnDep, Grid, Scope
from api.pagination import decode_cursor, next_cursor
from api.problems import Problem
from api.routes.etags import json_response
from api.routes.params import DEFAULT, Cursor, Ean, From, Id, Limit, To
from api.timeseries import time_range

router = APIRouter(prefix="/api/v1", tags=["energy"])
grid_router = APIRouter(prefix="/api/v1/grid", tags=["grid operator"])

Interval = Annotated[Literal["15min", "hour", "day", "month"] | None, Query(
    description="bucket width; chosen from the range when absent (the finest giving at most "
                f"{rep.AUTO_BUCKETS} buckets); a range giving more than {rep.MAX_BUCKETS} is a 422")]


class EnergyFigures(BaseModel):
    """What a bucket and a whole report both tell: the split by source, the baseline, the
    savings, euros and CO2."""

    measured_wh: float | None = None
    estimated_wh: float | None = None
    default_wh: float | None = None
    measured_intervals: int | None = None
    estimated_intervals: int | None = None
    baseline_wh: float | None = None
    full_power_wh: float | None = None
    savings_wh: float | None = None
    savings_ratio: float | None = None
    cost_eur: float | None = None
    co2_kg: float | None = None
    savings_eur: float | None = None
    savings_co2_kg: float | None = None


class EnergyInterval(EnergyFigures):
    """One bucket. `estimated`: it holds estimated or default energy."""

    start: datetime
    end: datetime | None = None
    energy_wh: float
    estimated: bool


class FactorOut(BaseModel):
    valid_from: date
    value: float
    unit: str
    basis: str
    year: int
    source: str


class EnergyReport(EnergyFigures):
    start: datetime
    end: datetime
    interval: Literal["15min", "hour", "day", "month"] | None = None
    interval_s: int | None
    timezone: str | None = None
    energy_wh: float
    intervals: list[EnergyInterval]
    baseline_regime: str | None = None
    tariff: FactorOut | None = None
    emission: FactorOut | None = None
    ean: str | None = None


class GridSupplyPoint(BaseModel):
    ean: str
    tenant: str
    name: str
    contracted_kw: float | None


class GridSupplyPage(BaseModel):
    items: list[GridSupplyPoint]
    next_cursor: str | None


class SettlementInterval(BaseModel):
    start: datetime
    energy_wh: float | None
    quality: Literal["measured", "estimated", "missing"]


class Settlement(BaseModel):
    ean: str
    day: date
    timezone: str
    version: int
    energy_wh: float
    complete: bool
    intervals: list[SettlementInterval]


def _range(start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    span = time_range(start, end, datetime.now(UTC))
    return span.start, span.end


def _out(report: dict[str, Any]) -> Response:
    """The report in its response_model's shape, serialised once by orjson (up to 3,000 buckets:
    validating them again through pydantic cost more than reading them)."""
    start, end = report.pop("from"), report.pop("to")
    return json_response({"ean": None, **report, "start": start, "end": end})


@router.get("/energy/luminaires/{luminaire_id}", response_model=EnergyReport)
async def luminaire(luminaire_id: Id, conn: ConnDep, scope: Scope, start: From = None, end: To = None,
                    interval: Interval = None) -> Any:
    return _out(await energy.for_luminaire(conn, scope, luminaire_id, *_range(start, end), interval))


@router.get("/energy/groups/{group_id}", response_model=EnergyReport)
async def group(group_id: Id, conn: ConnDep, scope: Scope, start: From = None, end: To = None,
                interval: Interval = None) -> Any:
    return _out(await energy.for_group(conn, scope, group_id, *_range(start, end), interval))


@router.get("/energy/municipality", response_model=EnergyReport)
async def municipality(conn: ConnDep, scope: Scope, start: From = None, end: To = None,
                       interval: Interval = None) -> Any:
    return _out(await energy.for_municipality(conn, scope, *_range(start, end), interval))


@router.get("/energy/supply-points/{ean}", response_model=EnergyReport)
async def supply_point(ean: Ean, conn: ConnDep, scope: Scope, start: From = None, end: To = None,
                       interval: Interval = None) -> Any:
    return _out(await energy.for_supply_point(conn, scope, ean, *_range(start, end), interval))


@grid_router.get("/supply-points", response_model=GridSupplyPage)
async def grid_supply_points(conn: ConnDep, grid: Grid, cursor: Cursor = None,
                             limit: Limit = DEFAULT) -> Any:
    after = decode_cursor(cursor, str)
    assert after is None or isinstance(after, str)
    items = await energy.grid_supply_points(conn, grid, after, limit)
    return {"items": items, "next_cursor": next_cursor([i["ean"] for i in items], limit)}


@grid_router.get("/supply-points/{ean}/energy", response_model=EnergyReport)
async def grid_energy(ean: Ean, conn: ConnDep, grid: Grid, start: From = None, end: To = None,
                      interval: Interval = None) -> Any:
    return _out(await energy.grid_energy(conn, grid, ean, *_range(start, end), interval))


@grid_router.get("/settlement/{ean}/{day}", response_model=Settlement)
async def settlement(ean: Ean, day: Annotated[date, Path()], conn: ConnDep, grid: Grid) -> Any:
    """One local day of a supply point in 15-minute intervals, each with its quality."""
    if not date(2015, 1, 1) <= day <= date(2100, 1, 1):
        raise Problem(422, "day must lie between 2015 and 2100")
    return await energy.settlement(conn, grid, ean, day)


class SettlementFile(BaseModel):
    id: str
    filename: str
    url: str
    ean: str
    tenant: str
    day: date
    kind: Literal["inventory", "events", "profile", "faults"]
    version: int
    current: bool
    schema_id: str
    rows: int
    bytes: int
    sha256: str
    created_at: datetime
    superseded_at: datetime | None


class SettlementFilePage(BaseModel):
    items: list[SettlementFile]
    next_cursor: str | None


EanQuery = Annotated[str | None, Query(pattern=r"^[0-9]{18}$")]
DayQuery = Annotated[date | None, Query(ge=date(2015, 1, 1), le=date(2100, 1, 1))]


@grid_router.get("/settlement-files", response_model=SettlementFilePage)
async def settlement_files(
        conn: ConnDep, grid: Grid, ean: EanQuery = None, day: DayQuery = None,
        since: Annotated[date | None, Query(alias="from_day", ge=date(2015, 1, 1),
                                            le=date(2100, 1, 1))] = None,
        until: Annotated[date | None, Query(alias="to_day", ge=date(2015, 1, 1),
                                            le=date(2100, 1, 1))] = None,
        kind: Annotated[Literal["inventory", "events", "profile", "faults"] | None, Query()] = None,
        status: Annotated[Literal["current", "superseded"] | None, Query()] = None,
        cursor: Cursor = None, limit: Limit = DEFAULT) -> Any:
    """Every supply point's settlement files, every version, ordered by day, supply point, kind
    and version; `status=current` keeps the versions in force."""
    after = decode_cursor(cursor, str)
    assert after is None or isinstance(after, str)
    items = await settlement_files_store.listing(
        conn, grid, ean=ean, day=day, since=since, until=until, kind=kind, status=status,
        after=after, limit=limit)
    keys = [settlement_files_store.cursor_key(i) for i in items]
    return {"items": items, "next_cursor": next_cursor(keys, limit)}


@grid_router.get("/settlement-files/{file_id}", response_class=Response, responses={
    200: {"content": {"text/csv": {"schema": {"type": "string"}}},
          "description": "the file's bytes (CSV, RFC 4180, UTF-8)"},
    304: {"description": "not modified (If-None-Match)"}})
async def settlement_file(file_id: Annotated[str, Path(max_length=80)], request: Request,
                          conn: ConnDep, grid: Grid) -> Response:
    """Download one file: its exact bytes, its SHA-256 as the ETag."""
    body, sha = await settlement_files_store.content(conn, grid, file_id)
    headers = {"ETag": f'"{sha}"', "Cache-Control": "private, max-age=0",
               "Content-Disposition": f'attachment; filename="{file_id}.csv"'}
    wanted = request.headers.get("if-none-match", "")
    if f'"{sha}"' in {t.strip() for t in wanted.split(",")} or wanted.strip() == "*":
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="text/csv; charset=utf-8; header=present", headers=headers)
