"""The test databases made ahead (tests/conftest.py, SpareDatabases): each one a fresh copy of the
migrated template that no other test saw, and none left behind once closed."""

from __future__ import annotations

import psycopg
import pytest

from tests.conftest import RunningStack, SpareDatabases

pytestmark = pytest.mark.integration
PREFIX = "spare_test_"  # apart from the session's own test databases (t_...)


def _made_here(stack: RunningStack) -> set[str]:
    with stack.admin() as conn:
        return {r[0] for r in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s",
                                           (PREFIX + "%",))}


def test_each_database_is_fresh_and_none_is_left_behind(stack: RunningStack) -> None:
    spares = SpareDatabases(stack.endpoints.admin_dsn(), prefix=PREFIX)
    try:
        first = spares.take()
        with psycopg.connect(stack.endpoints.dsn(first), autocommit=True) as conn:
            conn.execute("INSERT INTO tenants (id, name) VALUES ('town', 'Town')")
        spares.drop(first)
        second = spares.take()
        assert second != first
        with psycopg.connect(stack.endpoints.dsn(second)) as conn:
            assert conn.execute("SELECT count(*) FROM tenants").fetchone() == (0,)
            versions = conn.execute("SELECT count(*) FROM schema_migrations").fetchone()
        assert versions is not None and versions[0] > 0  # migrated
        spares.drop(second)
    finally:
        spares.close()
    assert _made_here(stack) == set()  # dropped after their tests, and the spare made ahead too


def test_a_database_that_cannot_be_copied_fails_the_test_that_takes_it(stack: RunningStack) -> None:
    spares = SpareDatabases(stack.endpoints.admin_dsn(), prefix="bad name ")
    try:
        with pytest.raises(psycopg.errors.SyntaxError):
            spares.take()
    finally:
        spares.close()
