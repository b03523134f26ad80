"""The route index (api/route_index.py) against the router's own linear walk, on the real app's
routes: every route's paths (and odd ones) resolve to the same route and endpoint; 404, 405 and
slash redirects answer the same bytes. No database: nothing here reaches a route's dependencies."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.routing import BaseRoute, Match

from api.access import flatten
from api.app import create_app
from api.route_index import RouteIndex, path_key, template_key
from api.settings import ApiSettings

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
PARAM = re.compile(r"\{([a-z_]+)(:[a-z]+)?\}")
ODD_PATHS = ["/", "", "//", "/api", "/api/", "/api/v1", "/api/v1/", "/api/v1//", "/api//v1/live/1",
             "/API/v1/live/1", "/api/v1/live/", "/api/v1/live/1/", "/api/v1/live/1/extra",
             "/api/v1/nothing", "/api/v1/nothing/1", "/nothing", "/dashboard", "/dashboard/",
             "/dashboard/app.js", "/docs/", "/healthz/", "/api/v1/luminaires.geojson/",
             "/api/v1/live/" + "9" * 400, "/api/v1/" + "x" * 5000, "/api/v1/live/\u00e9\u00e9",
             "/api/v1/live/a b", "/api/v2/live/1", "/api/v1/open311/v2/requests.json",
             "/api/v1/open311/v2/requests.xml", "/api/v1/opendata/unknown"]


def _app() -> FastAPI:
    return create_app(ApiSettings(dsn="postgresql://nobody@127.0.0.1:1/none"))


def _index(app: FastAPI) -> RouteIndex:
    index = app.router.middleware_stack
    assert isinstance(index, RouteIndex)
    return index


def _samples(template: str) -> list[str]:
    return [PARAM.sub(value, template) for value in ("1", "abc", "2026-01-01")]


def _first(routes: list[BaseRoute], scope: dict[str, Any]) -> tuple[Match, BaseRoute | None]:
    """The router's rule: the first full match, else the first partial one."""
    partial: BaseRoute | None = None
    for route in routes:
        match, _ = route.matches(dict(scope))
        if match is Match.FULL:
            return match, route
        if match is Match.PARTIAL and partial is None:
            partial = route
    return (Match.PARTIAL, partial) if partial is not None else (Match.NONE, None)


def _endpoint(route: BaseRoute | None, scope: dict[str, Any]) -> object:
    """The endpoint a top-level route hands the request to (through an included router)."""
    if route is None:
        return None
    inner = getattr(route, "_match", None)
    if callable(inner):
        _, _, leaf, context = inner(dict(scope))
        return (getattr(leaf, "endpoint", leaf), getattr(context, "path", None))
    return (getattr(route, "endpoint", route), getattr(route, "path", None))


def test_every_route_and_odd_path_resolves_as_the_linear_walk_does() -> None:
    app = _app()
    index = _index(app)
    templates = sorted({path for _, path in flatten(app.routes)})
    paths = [p for t in templates for p in _samples(t)] + ODD_PATHS
    checked = 0
    for path in paths:
        for method in METHODS:
            scope = {"type": "http", "path": path, "method": method, "root_path": ""}
            linear = _first(list(app.router.routes), scope)
            indexed = _first(index.candidates(path), scope)
            assert indexed[0] is linear[0] and indexed[1] is linear[1], (method, path)
            assert _endpoint(indexed[1], scope) == _endpoint(linear[1], scope), (method, path)
            checked += 1
    # the samples really reach their own routes (the comparison is not between two misses)
    reached = 0
    for method, template in flatten(app.routes):
        scope = {"type": "http", "path": _samples(template)[0], "method": method, "root_path": ""}
        match, route = _first(index.candidates(scope["path"]), scope)
        endpoint = _endpoint(route, scope)
        reached += match is Match.FULL and isinstance(endpoint, tuple) and endpoint[1] == template
    assert reached >= len(list(flatten(app.routes))) - 2 and checked > 1000


def test_the_index_narrows_the_walk() -> None:
    app = _app()
    index = _index(app)
    assert len(index.candidates("/api/v1/live/17")) < len(app.router.routes) // 3


@pytest.mark.parametrize(("template", "key"), [
    ("/api/v1/live/{luminaire_id}", "/api/v1/live"), ("/healthz", "healthz"),
    ("/api/v1/{thing}", None), ("/{anything}/x", None), ("/api/{version}/live", None),
    ("/api/v2/{x}", "api"), ("/api/v1", "api"), ("/api/v1/luminaires.{fmt}", None),
    ("/dashboard/{path:path}", "dashboard"), ("/", "")])
def test_template_keys(template: str, key: str | None) -> None:
    assert template_key(template) == key
    if key is not None:  # a path the template matches has the template's key
        assert path_key(PARAM.sub("5", template)) == key


def test_routes_added_later_are_indexed() -> None:
    app = _app()
    index = _index(app)
    before = index.candidates("/api/v1/late")

    @app.get("/api/v1/late")
    async def late() -> dict[str, str]:
        return {}

    after = index.candidates("/api/v1/late")
    assert len(after) == len(before) + 1 and after[-1] is app.router.routes[-1]


REFUSALS = [("GET", "/nothing"), ("GET", "/api/v1/nothing"), ("DELETE", "/api/v1/live"),
            ("POST", "/healthz"), ("PUT", "/api/v1/live/1"), ("GET", "/api/v1/live/"),
            ("GET", "/dashboard"), ("GET", "/api/v1/" + "x" * 5000), ("PATCH", "/metrics"),
            ("GET", "/api/v1/live/1/extra"), ("POST", "/api/v1/luminaires.geojson")]


def _answers(app: FastAPI) -> list[tuple[int, list[tuple[str, str]], bytes]]:
    async def run() -> list[tuple[int, list[tuple[str, str]], bytes]]:
        out = []
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            for method, path in REFUSALS:
                r = await client.request(method, path)
                headers = sorted((k, v) for k, v in r.headers.items() if k != "date")
                out.append((r.status_code, headers, r.content))
        return out
    return asyncio.run(run())


def test_404_405_and_redirects_answer_as_without_the_index() -> None:
    indexed = _app()
    linear = _app()
    linear.router.middleware_stack = linear.router.app  # the router's own walk
    got, expected = _answers(indexed), _answers(linear)
    assert [g[0] for g in got] == [e[0] for e in expected]
    assert {e[0] for e in expected} >= {404, 405, 307}
    assert got == expected
