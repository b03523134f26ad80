"""Weak ETags over a response body: If-None-Match answers 304 without the body."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
from fastapi import Request, Response
from fastapi.encoders import jsonable_encoder


def json_bytes(payload: Any, utc_z: bool = False) -> bytes:
    """Compact JSON by orjson, datetimes in ISO 8601: with their offset as FastAPI's
    jsonable_encoder writes them, or UTC as `Z` as a pydantic response_model writes them
    (utc_z). A type orjson does not know goes through jsonable_encoder; an orjson.Fragment
    (JSON built by the database) is copied as it is."""
    return orjson.dumps(payload, default=jsonable_encoder,
                        option=orjson.OPT_UTC_Z if utc_z else None)


def json_response(payload: Any, utc_z: bool = True) -> Response:
    """A route's JSON answer serialised once, in the format its response_model would give
    (UTC as `Z`). The route keeps its response_model for the OpenAPI schema; the payload must
    already have that shape: FastAPI does not re-validate a Response (the tests do)."""
    return Response(json_bytes(payload, utc_z), media_type="application/json")


def etag_json(request: Request, payload: Any, max_age_s: int = 0) -> Response:
    response = Response(json_bytes(payload), media_type="application/json")
    tag = 'W/"' + hashlib.blake2b(bytes(response.body), digest_size=12).hexdigest() + '"'
    headers = {"ETag": tag, "Cache-Control": f"private, max-age={max_age_s}"}
    wanted = request.headers.get("if-none-match", "")
    if tag in {t.strip() for t in wanted.split(",")} or wanted.strip() == "*":
        return Response(status_code=304, headers=headers)
    response.headers.update(headers)
    return response
