"""The database's disk fills up while controllers publish: ingest stops committing and
acknowledging (nothing is dead-lettered for want of space), the controllers keep what is not
confirmed, and when space returns every reading is stored exactly once.

The database lives in a tablespace on a small tmpfs, grown when "space returns"; the test is
skipped where this process may not mount one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from durable_fleet import DurableFleet, LinkController, ingest_env, register, stored

from luciole.db_roles import OWNER, DbService
from luciole.stack import Stack, wait_for
from tests.ingest.ingest_helpers import ProcessWorker

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.durability]

READINGS = 60_000
HEADROOM_MIB = 4
DB = "luciole_full"


def _mount(where: Path, size_mib: int, remount: bool = False) -> bool:
    options = f"size={size_mib}m" + (",remount" if remount else "")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)],
                          capture_output=True, timeout=30)
    return done.returncode == 0


def _rejects(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM ingest_rejects").fetchone()
    assert row is not None
    return int(row[0])


def test_database_disk_full_holds_readings_until_space_returns(
        own_stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    space = tmp_path / "pgspace"
    space.mkdir()
    if os.geteuid() != 0 or not _mount(space, 128):
        pytest.skip("cannot mount a small tmpfs here")
    try:
        endpoints = own_stack.up()
        pg = own_stack._pg_user  # the stack runs PostgreSQL as this user when started as root
        if pg is not None:
            os.chown(space, pg.pw_uid, pg.pw_gid)
        with psycopg.connect(endpoints.admin_dsn(), autocommit=True) as conn:
            conn.execute(f"CREATE TABLESPACE small OWNER {OWNER} LOCATION '{space}'")
            conn.execute(f"CREATE DATABASE {DB} OWNER {OWNER} TABLESPACE small")
        with psycopg.connect(endpoints.admin_dsn(DB), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
        dsn = endpoints.dsn(DB)
        controllers = [LinkController(tmp_path, own_stack, endpoints, f"full-c{i:02d}", 50, 3_000 + i)
                       for i in range(10)]
        names = [c.name for c in controllers]
        register(dsn, names)
        # leave a few MiB beyond the schema and catalogs: the readings fill them
        used = sum(f.stat().st_size for f in space.rglob("*") if f.is_file())
        assert _mount(space, used // (1 << 20) + HEADROOM_MIB, remount=True)
        log = tmp_path / "ingest.log"
        env = ingest_env(own_stack, LUCIOLE_INGEST_DSN=endpoints.service_dsn(DbService.INGEST, DB))
        worker = ProcessWorker(env, log)
        fleet = DurableFleet(controllers, round_s=0.1)
        try:
            fleet.start(READINGS)
            wait_for(lambda: b"DiskFull" in log.read_bytes() or fleet.error is not None, 120,
                     "the database's disk to fill up")
            assert fleet.error is None, fleet.error
            full_at, _ = stored(dsn, names)
            wait_for(lambda: fleet.taken >= READINGS, 60, "every reading taken")
            held = fleet.held()
            assert held > 0, "readings wait in the outboxes while the disk is full"
            assert stored(dsn, names)[0] < READINGS
            assert _mount(space, 512, remount=True), "space returns"
            wait_for(lambda: fleet.held() == 0 or fleet.error is not None, 120,
                     "every outbox emptied by receipts once space returned")
            assert fleet.error is None, fleet.error
            sent = fleet.taken
        finally:
            fleet.stop()
            worker.stop()
        total, distinct = stored(dsn, names)
        rejects = _rejects(dsn)
        with capsys.disabled():
            sys.stdout.write(f"\ndatabase disk full at {full_at} readings stored, {held} messages held "
                             f"by the controllers; after space returned: sent {sent}, stored {total}, "
                             f"distinct {distinct}, dead letters {rejects}\n")
        assert (total, distinct) == (sent, sent), "0 lost, 0 duplicates"
        assert rejects == 0, "nothing dead-lettered for want of space"
    finally:
        own_stack.down()
        wait_for(lambda: subprocess.run(["umount", str(space)], capture_output=True).returncode == 0,
                 30, "the small file system to unmount")
