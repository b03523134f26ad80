"""Live state, telemetry series, sensor readings and the streamed CSV export."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import AwareDatetime, BaseModel, Field

from api import readings
from api import sensors as urban
from api.deps import ConnDep, Scope
from api.pagination import decode_cursor, next_cursor
from api.problems import Problem
from api.routes.etags import etag_json, json_response
from api.routes.params import DEFAULT, Cursor, From, Id, IdentPath, IdentQuery, Limit, To
from api.timeseries import time_range

router = APIRouter(prefix="/api/v1", tags=["live state and readings"])


class Live(BaseModel):
    id: int
    controller_id: str
    idx: int
    online: bool
    last_seen: datetime | None
    time: datetime | None
    level: int | None
    status: int | None
    power_w: float | None
    energy_wh: float | None
    voltage_v: float | None
    power_factor: float | None
    driver_temp_c: float | None
    failure: int | None


class LivePage(BaseModel):
    items: list[Live]
    next_cursor: str | None
    changed_since: datetime | None = Field(
        None, description="with `changed_since`: the value for the next sweep (keep the first page's)")


class SeriesPoint(BaseModel):
    bucket: datetime
    level: float | None
    power_w: float | None
    power_max_w: float | None
    energy_wh: float | None
    voltage_v: float | None
    driver_temp_c: float | None
    failure: int | None
    samples: int


class Series(BaseModel):
    luminaire_id: int
    start: datetime
    end: datetime
    bucket_s: int
    points: list[SeriesPoint]


class SensorPoint(BaseModel):
    bucket: datetime
    sensor: int
    quantity: int
    mean: float
    min: float
    max: float
    samples: int


class SensorSeries(BaseModel):
    controller_id: str
    start: datetime
    end: datetime
    bucket_s: int
    points: list[SensorPoint]


class SensorReading(BaseModel):
    quantity: int = Field(description="wire.records.Quantity code")
    name: str | None = Field(description="e.g. noise_dba, pm25_ugm3; null for an unknown code")
    unit: str | None
    value: float
    time: datetime


class UrbanSensor(BaseModel):
    controller_id: str
    sensor: int = Field(description="the sensor index on its controller (urban boxes: 32..63)")
    lon: float | None = Field(description="its controller's position")
    lat: float | None
    latest: datetime
    readings: list[SensorReading] = Field(description="the newest reading of each quantity")


class UrbanSensors(BaseModel):
    since: datetime
    items: list[UrbanSensor]


@router.get("/map/sensors", response_model=UrbanSensors)
async def urban_sensors(conn: ConnDep, scope: Scope,
                        hours: Annotated[int, Query(ge=1, le=168)] = 24) -> Any:
    """The tenant's urban sensors (multifunction poles' sensor boxes) that reported in the last
    `hours`, at their controller's position, with the newest reading of each quantity."""
    now = datetime.now(UTC)
    window = timedelta(hours=hours)
    return {"since": now - window, "items": await urban.urban_sensors(conn, scope, now, window)}


@router.get("/live", response_model=LivePage)
async def live_page(request: Request, conn: ConnDep, scope: Scope, cursor: Cursor = None,
                    limit: Limit = DEFAULT, online: Annotated[bool | None, Query()] = None,
                    failing: Annotated[bool | None, Query()] = None,
                    controller: IdentQuery = None,
                    changed_since: Annotated[AwareDatetime | None, Query()] = None) -> Any:
    """A page of the tenant's luminaires with their latest reading and their controller's link.
    With `changed_since` (a time with its zone, e.g. the last answer's `changed_since`): only the
    luminaires whose level, status, failure or controller link changed since then."""
    after = decode_cursor(cursor, int)
    assert after is None or isinstance(after, int)
    if changed_since is not None:
        if online is not None or failing is not None or controller is not None:
            raise Problem(422, "changed_since cannot be combined with online, failing or controller")
        changed, since = await readings.changed_page(conn, scope, changed_since, after, limit)
        return etag_json(request, {"items": changed, "changed_since": since,
                                   "next_cursor": next_cursor([i["id"] for i in changed], limit)})
    items = await readings.live_page(conn, scope, after, limit, online, failing, controller)
    return etag_json(request, {"items": items,
                               "next_cursor": next_cursor([i["id"] for i in items], limit)})


@router.get("/live/{luminaire_id}", response_model=Live)
async def live_one(luminaire_id: Id, request: Request, conn: ConnDep, scope: Scope) -> Any:
    return etag_json(request, await readings.live_one(conn, scope, luminaire_id))


@router.get("/luminaires/{luminaire_id}/series", response_model=Series)
async def series(luminaire_id: Id, conn: ConnDep, scope: Scope, start: From = None,
                 end: To = None) -> Any:
    """Readings in time_bucket means, the bucket chosen from the range (at most 2,000 points)."""
    span = time_range(start, end, datetime.now(UTC))
    points = await readings.series_json(conn, scope, luminaire_id, span)
    return json_response({"luminaire_id": luminaire_id, "start": span.start, "end": span.end,
                          "bucket_s": int(span.bucket.total_seconds()),
                          "points": orjson.Fragment(points)})


@router.get("/controllers/{controller_id}/sensors", response_model=SensorSeries)
async def sensors(controller_id: IdentPath, conn: ConnDep, scope: Scope, start: From = None,
                  end: To = None, quantity: Annotated[int | None, Query(ge=0, le=32767)] = None) -> Any:
    span = time_range(start, end, datetime.now(UTC))
    points = await readings.sensor_series(conn, scope, controller_id, span, quantity)
    return {"controller_id": controller_id, "start": span.start, "end": span.end,
            "bucket_s": int(span.bucket.total_seconds()), "points": points}


@router.get("/telemetry.csv", responses={200: {"content": {"text/csv": {}}}},
            response_class=StreamingResponse)
async def export(request: Request, scope: Scope, start: From = None, end: To = None,
                 controller: IdentQuery = None) -> StreamingResponse:
    """Every reading of the range, uncapped, streamed as CSV."""
    span = time_range(start, end, datetime.now(UTC))
    body = readings.export_csv(request.app.state.pool, scope.tenant, controller, span.start, span.end)
    return StreamingResponse(body, media_type="text/csv", headers={
        "Content-Disposition": f'attachment; filename="telemetry-{scope.tenant}.csv"'})
