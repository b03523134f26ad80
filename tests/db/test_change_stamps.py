"""The live-change stamps (luminaire_state.changed_at, controllers.online_changed_at) are set by one
trigger function, and only when the state they stamp changes."""

from __future__ import annotations

from datetime import datetime

import psycopg
import pytest

pytestmark = pytest.mark.integration

OLD = "2026-01-01 00:00:00+00"


def _stamp_functions(conn: psycopg.Connection) -> list[tuple[str, str]]:
    return conn.execute(
        "SELECT t.tgname, p.proname FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid"
        " WHERE NOT t.tgisinternal AND t.tgrelid IN ('luminaire_state'::regclass, 'controllers'::regclass)"
        " ORDER BY t.tgname").fetchall()


def test_both_stamps_come_from_one_function(db_dsn: str) -> None:
    with psycopg.connect(db_dsn) as conn:
        assert _stamp_functions(conn) == [("controller_online_changed", "stamp_changed_at"),
                                          ("luminaire_state_changed", "stamp_changed_at")]
        left = conn.execute("SELECT proname FROM pg_proc WHERE proname IN"
                            " ('luminaire_state_changed', 'controller_online_changed')").fetchall()
        assert left == []


def _seed(conn: psycopg.Connection) -> int:
    conn.execute("INSERT INTO tenants (id, name) VALUES ('town', 'Town')")
    conn.execute("INSERT INTO controllers (id, tenant_id, status, online) VALUES ('ctl-1', 'town',"
                 " 'active', true)")
    row = conn.execute("SELECT key FROM controllers WHERE id = 'ctl-1'").fetchone()
    assert row is not None
    conn.execute("INSERT INTO luminaire_state (controller_key, luminaire, time, level, status, power_w,"
                 " energy_wh, voltage_v, power_factor, driver_temp_c, failure)"
                 " VALUES (%s, 0, now(), 120, 0, 20, 1, 230, 0.9, 40, 0)", (row[0],))
    return int(row[0])


def _luminaire_stamp(conn: psycopg.Connection, update: str) -> datetime:
    conn.execute(f"UPDATE luminaire_state SET changed_at = '{OLD}'")
    conn.execute(f"UPDATE luminaire_state SET {update}")
    row = conn.execute("SELECT changed_at FROM luminaire_state").fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


def _controller_stamp(conn: psycopg.Connection, update: str) -> datetime:
    conn.execute(f"UPDATE controllers SET online_changed_at = '{OLD}'")
    conn.execute(f"UPDATE controllers SET {update}")
    row = conn.execute("SELECT online_changed_at FROM controllers").fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


@pytest.mark.parametrize(("update", "stamped"), [
    ("level = 0", True), ("status = 1", True), ("failure = 4", True),
    ("level = 120", False),  # the same level again
    ("power_w = 21, energy_wh = 2, time = now()", False),  # a new reading of the same state
    ("level = 0, changed_at = '2026-02-01 00:00:00+00'", True),  # a change wins over a set stamp
])
def test_a_luminaire_is_stamped_when_its_shown_state_changes(db_dsn: str, update: str,
                                                             stamped: bool) -> None:
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        _seed(conn)
        now = conn.execute("SELECT clock_timestamp()").fetchone()[0]  # type: ignore[index]
        at = _luminaire_stamp(conn, update)
        assert (at >= now) is stamped, at


def test_an_unchanged_state_keeps_a_stamp_the_update_sets_itself(db_dsn: str) -> None:
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        _seed(conn)
        at = _luminaire_stamp(conn, "changed_at = '2026-02-01 00:00:00+00', power_w = 3")
        assert at.isoformat() == "2026-02-01T00:00:00+00:00"
        conn.execute("UPDATE controllers SET online_changed_at = '2026-02-01 00:00:00+00',"
                     " last_seen = now()")
        row = conn.execute("SELECT online_changed_at FROM controllers").fetchone()
        assert row is not None and row[0] == at


@pytest.mark.parametrize(("update", "stamped"), [
    ("online = false", True), ("online = true", False), ("last_seen = now()", False),
])
def test_a_controller_is_stamped_when_its_link_changes(db_dsn: str, update: str, stamped: bool) -> None:
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        _seed(conn)
        now = conn.execute("SELECT clock_timestamp()").fetchone()[0]  # type: ignore[index]
        assert (_controller_stamp(conn, update) >= now) is stamped


def test_a_stamp_of_a_column_the_table_lacks_is_refused(db_dsn: str) -> None:
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        _seed(conn)
        conn.execute("CREATE TRIGGER wrong BEFORE UPDATE ON controllers FOR EACH ROW"
                     " EXECUTE FUNCTION stamp_changed_at('no_such_column')")
        with pytest.raises(psycopg.errors.RaiseException, match="takes the name of a column"):
            conn.execute("UPDATE controllers SET online = false")
