"""Weak ETags over a response body: If-None-Match answers 304 without the body."""

from __future__ import annotations

import hashlib
from typing import Any

from fastapi import Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse


def etag_json(request: Request, payload: Any, max_age_s: int = 0) -> Response:
    response = JSONResponse(jsonable_encoder(payload))
    tag = 'W/"' + hashlib.blake2b(bytes(response.body), digest_size=12).hexdigest() + '"'
    headers = {"ETag": tag, "Cache-Control": f"private, max-age={max_age_s}"}
    wanted = request.headers.get("if-none-match", "")
    if tag in {t.strip() for t in wanted.split(",")} or wanted.strip() == "*":
        return Response(status_code=304, headers=headers)
    response.headers.update(headers)
    return response
