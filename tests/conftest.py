"""Session fixtures: the real Mosquitto and PostgreSQL + TimescaleDB, started once per test session
by the same launcher as `luciole stack up`, in a temporary directory, on free loopback ports."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from hypothesis import settings as hypothesis_settings

from luciole.migrate import migrate
from luciole.settings import StackSettings
from luciole.stack import Endpoints, Stack, wait_for

TEMPLATE_DB = "luciole_template"

# No per-example deadline: the first example that reaches a numba kernel compiles it (seconds on a
# fresh clone, milliseconds from the cache afterwards), and a shared 2-core CI machine stalls at
# random. Speed is measured by bench/, not by hypothesis' timer.
hypothesis_settings.register_profile("luciole", deadline=None)
hypothesis_settings.load_profile("luciole")


@dataclass
class RunningStack:
    stack: Stack
    endpoints: Endpoints

    def admin(self) -> psycopg.Connection:
        return psycopg.connect(self.endpoints.dsn("postgres"), autocommit=True)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    settings = StackSettings(
        var_dir=tmp_path_factory.mktemp("stack"),
        mqtt_port=0,
        pg_port=0,
        pg_fsync=False,  # throwaway data: durability is tested by killing processes, not power
        pg_shared_buffers="256MB",
    )
    running = Stack(settings)
    endpoints = running.up()
    try:
        with psycopg.connect(endpoints.dsn("postgres"), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {TEMPLATE_DB}")
        migrate(endpoints.dsn(TEMPLATE_DB))
        with psycopg.connect(endpoints.dsn("postgres"), autocommit=True) as conn:
            # nobody (TimescaleDB's scheduler included) may hold the template open while it is copied
            conn.execute(f"ALTER DATABASE {TEMPLATE_DB} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false")
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (TEMPLATE_DB,),
            )
        yield RunningStack(running, endpoints)
    finally:
        running.down()


def _copy_template(conn: psycopg.Connection, name: str) -> bool:
    try:
        conn.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE_DB}")
    except psycopg.errors.ObjectInUse:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                     (TEMPLATE_DB,))
        return False
    return True


@pytest.fixture
def db_dsn(stack: RunningStack) -> Iterator[str]:
    """A fresh, migrated database of its own for one test (a copy of the migrated template)."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with stack.admin() as conn:
        wait_for(lambda: _copy_template(conn, name), 30, "template database to be free")
    yield stack.endpoints.dsn(name)
    with stack.admin() as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def throwaway_stack(var_dir: Path, **overrides) -> Stack:
    """A stack of a test's own (to stop, kill or restart): free loopback ports, no fsync."""
    values = dict(var_dir=var_dir, mqtt_port=0, pg_port=0, pg_fsync=False, pg_shared_buffers="64MB")
    values.update(overrides)
    return Stack(StackSettings(**values))


@pytest.fixture
def own_stack(tmp_path: Path) -> Iterator[Stack]:
    """A stack of this test's own, not started; stopped after the test whatever happened."""
    stack = throwaway_stack(tmp_path / "var")
    yield stack
    stack.down()


@pytest.fixture
def mqtt(stack: RunningStack) -> Endpoints:
    """The broker's endpoints with the service account."""
    return stack.endpoints
