"""Fixtures of the public API tests: an app of their own with the open-data and Open311 routers
under /api/v1, on a fresh database, connecting as the API's own role (luciole_api)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import AsyncConnectionPool

from api import open311, opendata
from luciole.db_roles import DbService


async def _connection(request: Request) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    async with request.app.state.pool.connection() as conn:
        yield conn


def build_app(api_dsn: str, **open311_options: Any) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncConnectionPool(api_dsn, min_size=1, max_size=4, open=False) as pool:
            app.state.pool = pool
            yield

    app = FastAPI(lifespan=lifespan)
    app.include_router(opendata.router(_connection), prefix="/api/v1")
    app.include_router(open311.router(_connection, **open311_options), prefix="/api/v1")
    return app


@dataclass
class PublicApi:
    client: TestClient
    owner_dsn: str  # to seed and inspect
    api_dsn: str  # the API's role


@pytest.fixture
def api_dsns(stack, db_dsn: str) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    database = conninfo_to_dict(db_dsn)["dbname"]
    return db_dsn, stack.endpoints.service_dsn(DbService.API, database)


@pytest.fixture
def make_api(api_dsns: tuple[str, str]) -> Iterator[Callable[..., PublicApi]]:
    """Build the app (with Open311 options) and its client; closed after the test."""
    opened: list[TestClient] = []

    def make(**open311_options: Any) -> PublicApi:
        client = TestClient(build_app(api_dsns[1], **open311_options),
                            raise_server_exceptions=False)
        client.__enter__()
        opened.append(client)
        return PublicApi(client, *api_dsns)

    yield make
    for client in opened:
        client.__exit__(None, None, None)


@pytest.fixture
def public_api(make_api: Callable[..., PublicApi]) -> PublicApi:
    return make_api()
