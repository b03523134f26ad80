"""Session fixtures: the real Mosquitto and PostgreSQL + TimescaleDB, started once per test session
by the same launcher as `luciole stack up`, in a temporary directory, on free loopback ports."""

from __future__ import annotations

import queue
import threading
import time
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
from luciole.stack import Endpoints, Stack

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


def _copy_template(conn: psycopg.Connection, name: str) -> bool:
    try:
        conn.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE_DB} OWNER {OWNER}")
    except psycopg.errors.ObjectInUse:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                     (TEMPLATE_DB,))
        return False
    return True


class SpareDatabases:
    """Fresh copies of the migrated template for the tests, made one ahead by a thread of their
    own while a test runs, and dropped by that thread after it: each test still gets a database
    no other test used, without waiting the second or more that a copy and a drop take."""

    def __init__(self, admin_dsn: str, prefix: str = "t_") -> None:
        self._admin_dsn = admin_dsn
        self._prefix = prefix
        self._jobs: queue.Queue[tuple[str, str] | None] = queue.Queue()
        self._ready: queue.Queue[str | BaseException] = queue.Queue()
        self._errors: list[BaseException] = []
        self._thread: threading.Thread | None = None

    def _run(self) -> None:
        with psycopg.connect(self._admin_dsn, autocommit=True) as conn:
            while (job := self._jobs.get()) is not None:
                kind, name = job
                try:
                    if kind == "create":
                        self._ready.put(self._create(conn, name))
                    else:
                        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
                except Exception as exc:  # noqa: BLE001 - raised in the test that takes or drops next
                    (self._ready.put if kind == "create" else self._errors.append)(exc)

    @staticmethod
    def _create(conn: psycopg.Connection, name: str) -> str:
        """Copy the template, waiting while someone holds it open; any other error at once."""
        deadline = time.monotonic() + 30
        while not _copy_template(conn, name):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the template database was still in use after 30 s ({name})")
            time.sleep(0.05)
        return name

    def _create_next(self) -> None:
        self._jobs.put(("create", f"{self._prefix}{uuid.uuid4().hex[:12]}"))

    def take(self) -> str:
        """The name of a fresh copy; the next one starts now."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="spare-databases", daemon=True)
            self._thread.start()
            self._create_next()
        self._raise_errors()
        self._create_next()
        got = self._ready.get(timeout=180)
        if isinstance(got, BaseException):
            raise got
        return got

    def drop(self, name: str) -> None:
        self._jobs.put(("drop", name))

    def _raise_errors(self) -> None:
        if self._errors:
            error, self._errors[:] = self._errors[0], []
            raise RuntimeError("dropping a test database failed") from error

    def close(self) -> None:
        if self._thread is None:
            return
        self._jobs.put(None)
        self._thread.join(180)
        with psycopg.connect(self._admin_dsn, autocommit=True) as conn:
            while not self._ready.empty():
                spare = self._ready.get()
                if isinstance(spare, str):
                    conn.execute(f"DROP DATABASE IF EXISTS {spare} WITH (FORCE)")
        self._raise_errors()


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


@pytest.fixture(scope="session")
def spare_databases(stack: RunningStack) -> Iterator[SpareDatabases]:
    spares = SpareDatabases(stack.endpoints.admin_dsn())
    try:
        yield spares
    finally:
        spares.close()


@pytest.fixture
def db_dsn(stack: RunningStack, spare_databases: SpareDatabases) -> Iterator[str]:
    """A fresh, migrated database of its own for one test (a copy of the migrated template)."""
    name = spare_databases.take()
    yield stack.endpoints.dsn(name)
    spare_databases.drop(name)


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
