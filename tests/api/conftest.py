"""Fixtures of the API tests: a fresh database per test, the app in-process as the luciole_api
role, with its own broker account on the session broker."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from api_world import SECRET, World, build_world
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import ApiSettings, MqttAccount
from luciole.broker_config import Role as BrokerRole
from luciole.db_roles import DbService
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
