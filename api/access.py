"""Every route's access, declared in one place: public, tenant-scoped (with the roles allowed)
or cross-tenant for the grid operator. The app refuses to start with an undeclared route."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from fastapi import APIRouter
from starlette.routing import BaseRoute, Mount

from api.roles import TENANT_ROLES, Role


class Audience(StrEnum):
    PUBLIC = "public"  # no identity needed
    TENANT = "tenant"  # a user or key of a tenant, with one of `roles`; sees only its tenant
    GRID = "grid"  # the grid operator: supply points' energy and settlement, every tenant


@dataclass(frozen=True)
class Rule:
    audience: Audience
    roles: frozenset[Role] = frozenset()


class UndeclaredRoute(RuntimeError):
    """A route with no access rule (or a rule for no route): the app does not start."""


ALL = TENANT_ROLES
ADMIN = frozenset({Role.ADMIN})
OPERATE = frozenset({Role.ADMIN, Role.OPERATOR})
FIELD = frozenset({Role.ADMIN, Role.OPERATOR, Role.TECHNICIAN})
ENERGY = frozenset({Role.ADMIN, Role.ENERGY_MANAGER})
PUBLIC = Rule(Audience.PUBLIC)
GRID = Rule(Audience.GRID, frozenset({Role.GRID_OPERATOR}))


def tenant(roles: Iterable[Role]) -> Rule:
    return Rule(Audience.TENANT, frozenset(roles))


V1 = "/api/v1"

RULES: dict[tuple[str, str], Rule] = {
    # service
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/metrics"): PUBLIC,
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    ("GET", "/docs/oauth2-redirect"): PUBLIC,
    ("GET", "/redoc"): PUBLIC,
    # authentication; the controller's claim code is its credential
    ("POST", f"{V1}/auth/token"): PUBLIC,
    ("POST", f"{V1}/provision"): PUBLIC,
    ("POST", f"{V1}/auth/refresh"): tenant(ALL),
    ("GET", f"{V1}/me"): tenant(ALL),
    ("GET", f"{V1}/users"): tenant(ADMIN),
    ("POST", f"{V1}/users"): tenant(ADMIN),
    ("DELETE", f"{V1}/users/{{user_id}}"): tenant(ADMIN),
    ("GET", f"{V1}/keys"): tenant(ADMIN),
    ("POST", f"{V1}/keys"): tenant(ADMIN),
    ("DELETE", f"{V1}/keys/{{key_id}}"): tenant(ADMIN),
    ("GET", f"{V1}/audit"): tenant(ADMIN),
    # assets
    ("GET", f"{V1}/controllers"): tenant(ALL),
    ("POST", f"{V1}/controllers"): tenant(FIELD),
    ("GET", f"{V1}/controllers/{{controller_id}}"): tenant(ALL),
    ("PATCH", f"{V1}/controllers/{{controller_id}}"): tenant(FIELD),
    ("DELETE", f"{V1}/controllers/{{controller_id}}"): tenant(OPERATE),
    ("POST", f"{V1}/controllers/{{controller_id}}/claim-code"): tenant(FIELD),
    ("GET", f"{V1}/controllers/{{controller_id}}/checklist"): tenant(ALL),
    ("GET", f"{V1}/controllers/{{controller_id}}/sensors"): tenant(ALL),
    ("GET", f"{V1}/luminaires"): tenant(ALL),
    ("POST", f"{V1}/luminaires"): tenant(FIELD),
    ("GET", f"{V1}/luminaires.geojson"): tenant(ALL),
    ("GET", f"{V1}/map/luminaires"): tenant(ALL),
    ("GET", f"{V1}/map/sensors"): tenant(ALL),
    ("POST", f"{V1}/luminaires/import"): tenant(FIELD),
    ("GET", f"{V1}/luminaires/{{luminaire_id}}"): tenant(ALL),
    ("PATCH", f"{V1}/luminaires/{{luminaire_id}}"): tenant(FIELD),
    ("DELETE", f"{V1}/luminaires/{{luminaire_id}}"): tenant(OPERATE),
    ("GET", f"{V1}/cabinets"): tenant(ALL),
    ("POST", f"{V1}/cabinets"): tenant(FIELD),
    ("GET", f"{V1}/cabinets/{{cabinet_id}}"): tenant(ALL),
    ("DELETE", f"{V1}/cabinets/{{cabinet_id}}"): tenant(OPERATE),
    ("GET", f"{V1}/supply-points"): tenant(ALL),
    ("POST", f"{V1}/supply-points"): tenant(ADMIN),
    ("GET", f"{V1}/groups"): tenant(ALL),
    ("POST", f"{V1}/groups"): tenant(OPERATE | ENERGY),
    ("GET", f"{V1}/groups/{{group_id}}"): tenant(ALL),
    ("DELETE", f"{V1}/groups/{{group_id}}"): tenant(OPERATE | ENERGY),
    ("PUT", f"{V1}/groups/{{group_id}}/members"): tenant(OPERATE | ENERGY),
    # live state and readings
    ("GET", f"{V1}/live"): tenant(ALL),
    ("GET", f"{V1}/live/{{luminaire_id}}"): tenant(ALL),
    ("GET", f"{V1}/luminaires/{{luminaire_id}}/series"): tenant(ALL),
    ("GET", f"{V1}/telemetry.csv"): tenant(ALL),
    # commands
    ("POST", f"{V1}/commands"): tenant(FIELD),
    ("GET", f"{V1}/commands"): tenant(ALL),
    ("GET", f"{V1}/commands/{{batch_id}}"): tenant(ALL),
    # faults
    ("GET", f"{V1}/faults"): tenant(ALL),
    ("GET", f"{V1}/faults/{{fault_id}}"): tenant(ALL),
    ("POST", f"{V1}/faults/{{fault_id}}/acknowledge"): tenant(FIELD),
    ("POST", f"{V1}/faults/{{fault_id}}/assign"): tenant(OPERATE),
    ("POST", f"{V1}/faults/{{fault_id}}/comments"): tenant(FIELD),
    # schedules
    ("GET", f"{V1}/schedules"): tenant(ALL),
    ("POST", f"{V1}/schedules"): tenant(ENERGY),
    ("GET", f"{V1}/schedules/{{schedule_id}}"): tenant(ALL),
    ("DELETE", f"{V1}/schedules/{{schedule_id}}"): tenant(ENERGY),
    ("PUT", f"{V1}/groups/{{group_id}}/schedule"): tenant(ENERGY),
    ("POST", f"{V1}/schedules/{{schedule_id}}/push"): tenant(ENERGY | OPERATE),
    ("POST", f"{V1}/schedules/proposals"): tenant(ENERGY),
    ("GET", f"{V1}/schedules/proposals"): tenant(ALL),
    ("POST", f"{V1}/schedules/preview"): tenant(ALL),  # computes, writes nothing
    ("GET", f"{V1}/groups/{{group_id}}/lighting"): tenant(ALL),
    ("PUT", f"{V1}/groups/{{group_id}}/lighting"): tenant(ENERGY),
    # energy
    ("GET", f"{V1}/energy/luminaires/{{luminaire_id}}"): tenant(ALL),
    ("GET", f"{V1}/energy/groups/{{group_id}}"): tenant(ALL),
    ("GET", f"{V1}/energy/municipality"): tenant(ALL),
    ("GET", f"{V1}/energy/supply-points/{{ean}}"): tenant(ALL),
    # the grid operator, across tenants
    ("POST", f"{V1}/grid/auth/refresh"): GRID,  # the grid operator renews its own token
    ("GET", f"{V1}/grid/supply-points"): GRID,
    ("GET", f"{V1}/grid/supply-points/{{ean}}/energy"): GRID,
    ("GET", f"{V1}/grid/settlement/{{ean}}/{{day}}"): GRID,
    ("GET", f"{V1}/grid/settlement-files"): GRID,
    ("GET", f"{V1}/grid/settlement-files/{{file_id}}"): GRID,
    # the dashboard's settings (the optional tile URL); its static files are a public mount below
    ("GET", f"{V1}/dashboard/config"): PUBLIC,
}

PUBLIC_MOUNTS = frozenset({"/dashboard"})
"""Static file mounts, public: the dashboard's page and code (its data comes from the routes)."""


def route_template(scope: Mapping[str, Any]) -> str | None:
    """The full path template of the route a request matched. A route of a router included with
    a prefix (the public open-data and Open311 routers) keeps its own path on the route object
    (FastAPI resolves included routers lazily); the effective route context FastAPI puts in the
    scope carries the full one."""
    context = (scope.get("fastapi") or {}).get("effective_route_context")
    path = getattr(context, "path", None)
    if isinstance(path, str):
        return path
    route = scope.get("route")
    found = getattr(route, "path", None)
    return found if isinstance(found, str) else None


def _methods(route: object) -> list[str]:
    """The methods a route answers (HEAD goes with GET); none for mounts and websockets."""
    methods = getattr(route, "methods", None) or ()
    return sorted(m for m in methods if m != "HEAD")


def flatten(routes: Iterable[BaseRoute]) -> Iterator[tuple[str, str]]:
    """(method, full path) of every route, through included routers (FastAPI resolves those
    lazily: their effective routes carry the full path)."""
    for route in routes:
        contexts = getattr(route, "effective_route_contexts", None)
        found = list(contexts()) if callable(contexts) else [route]
        for item in found:
            path = getattr(item, "path", None)
            for method in _methods(item):
                yield method, str(path)


class Registry:
    """The rules, plus whole routers declared public in one line (open data, Open311)."""

    def __init__(self, rules: dict[tuple[str, str], Rule]) -> None:
        self.rules = dict(rules)

    def public_router(self, router: APIRouter, prefix: str = "") -> APIRouter:
        """Declare every route of `router` (mounted under `prefix`) public; returns it."""
        for method, path in flatten(router.routes):
            self.rules[(method, prefix + path)] = PUBLIC
        return router

    def rule(self, method: str, path: str) -> Rule | None:
        if method == "HEAD":
            method = "GET"
        return self.rules.get((method, path))

    def check(self, routes: Iterable[BaseRoute]) -> None:
        """Every route declared, every declaration a route: else UndeclaredRoute."""
        seen: set[tuple[str, str]] = set()
        missing: list[str] = []
        for route in routes:
            if isinstance(route, Mount) and route.path not in PUBLIC_MOUNTS:
                missing.append(f"mount {route.path}")
        for method, path in flatten(routes):
            seen.add((method, path))
            if (method, path) not in self.rules:
                missing.append(f"{method} {path}")
        if missing:
            raise UndeclaredRoute("routes without an access rule in api/access.py: "
                                  + ", ".join(sorted(missing)))
        stale = sorted(f"{m} {p}" for m, p in self.rules.keys() - seen)
        if stale:
            raise UndeclaredRoute("access rules for no route: " + ", ".join(stale))
