"""Static mounts are declared too: the dashboard's is public; any other stops the app."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from api.access import PUBLIC_MOUNTS, Registry, UndeclaredRoute
from api.dashboard_app import STATIC


def test_an_undeclared_mount_stops_the_app() -> None:
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    app.mount("/dashboard", StaticFiles(directory=STATIC))
    Registry({}).check(app.routes)  # declared in PUBLIC_MOUNTS: fine
    assert "/dashboard" in PUBLIC_MOUNTS
    app.mount("/files", StaticFiles(directory=STATIC))
    with pytest.raises(UndeclaredRoute, match="mount /files"):
        Registry({}).check(app.routes)
