"""Public open-data routes: a tenant's streetlights as GeoJSON and as FIWARE NGSI-LD entities."""

import logging
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import JSONResponse, StreamingResponse

from api import open_data_queries as q
from api.geojson import FEATURE_COLLECTION_HEAD, FEATURE_COLLECTION_TAIL, feature, json_array
from api.ngsi_ld import CONTEXT, ENTITY_TYPES, normalized

log = logging.getLogger(__name__)

CACHE_CONTROL = "public, max-age=60"

_PRODUCERS = {
    "Streetlight": q.streetlights,
    "StreetlightControlCabinet": q.cabinets,
    "StreetlightGroup": q.groups,
    "StreetlightModel": q.models,
}


_PROBLEM = {"description": "RFC 9457 problem details",
            "content": {"application/problem+json": {"schema": {"type": "object"}}}}


def _problem(status: int, title: str, detail: str) -> JSONResponse:
    return JSONResponse({"type": "about:blank", "title": title, "status": status, "detail": detail},
                        status_code=status, media_type="application/problem+json")


def _types(value: str | None) -> list[str] | None:
    """The entity types asked for (comma-separated), all when none; None when one is unknown."""
    if not value:
        return list(ENTITY_TYPES)
    asked = [t.strip() for t in value.split(",") if t.strip()]
    if not asked or any(t not in ENTITY_TYPES for t in asked) or len(asked) > len(ENTITY_TYPES):
        return None
    return list(dict.fromkeys(asked))


def router(connection: Callable[..., Any]) -> APIRouter:
    """The open-data routes; `connection` is a dependency yielding a psycopg AsyncConnection."""
    r = APIRouter(prefix="/opendata", tags=["open data"])
    Conn = Annotated[psycopg.AsyncConnection, Depends(connection)]
    Tenant = Annotated[str, Path(description="the municipality's id")]

    @r.get("/{tenant}/streetlights.geojson",
           summary="A tenant's streetlights and control cabinets as a GeoJSON FeatureCollection",
           response_class=StreamingResponse,
           responses={200: {"content": {"application/geo+json": {}}}, 404: _PROBLEM})
    async def geojson(tenant: Tenant, conn: Conn) -> Any:
        name = await q.tenant_name(conn, tenant)
        if name is None:
            return _problem(404, "Not Found", f"no municipality {tenant!r}")

        async def features() -> AsyncIterator[dict[str, Any]]:
            async for e in q.streetlights(conn, tenant, name):
                yield feature(e)
            async for e in q.cabinets(conn, tenant, name):
                yield feature(e)

        log.info("open data geojson tenant=%s", tenant)
        return StreamingResponse(
            json_array(features(), FEATURE_COLLECTION_HEAD, FEATURE_COLLECTION_TAIL),
            media_type="application/geo+json", headers={"Cache-Control": CACHE_CONTROL})

    @r.get("/{tenant}/ngsi-ld/entities",
           summary="A tenant's FIWARE Streetlighting entities, NGSI-LD normalized or key-values",
           response_class=StreamingResponse,
           responses={200: {"content": {"application/ld+json": {}, "application/json": {}}},
                      400: _PROBLEM, 404: _PROBLEM})
    async def entities(
        tenant: Tenant, conn: Conn,
        type: Annotated[str | None, Query(
            max_length=200, description="comma-separated: " + ", ".join(ENTITY_TYPES))] = None,
        options: Annotated[str | None, Query(
            max_length=40, description="keyValues for the simplified form (the FIWARE JSON Schemas' "
                                       "form); normalized (the default) otherwise")] = None,
    ) -> Any:
        types = _types(type)
        if types is None:
            return _problem(400, "Bad Request",
                            "type must be one or more of " + ", ".join(ENTITY_TYPES))
        opts = {o.strip() for o in (options or "").split(",") if o.strip()}
        if not opts <= {"keyValues", "normalized"} or opts == {"keyValues", "normalized"}:
            return _problem(400, "Bad Request", "options must be keyValues or normalized")
        key_values = "keyValues" in opts
        name = await q.tenant_name(conn, tenant)
        if name is None:
            return _problem(404, "Not Found", f"no municipality {tenant!r}")

        async def produce() -> AsyncIterator[dict[str, Any]]:
            for t in types:
                async for e in _PRODUCERS[t](conn, tenant, name):
                    yield e if key_values else normalized(e)

        log.info("open data ngsi-ld tenant=%s types=%s key_values=%s", tenant, ",".join(types),
                 key_values)
        headers = {"Cache-Control": CACHE_CONTROL}
        if key_values:
            # NGSI-LD: the @context of a plain-JSON body travels in a Link header
            headers["Link"] = (f'<{CONTEXT[0]}>; rel="http://www.w3.org/ns/json-ld#context"; '
                               'type="application/ld+json"')
        return StreamingResponse(json_array(produce()), headers=headers,
                                 media_type="application/json" if key_values
                                 else "application/ld+json")

    return r

