"""Energy per luminaire, group, municipality and supply point; the grid operator's routes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel

from api import energy
from api.deps import ConnDep, Grid, Scope
from api.pagination import decode_cursor, next_cursor
from api.problems import Problem
from api.routes.params import DEFAULT, Cursor, Ean, From, Id, Limit, To
from api.timeseries import time_range

router = APIRouter(prefix="/api/v1", tags=["energy"])
grid_router = APIRouter(prefix="/api/v1/grid", tags=["grid operator"])

Interval = Annotated[Literal["15min", "hour", "day"], Query()]
WIDTH = {"15min": timedelta(minutes=15), "hour": timedelta(hours=1), "day": timedelta(days=1)}


class EnergyInterval(BaseModel):
    start: datetime
    energy_wh: float
    estimated: bool
    full_power_wh: float | None = None


class EnergyReport(BaseModel):
    start: datetime
    end: datetime
    interval_s: int
    energy_wh: float
    intervals: list[EnergyInterval]
    full_power_wh: float | None = None
    savings_wh: float | None = None
    savings_ratio: float | None = None
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


def _span(start: datetime | None, end: datetime | None, interval: str) -> Any:
    span = time_range(start, end, datetime.now(UTC), bucket=WIDTH[interval])
    if (span.end - span.start) / span.bucket > 40_000:
        raise Problem(422, "too many intervals; choose a wider interval or a shorter range")
    return span


def _out(report: dict[str, Any]) -> dict[str, Any]:
    return {**report, "start": report.pop("from"), "end": report.pop("to")}


@router.get("/energy/luminaires/{luminaire_id}", response_model=EnergyReport)
async def luminaire(luminaire_id: Id, conn: ConnDep, scope: Scope, start: From = None, end: To = None,
                    interval: Interval = "15min") -> Any:
    return _out(await energy.for_luminaire(conn, scope, luminaire_id, _span(start, end, interval)))


@router.get("/energy/groups/{group_id}", response_model=EnergyReport)
async def group(group_id: Id, conn: ConnDep, scope: Scope, start: From = None, end: To = None,
                interval: Interval = "15min") -> Any:
    return _out(await energy.for_group(conn, scope, group_id, _span(start, end, interval)))


@router.get("/energy/municipality", response_model=EnergyReport)
async def municipality(conn: ConnDep, scope: Scope, start: From = None, end: To = None,
                       interval: Interval = "15min") -> Any:
    return _out(await energy.for_municipality(conn, scope, _span(start, end, interval)))


@router.get("/energy/supply-points/{ean}", response_model=EnergyReport)
async def supply_point(ean: Ean, conn: ConnDep, scope: Scope, start: From = None, end: To = None,
                       interval: Interval = "15min") -> Any:
    return _out(await energy.for_supply_point(conn, scope, ean, _span(start, end, interval)))


@grid_router.get("/supply-points", response_model=GridSupplyPage)
async def grid_supply_points(conn: ConnDep, grid: Grid, cursor: Cursor = None,
                             limit: Limit = DEFAULT) -> Any:
    after = decode_cursor(cursor, str)
    assert after is None or isinstance(after, str)
    items = await energy.grid_supply_points(conn, grid, after, limit)
    return {"items": items, "next_cursor": next_cursor([i["ean"] for i in items], limit)}


@grid_router.get("/supply-points/{ean}/energy", response_model=EnergyReport)
async def grid_energy(ean: Ean, conn: ConnDep, grid: Grid, start: From = None, end: To = None,
                      interval: Interval = "15min") -> Any:
    return _out(await energy.grid_energy(conn, grid, ean, _span(start, end, interval)))


@grid_router.get("/settlement/{ean}/{day}", response_model=Settlement)
async def settlement(ean: Ean, day: Annotated[date, Path()], conn: ConnDep, grid: Grid) -> Any:
    """One local day of a supply point in 15-minute intervals, each with its quality."""
    if not date(2015, 1, 1) <= day <= date(2100, 1, 1):
        raise Problem(422, "day must lie between 2015 and 2100")
    return await energy.settlement(conn, grid, ean, day)
