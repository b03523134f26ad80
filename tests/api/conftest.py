"""Fixtures of the API tests: a fresh database per test; the app in-process as the luciole_api
role with its own broker account on the session broker; and, for the public open-data and Open311
routers alone, a minimal app of their own."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import AsyncConnectionPool

from api import open311, opendata
from api.app import create_app
from api.settings import ApiSettings, MqttAccount
from luciole.broker_config import Role as BrokerRole
from luciole.db_roles import DbService
from tests.api.api_world import SECRET, World, build_world
from tests.conftest import RunningStack


def api_settings(stack: RunningStack, db_dsn: str, run_dir: Path, **overrides: object) -> ApiSettings:
    dbname = psycopg.conninfo.conninfo_to_dict(db_dsn)["dbname"]
    assert isinstance(dbname, str)
    username, password = stack.stack.service_account("api-test", BrokerRole.API)
    values: dict[str, object] = dict(
        dsn=stack.endpoints.service_dsn(DbService.API, dbname), token_secret=SECRET,
        mqtt_host=stack.endpoints.mqtt_host, mqtt_port=stack.endpoints.mqtt_port,
        mqtt_accounts=[MqttAccount(username=username, password=password)], run_dir=run_dir,
        pool_min=1, pool_max=4)
    values.update(overrides)
    return ApiSettings.model_validate(values)


@pytest.fixture
def world(db_dsn: str) -> World:
    return build_world(db_dsn)


@pytest.fixture
def settings(stack: RunningStack, db_dsn: str, tmp_path: Path) -> ApiSettings:
    return api_settings(stack, db_dsn, tmp_path / "run")


@pytest.fixture
def client(settings: ApiSettings, world: World) -> Iterator[TestClient]:
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


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
