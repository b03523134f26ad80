"""A write is committed before its reply leaves: a client that reads right after a POST's answer
sees what the POST wrote. Served by real uvicorn on a loopback port (a thread of this process),
on the real database, with a COMMIT made slow by a deferred constraint trigger (two seconds of
pg_sleep at commit time), so a reply sent before the COMMIT is read stale every time."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
import uvicorn

from api.app import create_app
from api.roles import Role
from api.settings import MqttAccount
from luciole.broker_config import Role as BrokerRole
from luciole.stack import wait_for
from tests.api.api_world import World, build_world
from tests.api.conftest import api_settings
from tests.conftest import RunningStack

pytestmark = pytest.mark.integration

SLOW_COMMIT_S = 2.0


@pytest.fixture
def served(stack: RunningStack, db_dsn: str, tmp_path: Path) -> Iterator[tuple[str, World]]:
    world = build_world(db_dsn)
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute(f"""
            CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN PERFORM pg_sleep({SLOW_COMMIT_S}); RETURN NULL; END $$;
            CREATE CONSTRAINT TRIGGER slow_commit AFTER UPDATE ON faults
                DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION slow_commit();""")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    username, password = stack.stack.service_account(f"api-commit-{port}", BrokerRole.API)
    settings = api_settings(stack, db_dsn, tmp_path / "run",
                            mqtt_accounts=[MqttAccount(username=username, password=password)])
    server = uvicorn.Server(uvicorn.Config(create_app(settings), log_level="warning",
                                           lifespan="on", timeout_graceful_shutdown=3))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: httpx.get(f"{url}/healthz", timeout=2).status_code == 200, 30,
                 "the API server")
        yield url, world
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()
        assert not thread.is_alive(), "the API server did not stop"


def test_a_read_right_after_a_write_sees_it(served: tuple[str, World]) -> None:
    url, world = served
    fault = world.a.fault
    headers = world.headers(world.a, Role.OPERATOR)
    with httpx.Client(base_url=f"{url}/api/v1", headers=headers, timeout=30) as client:
        assert client.get(f"/faults/{fault}").json()["state"] == "open"
        started = time.monotonic()
        answer = client.post(f"/faults/{fault}/acknowledge", json={"text": "on my way"})
        took = time.monotonic() - started
        assert answer.status_code == 200, answer.text
        assert answer.json()["state"] == "acknowledged"
        # the reply waited for the COMMIT, and a read right after it sees the acknowledgement
        after = client.get(f"/faults/{fault}").json()
        assert after["state"] == "acknowledged", (after["state"], f"reply after {took:.2f} s")
        assert took >= SLOW_COMMIT_S * 0.9, took
