"""Fixtures of the dashboard's browser tests: the real app served by uvicorn on a free loopback
port (a thread of the test process), on a fresh database with the API tests' world and the
session broker; and headless Chromium driven by Selenium (Debian's chromium and
chromium-driver, installed by scripts/bootstrap.sh: missing, the tests fail and say so)."""

from __future__ import annotations

import os
import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from selenium.webdriver.remote.webdriver import WebDriver

from api.app import create_app
from api.settings import ApiSettings, MqttAccount
from luciole.broker_config import Role as BrokerRole
from luciole.stack import wait_for
from tests.api.api_world import World, build_world
from tests.api.conftest import api_settings
from tests.browser import chromium
from tests.conftest import RunningStack


@dataclass
class Served:
    url: str  # http://127.0.0.1:port
    world: World
    db_dsn: str
    settings: ApiSettings


@pytest.fixture
def world(db_dsn: str) -> World:
    return build_world(db_dsn)


@pytest.fixture
def served(stack: RunningStack, db_dsn: str, world: World, tmp_path: Path) -> Iterator[Served]:
    with serve(stack, db_dsn, world, tmp_path) as running:
        yield running


@contextmanager
def serve(stack: RunningStack, db_dsn: str, world: World, tmp_path: Path,
          **overrides: object) -> Iterator[Served]:
    """The app on a free loopback port; `overrides`: settings of this test's (a simulated clock)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    # An account of its own per served app: the broker binds a client id to its account, and a
    # previous test's server still shutting down must not take the session over from this one.
    username, password = stack.stack.service_account(f"api-dash-{port}", BrokerRole.API)
    settings = api_settings(stack, db_dsn, tmp_path / "run",
                            mqtt_accounts=[MqttAccount(username=username, password=password)],
                            **overrides)
    # the browser keeps connections alive: bound the graceful shutdown instead of waiting on them
    server = uvicorn.Server(uvicorn.Config(create_app(settings), log_level="warning", lifespan="on",
                                           timeout_graceful_shutdown=3))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: httpx.get(f"{url}/healthz", timeout=2).json()["broker"], 30,
                 "the dashboard's API server and its broker link")
        yield Served(url, world, db_dsn, settings)
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()
        assert not thread.is_alive(), "the dashboard's API server did not stop"


ARTIFACTS = Path(__file__).parent / "artifacts"


@pytest.fixture(scope="session")
def artifacts() -> Iterator[Path]:
    """Where the browser tests keep their screenshots and figures (LUCIOLE_ARTIFACTS, or
    tests/dashboard/artifacts/, git-ignored); printed at the end of the session."""
    where = Path(os.environ.get("LUCIOLE_ARTIFACTS") or ARTIFACTS)
    where.mkdir(parents=True, exist_ok=True)
    yield where
    names = sorted(p.name for p in where.iterdir())
    sys.stdout.write(f"\ndashboard artefacts in {where}: {', '.join(names)}\n")


@pytest.fixture(scope="session")
def browser() -> Iterator[WebDriver]:
    with chromium() as driver:
        yield driver


@pytest.fixture
def page(browser: WebDriver, served: Served) -> Iterator[WebDriver]:
    """The browser on the dashboard's origin, logged out (a fresh session storage)."""
    browser.get(f"{served.url}/healthz")  # the origin without loading the app
    browser.execute_script("sessionStorage.clear()")
    browser.get("about:blank")
    yield browser
    browser.get("about:blank")
