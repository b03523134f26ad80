"""Errors as RFC 9457 problem details: one exception type, one handler for the whole app."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg import OperationalError
from psycopg_pool import PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

PROBLEM_TYPE = "application/problem+json"


class Problem(Exception):
    """A refusal the client can act on: status, a short title and a detail sentence."""

    def __init__(self, status: int, detail: str, *, title: str | None = None,
                 headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.title = title or HTTPStatus(status).phrase.lower()
        self.headers = headers or {}
        self.extra = extra


def not_found(what: str) -> Problem:
    return Problem(404, f"no {what} of yours by that id")


def problem_body(status: int, title: str, detail: str, instance: str,
                 extra: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status,
                            "detail": detail, "instance": instance}
    if extra:
        body.update(extra)
    return body


def _response(request: Request, status: int, title: str, detail: str,
              headers: dict[str, str] | None = None,
              extra: dict[str, Any] | None = None) -> JSONResponse:
    return JSONResponse(problem_body(status, title, detail, request.url.path, extra),
                        status_code=status, headers=headers, media_type=PROBLEM_TYPE)


def _validation_detail(exc: RequestValidationError) -> tuple[str, list[dict[str, Any]]]:
    errors = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error.get("loc", ())) or "request"
        errors.append({"field": where, "reason": str(error.get("msg", "invalid"))})
    detail = "; ".join(f"{e['field']}: {e['reason']}" for e in errors[:5]) or "invalid request"
    return detail, errors


def install(app: FastAPI) -> None:
    """Every error the app answers is problem+json; unexpected ones are logged and answer 500
    without internals."""

    async def on_problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Problem)
        return _response(request, exc.status, exc.title, exc.detail, exc.headers, exc.extra)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        status = exc.status_code
        return _response(request, status, HTTPStatus(status).phrase.lower(), str(exc.detail),
                         dict(exc.headers or {}))

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        detail, errors = _validation_detail(exc)
        return _response(request, 422, "invalid request", detail, extra={"errors": errors})

    async def on_unavailable(request: Request, exc: Exception) -> JSONResponse:
        log.warning("database unavailable path=%s error=%s", request.url.path, type(exc).__name__)
        return _response(request, 503, "service unavailable",
                         "the database is not answering; try again shortly", {"Retry-After": "5"})

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error path=%s method=%s", request.url.path, request.method)
        return _response(request, 500, "internal server error", "the server failed; try again later")

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(PoolTimeout, on_unavailable)
    app.add_exception_handler(OperationalError, on_unavailable)
    app.add_exception_handler(Exception, on_unexpected)
