"""PostgreSQL least privilege on the real database: no service is a superuser or can run a shell
through COPY; each role has the grants it uses and no more; ingest works with its own role."""

from __future__ import annotations

import threading

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from ingest.consumer import Consumer
from ingest.service import endpoints as ingest_endpoints
from luciole.compose import ingest_settings
from luciole.db_roles import OWNER, DbService
from luciole.stack import wait_for
from tests.conftest import RunningStack
from tests.ingest.ingest_helpers import (
    Publisher,
    own_rejects,
    poll_payloads,
    register_fleet,
    scalar,
)
from wire.topics import INGEST_SHARE_GROUP

pytestmark = pytest.mark.integration


def _service_dsn(stack: RunningStack, owner_dsn: str, service: DbService) -> str:
    return stack.endpoints.service_dsn(service, conninfo_to_dict(owner_dsn)["dbname"])


def test_no_login_role_of_the_stack_is_privileged(stack: RunningStack) -> None:
    names = [OWNER, *(s.value for s in DbService)]
    with stack.admin() as conn:
        rows = conn.execute(
            "SELECT rolname, rolsuper, rolcreaterole, rolcreatedb, rolbypassrls, rolreplication,"
            " pg_has_role(oid, 'pg_execute_server_program', 'MEMBER')"
            " FROM pg_roles WHERE rolname = ANY(%s) ORDER BY rolname", (names,)).fetchall()
    assert [r[0] for r in rows] == sorted(names)
    assert [r for r in rows if any(r[1:])] == []


@pytest.mark.parametrize("service", list(DbService))
def test_no_service_can_run_a_program_on_the_database_host(
        stack: RunningStack, db_dsn: str, service: DbService) -> None:
    with psycopg.connect(_service_dsn(stack, db_dsn, service)) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("COPY (SELECT 1) TO PROGRAM 'true'")


DENIED = [
    (DbService.INGEST, "SELECT * FROM users"),
    (DbService.INGEST, "SELECT * FROM api_keys"),
    (DbService.INGEST, "UPDATE controllers SET status = 'retired'"),
    (DbService.INGEST, "DELETE FROM luminaire_telemetry"),
    (DbService.INGEST, "DELETE FROM message_ledger"),
    (DbService.INGEST, "INSERT INTO commands (id, tenant_id, controller_id, type, body, issued_at,"
                       " expires_at) VALUES ('x', 't', 'c', 'set_level', '{}', now(), now())"),
    (DbService.INGEST, "SELECT drop_chunks('luminaire_telemetry', older_than => now())"),
    (DbService.INGEST, "SELECT * FROM luciole_retention('400 days', '400 days', '400 days',"
                       " '400 days', '30 days', '30 days', 1048576)"),
    (DbService.INGEST, "CREATE TABLE sneaky (x int)"),
    (DbService.JOBS, "SELECT * FROM api_keys"),
    (DbService.JOBS, "DELETE FROM luminaire_telemetry"),
    (DbService.JOBS, "SELECT drop_chunks('luminaire_telemetry', older_than => now())"),
    (DbService.API, "DELETE FROM luminaire_telemetry"),
    (DbService.API, "INSERT INTO message_ledger (controller_key, boot_id, first_seq, record_count,"
                    " kind) VALUES (1, 1, 1, 1, 1)"),
    (DbService.API, "UPDATE faults SET kind = 'x'"),
    # energy and settlement (0010, 0011): the runner writes them, the API reads them and sets
    # the factors, ingest has nothing to do with them
    (DbService.API, "DELETE FROM energy_interval"),
    (DbService.API, "UPDATE settlement_files SET content = ''"),
    (DbService.JOBS, "UPDATE energy_factors SET value = 0"),
    (DbService.JOBS, "DELETE FROM settlement_files"),
    (DbService.INGEST, "SELECT * FROM settlement_files"),
    (DbService.INGEST, "SELECT * FROM energy_interval"),
]


@pytest.mark.parametrize(("service", "statement"), DENIED)
def test_each_role_is_refused_what_it_does_not_use(
        stack: RunningStack, db_dsn: str, service: DbService, statement: str) -> None:
    with psycopg.connect(_service_dsn(stack, db_dsn, service)) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(statement)


def test_ingest_stores_telemetry_rejects_and_rollups_with_its_own_role_and_account(
        stack: RunningStack, db_dsn: str) -> None:
    fleet = register_fleet(db_dsn, 3)
    base = ingest_settings(stack.stack, worker=2).model_copy(update=dict(
        share_group=INGEST_SHARE_GROUP, session_expiry_s=120, metrics_port=0,
        batch_max_wait_s=0.05, rollup_interval_s=0.2, registry_refresh_min_s=0.2))
    broker, dsn = ingest_endpoints(base)
    assert (broker.username, base.client_id) == ("ingest-2", "ingest-2")
    assert conninfo_to_dict(dsn)["user"] == DbService.INGEST.value
    consumer = Consumer(base, broker, _service_dsn(stack, db_dsn, DbService.INGEST))
    thread = threading.Thread(target=consumer.run, name="ingest-role-test", daemon=True)
    thread.start()
    publisher = Publisher(stack.endpoints)
    try:
        assert consumer.wait_subscribed(15)
        publisher.publish(poll_payloads(fleet, polls=5, luminaires=2))
        publisher.publish([(fleet.topic(next(iter(fleet.keys))), b"not telemetry")])
        wait_for(lambda: scalar(db_dsn, "SELECT count(*) FROM luminaire_telemetry") == 3 * 5 * 2
                 and scalar(db_dsn, "SELECT count(*) FROM ingest_rejects WHERE "
                            + own_rejects(fleet.tenant)) == 1
                 and scalar(db_dsn, "SELECT count(*) FROM luminaire_state") == 3 * 2
                 and scalar(db_dsn, "SELECT count(*) FROM ingest_segments") == 0,
                 30, "telemetry, the reject and the fold stored by the ingest role")
        assert consumer.totals.db_errors == 0
    finally:
        publisher.close()
        consumer.stop()
        thread.join(timeout=15)



def test_ingest_role_stores_acks_and_states(stack: RunningStack, db_dsn: str) -> None:
    """Acks move a command's status and states set the online flag, as the ingest role."""
    import json

    from ingest.writer import Writer
    from tests.ingest.ingest_helpers import T0_US
    from wire.topics import Kind

    fleet = register_fleet(db_dsn, 1)
    (ctl,) = fleet.keys
    with psycopg.connect(db_dsn) as conn:
        conn.execute("INSERT INTO commands (id, tenant_id, controller_id, type, body, issued_at,"
                     " expires_at) VALUES ('k1', %s, %s, 'identify', '{}', %s, %s)",
                     (fleet.tenant, ctl, "2025-12-31T23:00:00Z", "2026-01-02T00:00:00Z"))
    head = {"v": 1, "controller": ctl, "boot_id": 9, "time": "2026-01-01T00:00:00Z"}
    ack = {**head, "id": "a1", "seq": 1, "command_id": "k1", "status": "done"}
    state = {**head, "id": "s2", "seq": 2, "online": True, "firmware": "3.0", "luminaires": 4}
    writer = Writer(_service_dsn(stack, db_dsn, DbService.INGEST))
    try:
        result = writer.write([(fleet.topic(ctl, Kind.ACK), json.dumps(ack).encode()),
                               (fleet.topic(ctl, Kind.STATE), json.dumps(state).encode())],
                              now_us=T0_US)
    finally:
        writer.close()
    assert (result.acks, result.states, sum(result.rejects.values())) == (1, 1, 0)
    with psycopg.connect(db_dsn) as conn:
        assert conn.execute("SELECT status FROM commands").fetchall() == [("done",)]
        assert conn.execute("SELECT online FROM controllers").fetchall() == [(True,)]
        assert conn.execute("SELECT count(*) FROM controller_states").fetchall() == [(1,)]
