"""Session fixtures: the real Mosquitto and PostgreSQL + TimescaleDB, started once per test session
by the same launcher as `luciole stack up`, in a temporary directory, on free loopback ports."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import settings as hypothesis_settings

from luciole.broker_config import new_secret
from luciole.db_roles import OWNER, create_database
from luciole.migrate import migrate
from luciole.settings import StackSettings
from luciole.stack import Endpoints, Stack, wait_for

TEMPLATE_DB = "luciole_template"

# No per-example deadline: the first example that reaches a numba kernel compiles it (seconds on a
# fresh clone, milliseconds from the cache afterwards), and a shared 2-core CI machine stalls at
# random. Speed is measured by bench/, not by hypothesis' timer.
hypothesis_settings.register_profile("luciole", deadline=None)
hypothesis_settings.load_profile("luciole")


OBSERVER = "test-observer"
# Tests watch and forge traffic on every luciole/ topic with any client id; no stack of a real
# deployment has such an account (its admin manages accounts and reads no telemetry).
OBSERVER_ACLS: list[dict[str, Any]] = [
    {"acltype": acltype, "topic": topic_filter, "priority": 0, "allow": True}
    for acltype, topic_filter in [
        ("publishClientSend", "luciole/#"), ("publishClientReceive", "luciole/#"),
        ("subscribePattern", "luciole/#"), ("subscribePattern", "$share/+/luciole/#"),
    ]
]


def with_observer(stack: Stack, endpoints: Endpoints) -> Endpoints:
    """The endpoints with the test observer as MQTT account (created once per var dir)."""
    secret = stack.var / "test-observer.secret"
    if not secret.exists():
        password = new_secret()
        with stack.broker_admin(endpoints) as admin:
            admin.create_role(OBSERVER, OBSERVER_ACLS)
            admin.create_client(OBSERVER, password, OBSERVER)
        secret.write_text(password)
        secret.chmod(0o600)
    return replace(endpoints, mqtt_username=OBSERVER, mqtt_password=secret.read_text())


class ObservedStack(Stack):
    """A test's stack: `up()` returns endpoints with the observer as MQTT account."""

    def up(self) -> Endpoints:
        return with_observer(self, super().up())


@dataclass
class RunningStack:
    stack: Stack
    endpoints: Endpoints  # MQTT: the observer; PostgreSQL: the owner (dsn()), admin_dsn()

    def admin(self) -> psycopg.Connection:
        return psycopg.connect(self.endpoints.admin_dsn(), autocommit=True)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    settings = StackSettings(
        var_dir=tmp_path_factory.mktemp("stack"),
        mqtt_port=0,
        pg_port=0,
        pg_fsync=False,  # throwaway data: durability is tested by killing processes, not power
        pg_shared_buffers="256MB",
    )
    running = ObservedStack(settings)
    endpoints = running.up()
    try:
        create_database(endpoints.admin_dsn(), TEMPLATE_DB)
        migrate(endpoints.dsn(TEMPLATE_DB))
        with psycopg.connect(endpoints.admin_dsn(), autocommit=True) as conn:
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
        conn.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE_DB} OWNER {OWNER}")
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


def throwaway_stack(var_dir: Path, **overrides: Any) -> Stack:
    """A stack of a test's own (to stop, kill or restart): free loopback ports, no fsync; `up()`
    returns endpoints with the observer as MQTT account."""
    values: dict[str, Any] = dict(var_dir=var_dir, mqtt_port=0, pg_port=0, pg_fsync=False,
                                  pg_shared_buffers="64MB")
    values.update(overrides)
    return ObservedStack(StackSettings(**values))


@pytest.fixture
def own_stack(tmp_path: Path) -> Iterator[Stack]:
    """A stack of this test's own, not started; stopped after the test whatever happened."""
    stack = throwaway_stack(tmp_path / "var")
    yield stack
    stack.down()


@pytest.fixture
def mqtt(stack: RunningStack) -> Endpoints:
    """The broker's endpoints with the test observer account."""
    return stack.endpoints


@pytest.fixture(autouse=True)
def devices_closed() -> Iterator[None]:
    """Fail a test that leaves a simulated controller connected (see tests/devices.py): its
    session would be taken over, command by command, from a later test's device of the same id."""
    from tests.devices import Device

    yield
    leaked = Device.leaked()
    assert not leaked, f"simulated controllers left connected by this test: {leaked}"
