"""`luciole stack up/down`: real processes, checked by pid; crash recovery; busy ports."""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path

import psycopg
import pytest

from luciole.stack import Stack, pid_alive, wait_for
from tests.conftest import throwaway_stack

pytestmark = pytest.mark.integration


def _children(pid: int) -> set[int]:
    found = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found |= {int(c) for c in (task / "children").read_text().split()}
        except OSError:
            continue
    return found


def _alive(pid: int) -> bool:
    return pid_alive(pid)


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def test_down_leaves_no_process_of_the_stack(own_stack: Stack) -> None:
    endpoints = own_stack.up()
    assert endpoints.mosquitto_pid and endpoints.postgres_pid
    pids = {endpoints.mosquitto_pid, endpoints.postgres_pid} | _children(endpoints.postgres_pid)
    assert len(pids) > 3, "postgres runs its auxiliary processes as children"
    assert all(_alive(p) for p in pids)
    assert own_stack.status()["mosquitto"] == "running"
    assert own_stack.status()["postgres"] == "running"

    cmdlines = {p: _cmdline(p) for p in pids}

    own_stack.down()

    # the same processes, not a new one that took a freed pid on a busy machine; a postgres child
    # may still be finishing its exit when the postmaster is gone
    wait_for(lambda: not [p for p in pids if _alive(p) and _cmdline(p) == cmdlines[p]], 10,
             "every process of the stack to exit")
    assert own_stack.status()["mosquitto"] == "stopped"
    assert own_stack.status()["postgres"] == "stopped"


def test_up_twice_is_idempotent(own_stack: Stack) -> None:
    first = own_stack.up()
    second = own_stack.up()
    assert (second.mosquitto_pid, second.postgres_pid) == (first.mosquitto_pid, first.postgres_pid)
    assert (second.mqtt_port, second.pg_port) == (first.mqtt_port, first.pg_port)


def test_recovers_after_both_processes_are_killed(own_stack: Stack) -> None:
    first = own_stack.up()
    with psycopg.connect(first.dsn()) as conn:
        conn.execute("CREATE TABLE survivor (x int)")
        conn.execute("INSERT INTO survivor VALUES (42)")
    children = _children(first.postgres_pid)
    os.kill(first.mosquitto_pid, signal.SIGKILL)
    os.kill(first.postgres_pid, signal.SIGKILL)
    wait_for(lambda: not _alive(first.mosquitto_pid) and not _alive(first.postgres_pid), 10, "kill")
    # the orphaned backends notice the postmaster died and exit on their own
    wait_for(lambda: not any(_alive(c) for c in children), 30, "postgres children to exit")
    assert (own_stack.pg_data / "postmaster.pid").exists(), "a crash leaves a stale pid file"

    second = own_stack.up()

    assert second.postgres_pid != first.postgres_pid
    assert second.mosquitto_pid != first.mosquitto_pid
    # same ports again: recorded ports are reused, TIME_WAIT does not count as busy
    assert (second.mqtt_port, second.pg_port) == (first.mqtt_port, first.pg_port)
    with psycopg.connect(second.dsn()) as conn:
        assert conn.execute("SELECT x FROM survivor").fetchone() == (42,)


def test_busy_preferred_port_gets_a_free_one(tmp_path: Path) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        busy = blocker.getsockname()[1]
        stack = throwaway_stack(tmp_path / "var", mqtt_port=busy)
        try:
            endpoints = stack.up()
            assert endpoints.mqtt_port != busy
            with socket.create_connection(("127.0.0.1", endpoints.mqtt_port), timeout=2):
                pass
        finally:
            stack.down()


def test_listens_on_loopback_only(own_stack: Stack) -> None:
    endpoints = own_stack.up()
    listening = Path("/proc/net/tcp").read_text().splitlines()[1:]
    ports = {endpoints.mqtt_port, endpoints.pg_port}
    for line in listening:
        fields = line.split()
        local, state = fields[1], fields[3]
        address, port = local.split(":")
        if state == "0A" and int(port, 16) in ports:  # 0A = LISTEN
            assert address == "0100007F", f"port {int(port, 16)} listens on {address}, not 127.0.0.1"
