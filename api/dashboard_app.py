"""The dashboard (issue 15): static files under /dashboard, public like any web page (its data
is not: it logs in at /api/v1/auth/token and sends the bearer token), with a strict
Content-Security-Policy; and its one setting, the optional tile URL, at /api/v1/dashboard/config."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from fastapi import APIRouter, FastAPI, Request
from pydantic import BaseModel
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.responses import Response
from starlette.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "dashboard"
PREFIX = "/dashboard"

router = APIRouter(prefix="/api/v1", tags=["dashboard"])


class DashboardConfig(BaseModel):
    tile_url: str | None


@router.get("/dashboard/config", response_model=DashboardConfig)
async def config(request: Request) -> DashboardConfig:
    """What the page needs before login: the raster tile URL, if one is set."""
    return DashboardConfig(tile_url=request.app.state.settings.tile_url)


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


class DashboardHeaders(BaseHTTPMiddleware):
    """The CSP and friends on every response under /dashboard."""

    def __init__(self, app: object, policy: str) -> None:
        super().__init__(app)  # type: ignore[arg-type]
        self.policy = policy

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        if request.url.path == PREFIX or request.url.path.startswith(PREFIX + "/"):
            response.headers["Content-Security-Policy"] = self.policy
            response.headers["X-Content-Type-Options"] = "nosniff"
            response.headers["Referrer-Policy"] = "no-referrer"
            response.headers["Cache-Control"] = "no-cache"
        return response


def install(app: FastAPI, tile_url: str | None) -> None:
    """Mount the static files (declared public in api/access.py's PUBLIC_MOUNTS)."""
    app.include_router(router)
    app.mount(PREFIX, StaticFiles(directory=STATIC, html=True), name="dashboard")
    app.add_middleware(DashboardHeaders, policy=content_security_policy(tile_url))


