"""`luciole stack up / status / down` as a user runs them, checked by pid."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from luciole.stack import pid_alive

pytestmark = pytest.mark.integration


def luciole(*args: str, env_var_dir: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "luciole.cli", "--var-dir", str(env_var_dir), *args],
        capture_output=True, text=True, timeout=180,
        env={"LUCIOLE_MQTT_PORT": "0", "LUCIOLE_PG_PORT": "0", "LUCIOLE_PG_FSYNC": "false",
             "LUCIOLE_PG_SHARED_BUFFERS": "64MB", "PATH": "/usr/bin:/bin:/usr/sbin:/sbin"},
    )


def test_stack_down_leaves_no_process_running(tmp_path: Path) -> None:
    var = tmp_path / "var"
    try:
        up = luciole("stack", "up", env_var_dir=var)
        assert up.returncode == 0, up.stdout + up.stderr
        assert "127.0.0.1" in up.stdout and "migrations applied: 0001_core" in up.stdout
        status = json.loads(luciole("stack", "status", env_var_dir=var).stdout)
        assert status["mosquitto"] == status["postgres"] == "running"
        pids = [status["mosquitto_pid"], status["postgres_pid"]]
        assert all(pid_alive(p) for p in pids)
    finally:
        down = luciole("stack", "down", env_var_dir=var)
    assert down.returncode == 0, down.stderr
    assert [p for p in pids if pid_alive(p)] == []
    assert json.loads(luciole("stack", "status", env_var_dir=var).stdout)["postgres"] == "stopped"
