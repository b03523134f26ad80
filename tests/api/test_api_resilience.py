"""When the database drops the API's connections, the API answers 503 (never a 500 or a stall),
recovers on its own, and metrics keep answering."""

from __future__ import annotations

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.roles import Role
from luciole.stack import wait_for
from tests.api.api_world import World
from tests.conftest import RunningStack

pytestmark = pytest.mark.integration


def test_dropped_database_connections(stack: RunningStack, client: TestClient, world: World,
                                      db_dsn: str) -> None:
    headers = world.headers(world.a, Role.VIEWER)
    assert client.get("/api/v1/live", headers=headers).status_code == 200
    dbname = psycopg.conninfo.conninfo_to_dict(db_dsn)["dbname"]
    with stack.admin() as conn:
        killed = conn.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                              " WHERE datname = %s AND usename = 'luciole_api'", (dbname,)).fetchone()
    assert killed is not None and killed[0] >= 1
    codes = [client.get("/api/v1/live", headers=headers).status_code for _ in range(6)]
    assert set(codes) <= {200, 503}, codes
    assert client.get("/metrics").status_code == 200
    wait_for(lambda: client.get("/api/v1/live", headers=headers).status_code == 200, 15,
             "the pool to reconnect")
