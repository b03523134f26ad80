"""Public Open311 GeoReport v2 routes: services, and citizens' requests matched to streetlights."""

import logging
import math
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, Depends, Request, Response

from api import citizen_reports as cr
from api.geo import bbox_around
from api.ngsi_ld import streetlight_id
from api.open311_format import (
    FORMATS,
    Open311Error,
    render,
    render_errors,
    service_definition,
    service_entry,
    w3c,
)
from api.open311_parse import decode_fields, request_filters
from api.open311_services import BY_CODE, SERVICES
from api.rate_limit import SharedBuckets

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024
"""Largest request body accepted (a 4,000-character description is far below it)."""
MAX_CANDIDATES = 1000


_TENANT = "SELECT name FROM tenants WHERE id = %s"

# streetlights within the search box: their own position, or their pole's (controller's)
_NEAR = """
(SELECT c.id, l.idx, l.lat, l.lon, c.cabinet_id
 FROM luminaires l JOIN controllers c ON c.id = l.controller_id AND c.tenant_id = l.tenant_id
 WHERE l.tenant_id = %(tenant)s AND c.status <> 'retired'
   AND l.lat BETWEEN %(lat0)s AND %(lat1)s AND l.lon BETWEEN %(lon0)s AND %(lon1)s
 LIMIT %(limit)s)
UNION ALL
(SELECT c.id, l.idx, c.lat, c.lon, c.cabinet_id
 FROM controllers c JOIN luminaires l ON l.controller_id = c.id AND l.tenant_id = c.tenant_id
 WHERE c.tenant_id = %(tenant)s AND c.status <> 'retired' AND (l.lat IS NULL OR l.lon IS NULL)
   AND c.lat BETWEEN %(lat0)s AND %(lat1)s AND c.lon BETWEEN %(lon0)s AND %(lon1)s
 LIMIT %(limit)s)
"""
_ON_POLE = """
SELECT c.id, l.idx, coalesce(l.lat, c.lat), coalesce(l.lon, c.lon), c.cabinet_id
FROM controllers c JOIN luminaires l ON l.controller_id = c.id AND l.tenant_id = c.tenant_id
WHERE c.tenant_id = %(tenant)s AND c.pole_id = %(pole)s AND c.status <> 'retired'
LIMIT %(limit)s
"""
_OPEN_FAULTS = """
SELECT id, kind, raised_at, controller_id, luminaire_idx, cabinet_id FROM faults
WHERE tenant_id = %(tenant)s AND cleared_at IS NULL AND sensor IS NULL
  AND (controller_id = ANY (%(controllers)s)
       OR (controller_id IS NULL AND cabinet_id = ANY (%(cabinets)s)))
"""
_EARLIER = """
SELECT r.id, r.service_code, r.requested_at, r.controller_id, r.luminaire_idx, r.lat, r.lon,
       r.pole_id, r.address_string
FROM citizen_reports r LEFT JOIN faults f ON f.id = r.fault_id
WHERE r.tenant_id = %(tenant)s AND r.reporter_key = %(key)s
  AND r.requested_at > %(since)s AND f.cleared_at IS NULL
ORDER BY r.requested_at DESC
LIMIT 50
"""
_FOLD = """
UPDATE citizen_reports SET duplicates = duplicates + 1, last_duplicate_at = now()
WHERE id = %s
"""
_INSERT = """
INSERT INTO citizen_reports (tenant_id, service_code, description, lat, lon, address_string,
    pole_id, media_url, reporter_key, controller_id, luminaire_idx, distance_m, fault_id,
    fault_kinds)
VALUES (%(tenant)s, %(service)s, %(description)s, %(lat)s, %(lon)s, %(address)s, %(pole)s,
    %(media)s, %(key)s, %(controller)s, %(idx)s, %(distance)s, %(fault)s, %(kinds)s)
RETURNING id
"""
_CONTACT = """
INSERT INTO citizen_report_contacts (report_id, email, first_name, last_name, phone)
VALUES (%s, %s, %s, %s, %s)
"""
# A report's fault: the one linked when it came, else one detected on its streetlight (or that
# streetlight's controller) within a day of it, of a kind that explains it, not cleared before it.
_READ = """
SELECT r.id, r.service_code, r.description, coalesce(r.lat, l.lat, c.lat),
       coalesce(r.lon, l.lon, c.lon), r.address_string, r.media_url, r.requested_at,
       r.controller_id, r.luminaire_idx, r.distance_m, f.kind, f.raised_at, f.cleared_at,
       t.name, r.tenant_id
FROM citizen_reports r
JOIN tenants t ON t.id = r.tenant_id
LEFT JOIN controllers c ON c.id = r.controller_id
LEFT JOIN luminaires l ON l.controller_id = r.controller_id AND l.idx = r.luminaire_idx
LEFT JOIN LATERAL (
    (SELECT kind, raised_at, cleared_at FROM faults WHERE id = r.fault_id)
    UNION ALL
    (SELECT kind, raised_at, cleared_at FROM faults lf
     WHERE r.fault_id IS NULL AND r.controller_id IS NOT NULL
       AND lf.controller_id = r.controller_id AND lf.tenant_id = r.tenant_id
       AND (lf.luminaire_idx = r.luminaire_idx OR lf.luminaire_idx IS NULL) AND lf.sensor IS NULL
       AND lf.kind = ANY (r.fault_kinds)
       AND lf.raised_at BETWEEN r.requested_at - interval '24 hours'
                            AND r.requested_at + interval '24 hours'
       AND (lf.cleared_at IS NULL OR lf.cleared_at > r.requested_at)
     ORDER BY lf.raised_at LIMIT 1)
    LIMIT 1
) f ON true
WHERE (%(tenant)s::text IS NULL OR r.tenant_id = %(tenant)s)
  AND (%(ids)s::bigint[] IS NULL OR r.id = ANY (%(ids)s))
  AND (%(codes)s::text[] IS NULL OR r.service_code = ANY (%(codes)s))
  AND (%(start)s::timestamptz IS NULL OR r.requested_at >= %(start)s)
  AND (%(end)s::timestamptz IS NULL OR r.requested_at <= %(end)s)
  AND (%(closed)s::boolean IS NULL OR (f.cleared_at IS NOT NULL) = %(closed)s)
ORDER BY r.requested_at DESC, r.id DESC
LIMIT %(limit)s
"""


_ERROR_SCHEMA = {"type": "array", "items": {
    "type": "object", "required": ["code", "description"],
    "properties": {"code": {"type": "integer"}, "description": {"type": "string"}}}}


def _responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries of the Open311 errors a route answers with."""
    return {code: {"description": "Open311 error",
                   "content": {"application/json": {"schema": _ERROR_SCHEMA},
                               "text/xml": {}}} for code in codes}


def _format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise Open311Error(404, "format not found: use .json or .xml")
    return fmt


def _answer(fmt: str, body: bytes, status: int = 200,
            headers: Mapping[str, str] | None = None) -> Response:
    return Response(body, status_code=status, media_type=FORMATS[fmt], headers=dict(headers or {}))


def _error(fmt: str, err: Open311Error) -> Response:
    fmt = fmt if fmt in FORMATS else "json"
    return _answer(fmt, render_errors(fmt, err.code, err.description), err.code, err.headers)


async def _read_body(request: Request, limit: int = MAX_BODY) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise Open311Error(413, f"the request body is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Open311Error(413, f"the request body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _request_entry(row: tuple[Any, ...]) -> dict[str, Any]:
    (rid, code, description, lat, lon, address, media, requested_at, controller, idx, distance,
     kind, raised_at, cleared_at, tenant_name, tenant) = row
    link = cr.Linked(
        streetlight=streetlight_id(tenant, controller, idx) if controller is not None else None,
        distance_m=distance, fault_kind=kind, fault_raised_at=raised_at,
        fault_cleared_at=cleared_at, without_position=lat is None)
    status, notes, updated = cr.status_and_notes(link, requested_at)
    service = BY_CODE.get(code)
    entry: dict[str, Any] = {
        "service_request_id": str(rid), "status": status, "status_notes": notes,
        "service_name": service.name if service else code, "service_code": code,
        "description": description, "agency_responsible": tenant_name,
        "requested_datetime": w3c(requested_at), "updated_datetime": w3c(updated),
        "address": address, "lat": lat, "long": lon, "media_url": media,
    }
    return {k: v for k, v in entry.items() if v is not None and v != ""}


def router(connection: Callable[..., Any], *, reports_per_client: float = 10.0,
           refill_per_hour: float = 10.0) -> APIRouter:
    """The Open311 GeoReport v2 routes; `connection` is a dependency yielding a psycopg
    AsyncConnection. Each client address may post `reports_per_client` reports at once, then
    `refill_per_hour` an hour, counted in the database for the whole server (every worker)."""
    r = APIRouter(prefix="/open311/v2", tags=["Open311 GeoReport v2"])
    Conn = Annotated[psycopg.AsyncConnection, Depends(connection)]
    buckets = SharedBuckets(capacity=reports_per_client, per_s=refill_per_hour / 3600.0)

    async def tenant_name(conn: psycopg.AsyncConnection[Any], tenant: str | None) -> str:
        if tenant is None or not cr.is_tenant_id(tenant):
            raise Open311Error(404, "jurisdiction_id not found")
        cur = await conn.execute(_TENANT, (tenant,))
        row = await cur.fetchone()
        if row is None:
            raise Open311Error(404, "jurisdiction_id not found")
        return str(row[0])

    @r.get("/services.{fmt}", summary="The services a citizen may request (Open311)",
           responses=_responses(404))
    async def services(fmt: str, request: Request, conn: Conn) -> Response:
        try:
            fmt = _format(fmt)
            jurisdiction = request.query_params.get("jurisdiction_id")
            if jurisdiction is not None:
                await tenant_name(conn, jurisdiction)
            return _answer(fmt, render(fmt, "services", "service",
                                       [service_entry(s) for s in SERVICES]))
        except Open311Error as err:
            return _error(fmt, err)

    @r.get("/services/{code}.{fmt}", summary="A service's definition: its attributes (Open311)",
           responses=_responses(404))
    async def definition(code: str, fmt: str) -> Response:
        try:
            fmt = _format(fmt)
            service = BY_CODE.get(code)
            if service is None:
                raise Open311Error(404, "service_code not found")
            return _answer(fmt, render(fmt, "service_definition", None,
                                       service_definition(service)))
        except Open311Error as err:
            return _error(fmt, err)

    @r.post("/requests.{fmt}", status_code=201,
            summary="Report a problem: form-encoded (Open311) or JSON",
            responses=_responses(400, 404, 413, 415, 429))
    async def post_request(fmt: str, request: Request, conn: Conn) -> Response:
        try:
            fmt = _format(fmt)
            body = await _read_body(request)
            fields = decode_fields(request.headers.get("content-type", ""), body)
            report = cr.parse_report(fields)
            await tenant_name(conn, report.jurisdiction_id)
            client = request.client.host if request.client else "unknown"
            wait = await buckets.take(conn, client)
            if wait > 0:
                log.warning("open311 rate limited client=%s tenant=%s", client,
                            report.jurisdiction_id)
                raise Open311Error(429, "too many reports from this client: try again later",
                                   {"Retry-After": str(math.ceil(wait))})
            rid, notice = await _store(conn, report, cr.reporter_key(report.device_id, client))
            return _answer(fmt, render(fmt, "service_requests", "request",
                                       [{"service_request_id": str(rid),
                                         "service_notice": notice}]), 201)
        except Open311Error as err:
            return _error(fmt, err)

    @r.get("/requests.{fmt}", summary="Requests of a jurisdiction, filtered (Open311)",
           responses=_responses(400, 404))
    async def get_requests(fmt: str, request: Request, conn: Conn) -> Response:
        try:
            fmt = _format(fmt)
            q = request.query_params
            tenant = q.get("jurisdiction_id")
            if tenant is None:
                raise Open311Error(400, "jurisdiction_id was not provided")
            await tenant_name(conn, tenant)
            params = request_filters(q)
            params["tenant"] = tenant
            cur = await conn.execute(_READ, params)
            rows = await cur.fetchall()
            return _answer(fmt, render(fmt, "service_requests", "request",
                                       [_request_entry(row) for row in rows]))
        except Open311Error as err:
            return _error(fmt, err)

    @r.get("/requests/{rid}.{fmt}", summary="One request (Open311)",
           responses=_responses(404))
    async def get_request(rid: str, fmt: str, request: Request, conn: Conn) -> Response:
        try:
            fmt = _format(fmt)
            if not rid.isascii() or not rid.isdigit() or len(rid) > 18:
                raise Open311Error(404, "service_request_id not found")
            tenant = request.query_params.get("jurisdiction_id")
            if tenant is not None:
                await tenant_name(conn, tenant)
            cur = await conn.execute(_READ, {"tenant": tenant, "ids": [int(rid)], "codes": None,
                                             "start": None, "end": None, "closed": None,
                                             "limit": 1})
            row = await cur.fetchone()
            if row is None:
                raise Open311Error(404, "service_request_id not found")
            return _answer(fmt, render(fmt, "service_requests", "request", [_request_entry(row)]))
        except Open311Error as err:
            return _error(fmt, err)

    return r


async def _store(conn: psycopg.AsyncConnection[Any], report: cr.Report,
                 key: str) -> tuple[int, str]:
    """Match the report, fold it into the reporter's earlier one or store it; (id, notice)."""
    tenant = report.jurisdiction_id
    service = report.service
    async with conn.transaction():
        candidates: list[cr.Candidate] = []
        if report.pole_id is not None:
            cur = await conn.execute(_ON_POLE, {"tenant": tenant, "pole": report.pole_id,
                                                "limit": MAX_CANDIDATES})
            candidates = [cr.Candidate(*row) for row in await cur.fetchall()]
        by_pole = bool(candidates)
        if not by_pole and report.lat is not None and report.lon is not None:
            lat0, lat1, lon0, lon1 = bbox_around(report.lat, report.lon, cr.MATCH_RADIUS_M)
            cur = await conn.execute(_NEAR, {"tenant": tenant, "lat0": lat0, "lat1": lat1,
                                             "lon0": lon0, "lon1": lon1,
                                             "limit": MAX_CANDIDATES})
            candidates = [cr.Candidate(*row) for row in await cur.fetchall()]
        faults: list[cr.OpenFault] = []
        if candidates:
            cur = await conn.execute(_OPEN_FAULTS, {
                "tenant": tenant,
                "controllers": sorted({c.controller_id for c in candidates}),
                "cabinets": sorted({c.cabinet_id for c in candidates if c.cabinet_id})})
            faults = [cr.OpenFault(id=row[0], kind=row[1], raised_at=row[2],
                                   controller_id=row[3], luminaire_idx=row[4],
                                   cabinet_id=row[5]) for row in await cur.fetchall()]
        match: cr.Match | None = None
        if by_pole:
            match = cr.match_by_pole(service, candidates, faults)
        elif report.lat is not None and report.lon is not None:
            match = cr.match_by_position(service, report.lat, report.lon, candidates, faults)

        now = datetime.now(UTC)
        cur = await conn.execute(_EARLIER, {"tenant": tenant, "key": key,
                                            "since": now - cr.FOLD_WINDOW})
        earlier = [cr.Earlier(*row) for row in await cur.fetchall()]
        folded = cr.duplicate_of(report, match, earlier, now)
        if folded is not None:
            await conn.execute(_FOLD, (folded,))
            log.info("open311 duplicate folded tenant=%s request=%s", tenant, folded)
            return folded, "You reported this already: your earlier request is counted again."

        kinds = sorted({f.name for f in service.faults if f.scope in ("luminaire", "controller")})
        cur = await conn.execute(_INSERT, {
            "tenant": tenant, "service": service.code, "description": report.description,
            "lat": report.lat, "lon": report.lon, "address": report.address_string,
            "pole": report.pole_id, "media": report.media_url, "key": key,
            "controller": match.candidate.controller_id if match else None,
            "idx": match.candidate.idx if match else None,
            "distance": match.distance_m if match else None,
            "fault": match.fault.id if match and match.fault else None, "kinds": kinds})
        row = await cur.fetchone()
        assert row is not None
        rid = int(row[0])
        if report.has_contact:
            await conn.execute(_CONTACT, (rid, report.email, report.first_name, report.last_name,
                                          report.phone))
    log.info("open311 request stored tenant=%s request=%s service=%s matched=%s fault=%s",
             tenant, rid, service.code, match is not None,
             match.fault.kind if match and match.fault else None)
    if match is None:
        return rid, "Thank you: no streetlight was matched to this location; a crew will look."
    if match.fault is not None:
        return rid, "Thank you: this fault is already known and a repair is pending."
    return rid, "Thank you: the streetlight will be inspected."
