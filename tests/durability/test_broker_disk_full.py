"""The broker's disk is full: Mosquitto keeps working from memory but can no longer save its
store, so a restart loses every message it had queued (here: all the readings queued for an
ingest worker that was down). The controllers' end-to-end confirmation keeps each reading in its
outbox until ingest's receipt names it stored, so they send the lost ones again and every reading
is stored exactly once; meanwhile the broker, still on a full disk, carries the live flow.

The broker's persistence directory is a 1 MiB tmpfs filled to the last byte before the readings
are taken; the test is skipped where this process may not mount one."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from durable_fleet import DurableFleet, LinkController, ingest_env, register, stored

from luciole.stack import Stack, pid_alive, wait_for
from tests.ingest.ingest_helpers import ProcessWorker

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.durability]

READINGS = 20_000
CONTROLLERS = 10
LUMINAIRES = 50


def _mount(where: Path, size_mib: int) -> bool:
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mib}m", "tmpfs", str(where)],
                          capture_output=True, timeout=30)
    return done.returncode == 0


def _fill(where: Path) -> int:
    """Write a file until the file system is full; returns the bytes it took."""
    written = 0
    chunk = b"\0" * 4096
    with open(where / "filler", "wb", buffering=0) as f:
        while True:
            try:
                written += f.write(chunk) or 0
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                return written


def _free_bytes(where: Path) -> int:
    st = os.statvfs(where)
    return st.f_bavail * st.f_frsize


def test_broker_disk_full_loses_its_queue_on_restart_but_no_reading(
        own_stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = own_stack.mq_dir / "data"  # the broker's persistence_location
    data.mkdir(parents=True)
    if os.geteuid() != 0 or not _mount(data, 1):
        pytest.skip("cannot mount a small tmpfs here")
    try:
        endpoints = own_stack.up()
        controllers = [LinkController(tmp_path, own_stack, endpoints, f"bfull-c{i:02d}", LUMINAIRES,
                                      5_000 + i) for i in range(CONTROLLERS)]
        names = [c.name for c in controllers]
        register(endpoints.dsn(), names)
        log = tmp_path / "ingest.log"
        env = ingest_env(own_stack)
        ProcessWorker(env, log).stop()  # ingest's persistent session: the broker queues for it
        _fill(data)
        assert _free_bytes(data) == 0
        fleet = DurableFleet(controllers, round_s=0.05)
        try:
            fleet.start(READINGS)
            wait_for(lambda: fleet.taken >= READINGS or fleet.error is not None, 120,
                     "every reading taken while ingest is down")
            # every message sent: PUBACKed by the broker (kept in its memory only, queued for
            # ingest) and waiting for a receipt
            wait_for(lambda: sum(c.link.confirm.outstanding() for c in controllers) == fleet.held()
                     == READINGS // LUMINAIRES or fleet.error is not None, 60, "every message sent")
            assert fleet.error is None, fleet.error
            queued = sum(c.link.confirm.awaiting() for c in controllers)
            assert queued > 0
            message_bytes = len(controllers[0].outbox.peek(1)[0].payload)

            pid = own_stack.endpoints().mosquitto_pid
            assert pid is not None
            os.kill(pid, signal.SIGTERM)  # a clean restart: it saves its store, or tries to
            wait_for(lambda: not pid_alive(pid), 20, "mosquitto to stop")
            broker_log = (own_stack.mq_dir / "mosquitto.log").read_text(errors="replace")
            assert "No space left on device" in broker_log or "rror saving" in broker_log, \
                broker_log[-2000:]
            store = data / "mosquitto.db"
            saved = store.stat().st_size if store.exists() else 0
            assert saved < queued * message_bytes, "the queued messages were not saved"
            own_stack.up()  # still on the full disk

            worker = ProcessWorker(env, log)
            try:
                wait_for(lambda: fleet.held() == 0 or fleet.error is not None, 120,
                         "every outbox emptied by receipts, the disk still full")
                assert fleet.error is None, fleet.error
            finally:
                worker.stop()
            resent = sum(c.link.confirm.resent for c in controllers)
            sent = fleet.taken
        finally:
            fleet.stop()
        total, distinct = stored(endpoints.dsn(), names)
        with capsys.disabled():
            sys.stdout.write(
                f"\nbroker disk full: {queued} messages PUBACKed and queued for ingest (down), "
                f"lost by a clean restart of the broker (saved store: {saved} bytes); the "
                f"controllers resent {resent} messages; sent {sent}, stored {total}, distinct "
                f"{distinct}\n")
        assert resent >= queued, "what the broker lost came again from the outboxes"
        assert (total, distinct) == (sent, sent), "0 lost, 0 duplicates"
    finally:
        own_stack.down()
        wait_for(lambda: subprocess.run(["umount", str(data)], capture_output=True).returncode == 0,
                 30, "the small file system to unmount")
