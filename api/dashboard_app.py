"""The dashboard (issue 15): static files under /dashboard, public like any web page (its data
is not: it logs in at /api/v1/auth/token and sends the bearer token), with a strict
Content-Security-Policy; and its settings, the optional tile URL and the API's clock, at
/api/v1/dashboard/config."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import APIRouter, FastAPI, Request
from pydantic import BaseModel
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.clock import ApiClock

STATIC = Path(__file__).parent / "dashboard"
PREFIX = "/dashboard"

router = APIRouter(prefix="/api/v1", tags=["dashboard"])


class DashboardClock(BaseModel):
    """The API's clock as the page runs it: `now` at the reply, then `speed` times the wall clock
    (a demo's simulated clock runs ahead; in production speed 1 and now the wall clock's)."""

    now: datetime
    speed: float
    simulated: bool


class DashboardConfig(BaseModel):
    tile_url: str | None
    clock: DashboardClock


@router.get("/dashboard/config", response_model=DashboardConfig)
async def config(request: Request) -> DashboardConfig:
    """What the page needs before login: the raster tile URL, if one is set, and the clock its
    periods ("last night", 7 days...) are taken on, the one the data is stamped with."""
    clock: ApiClock = request.app.state.clock
    return DashboardConfig(tile_url=request.app.state.settings.tile_url, clock=DashboardClock(
        now=clock.now(), speed=clock.speed, simulated=clock.sim is not None))


def content_security_policy(tile_url: str | None) -> str:
    """No inline script, no foreign script; images and tiles from the tile server only if set.
    MapLibre needs blob: workers and inline style attributes (it positions its canvas)."""
    tiles = ""
    if tile_url:
        parts = urlsplit(tile_url)
        tiles = f" {parts.scheme}://{parts.netloc}"
    return ("default-src 'none'; script-src 'self'; worker-src blob:; child-src blob:; "
            "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:" + tiles + "; "
            "connect-src 'self'" + tiles + "; font-src 'self'; base-uri 'none'; form-action 'none'; "
            "frame-ancestors 'none'")


class DashboardHeaders:
    """The CSP and friends on every response under /dashboard. A plain ASGI middleware: other
    paths pass straight through (BaseHTTPMiddleware would cost every API request a task group)."""

    def __init__(self, app: ASGIApp, policy: str) -> None:
        self.app = app
        self.headers = [(b"content-security-policy", policy.encode()),
                        (b"x-content-type-options", b"nosniff"),
                        (b"referrer-policy", b"no-referrer"), (b"cache-control", b"no-cache")]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path != PREFIX and not path.startswith(PREFIX + "/"):
            await self.app(scope, receive, send)
            return
        names = {name for name, _ in self.headers}

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                message = {**message, "headers": kept + self.headers}
            await send(message)

        await self.app(scope, receive, with_headers)


def install(app: FastAPI, tile_url: str | None) -> None:
    """Mount the static files (declared public in api/access.py's PUBLIC_MOUNTS)."""
    app.include_router(router)
    app.mount(PREFIX, StaticFiles(directory=STATIC, html=True), name="dashboard")
    app.add_middleware(DashboardHeaders, policy=content_security_policy(tile_url))


