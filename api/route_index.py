"""An index in front of the app's router: FastAPI tries every route in turn (each included router
walking its own routes, twice: once to match, once to handle), which cost ~15 % of a live-state
request's CPU. The index maps a path's leading literal segment (the one after /api/v1 under it)
to the app's top-level routes that can match it, in their order, and runs the router over those
only: the same first match, so the same route, 404, 405 and redirect as the full walk.

A route whose leading segments are not literal (a parameter, a mount that could take /api/v1
itself, a kind of route the index does not know) is a candidate for every path."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRouter
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute, get_route_path
from starlette.types import Receive, Scope, Send

from api.access import V1

_V1 = tuple(V1.strip("/").split("/"))  # ("api", "v1")
WILDCARD = None


def _segments(path: str) -> list[str]:
    """The path's segments; trailing slashes dropped, so a path and its redirect share a key."""
    return path.rstrip("/").split("/")[1:]


def path_key(path: str) -> str:
    """The key of a request's path: its first segment, or the one after /api/v1 under it."""
    segs = _segments(path)
    n = len(_V1)
    if len(segs) > n and tuple(segs[:n]) == _V1:
        return V1 + "/" + segs[n]
    return segs[0] if segs else ""


def template_key(template: str) -> str | None:
    """The key of every path `template` can match, or None (WILDCARD) when it can match paths of
    several keys: a parameter where the key is decided."""
    segs = _segments(template)
    n = len(_V1)
    for i, seg in enumerate(segs[:n + 1]):
        if "{" in seg:
            return WILDCARD
        if i < n and seg != _V1[i]:
            return path_key(template)  # not under /api/v1: the literal first segment decides
    return path_key(template)


def _mount_key(mount_path: str) -> str | None:
    """A mount matches its path plus anything below: as a template, its path then a parameter."""
    return template_key(mount_path.rstrip("/") + "/{path:path}")


def _leaf_key(leaf: Any) -> str | None:
    original = getattr(leaf, "original_route", leaf)
    starlette_route = getattr(leaf, "starlette_route", None) or original
    if isinstance(starlette_route, Mount):
        return _mount_key(starlette_route.path)
    if isinstance(starlette_route, (Route, WebSocketRoute)) or isinstance(original, (Route, WebSocketRoute)):
        path = getattr(leaf, "path", None)
        return template_key(path) if isinstance(path, str) else WILDCARD
    return WILDCARD


def route_keys(route: BaseRoute) -> set[str] | None:
    """The keys a top-level route can match, or None when it can match any."""
    contexts = getattr(route, "effective_route_contexts", None)
    if callable(contexts):  # an included router: the keys of its routes, all of them
        low = getattr(route, "effective_low_priority_routes", None)
        if callable(low) and low():
            return WILDCARD
        keys: set[str] = set()
        for leaf in contexts():
            key = _leaf_key(leaf)
            if key is WILDCARD:
                return WILDCARD
            keys.add(key)
        return keys
    key = _leaf_key(route)
    return WILDCARD if key is WILDCARD else {key}


class RouteIndex:
    """Stands in the router's place (its `middleware_stack`, what `Router.__call__` runs): an
    HTTP request goes to a shallow copy of the router holding only the candidate routes of its
    path's key (the rest of the router shared); lifespan and websockets go to the router itself.
    Rebuilt when the router's routes change (FastAPI counts changes, included routers too)."""

    def __init__(self, router: APIRouter) -> None:
        self.router = router
        self._version: object = object()
        self._views: dict[str, APIRouter] = {}
        self._rest: APIRouter = router

    def _signature(self) -> object:
        version = getattr(self.router, "_get_routes_version", None)
        routes = tuple(map(id, self.router.routes))
        return (version(), routes) if callable(version) else routes

    def _build(self) -> None:
        by_route = [(route, route_keys(route)) for route in self.router.routes]
        keys = {k for _, found in by_route if found is not WILDCARD for k in found}
        self._views = {k: self._view(r for r, found in by_route if found is WILDCARD or k in found)
                       for k in keys}
        self._rest = self._view(r for r, found in by_route if found is WILDCARD)

    def _view(self, routes: Iterable[BaseRoute]) -> APIRouter:
        view = copy.copy(self.router)
        view.routes = list(routes)
        return view

    def candidates(self, path: str) -> list[BaseRoute]:
        """The routes, in the router's order, that a request for `path` is matched against."""
        self._refresh()
        return self._views.get(path_key(path), self._rest).routes

    def _refresh(self) -> None:
        signature = self._signature()
        if signature != self._version:
            self._build()
            self._version = signature

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.router.app(scope, receive, send)
            return
        self._refresh()
        scope.setdefault("router", self.router)  # url_for and friends see every route
        view = self._views.get(path_key(get_route_path(scope)), self._rest)
        await view.app(scope, receive, send)


def install(app: FastAPI) -> RouteIndex:
    """Put the index in front of `app`'s router (what the router runs when called)."""
    if app.router.middleware_stack != app.router.app:  # the router wraps itself: keep it whole
        raise RuntimeError("the router has middleware of its own; the route index would skip it")
    index = RouteIndex(app.router)
    app.router.middleware_stack = index
    return index
