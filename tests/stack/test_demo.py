"""The demo end to end: fleet -> real broker -> ingest workers -> real TimescaleDB -> pictures,
with the analytics job runner and the API as children, one login per role, and nothing left
running once it stops."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import psycopg
import pytest

from api.credentials import verify_password
from luciole.db_roles import DbService
from luciole.demo import api_healthy, create_logins
from luciole.settings import StackSettings
from luciole.stack import Stack, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _alive(pid: int) -> bool:
    """The child, or anything left in its process group (uvicorn's workers)."""
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
    return True


def test_demo_runs_a_region_into_the_database(tmp_path: Path) -> None:
    var = tmp_path / "var"
    env = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "LUCIOLE_MQTT_PORT": "0", "LUCIOLE_PG_PORT": "0",
           "LUCIOLE_PG_FSYNC": "false", "LUCIOLE_PG_SHARED_BUFFERS": "64MB"}
    console = tmp_path / "demo.out"
    try:
        with open(console, "w") as sink:
            demo_proc = subprocess.Popen(
                [sys.executable, "-m", "luciole.cli", "--var-dir", str(var), "demo",
                 "--controllers", "60", "--duration-s", "75", "--workers", "1"],
                stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
                env=env)
        try:
            # While it runs: the printed API answers, and a printed login works.
            wait_for(lambda: "Ctrl-C stops" in console.read_text() or demo_proc.poll() is not None,
                     240, "the demo's logins", interval_s=0.5)
            out = console.read_text()
            url = re.search(r"API (http://127\.0\.0\.1:\d+)", out)
            assert url is not None, out
            assert f"{url.group(1)}/dashboard" in out
            logins = re.findall(r"^\s+(admin|operator|energy_manager|technician|viewer|"
                                r"grid_operator)\s+(\S+@\S+)\s+(\S+)$", out, re.MULTILINE)
            assert len(logins) == 6, out
            assert api_healthy(url.group(1))
            for _role, email, password in (logins[0], logins[-1]):  # a municipality's, the grid's
                body = urllib.parse.urlencode({"username": email, "password": password}).encode()
                with urllib.request.urlopen(f"{url.group(1)}/api/v1/auth/token", data=body,
                                            timeout=10) as response:
                    assert response.status == 200
                    assert json.loads(response.read())["access_token"]
            assert demo_proc.wait(300) == 0, console.read_text()[-3000:]
        finally:
            if demo_proc.poll() is None:
                demo_proc.send_signal(signal.SIGINT)
                demo_proc.wait(180)
        out = console.read_text()
        assert "readings/s" in out and "faults open" in out and "kWh booked" in out
        demo = var / "demo"
        children = json.loads((demo / "children.json").read_text())
        assert set(children) == {"ingest-1", "fleet", "jobs", "api"}
        assert not [name for name, pid in children.items() if _alive(pid)]
        for picture in ("energy_profile.png", "luminaire_map.png"):
            assert (demo / picture).stat().st_size > 10_000
        labels = (demo / "fault_labels.csv").read_text().splitlines()
        assert labels[0] == "fault,device,start,end"
        assert all(",ctl-" in line or ",cab-" in line for line in labels[1:])
        endpoints = Stack(StackSettings(var_dir=var)).endpoints()
        with psycopg.connect(endpoints.dsn()) as conn:
            rows, controllers = conn.execute(
                "SELECT count(*), count(DISTINCT controller_key) FROM luminaire_telemetry"
            ).fetchone()
            rejects = conn.execute("SELECT count(*) FROM ingest_rejects").fetchone()[0]
            passes = dict(conn.execute("SELECT job, passes FROM job_cursors").fetchall())
            faults_open = conn.execute(
                "SELECT count(*) FROM faults WHERE cleared_at IS NULL").fetchone()[0]
            switched = conn.execute(
                "SELECT count(*) FILTER (WHERE switched_supply), count(*) FROM cabinets").fetchone()
        assert controllers >= 55  # all but any in a simulated communication loss
        assert rows >= 60 * 4 * 10
        assert rejects == 0
        assert passes.get("faults", 0) >= 1 and passes.get("energy", 0) >= 1, passes
        assert faults_open >= 1  # the scenario's first faults begin within the first sim hour
        assert switched[0] > switched[1] / 2  # most cabinets switched off by day

        # A second run on the same stack: the same people, each with a new password.
        again = create_logins(endpoints.service_dsn(DbService.API), "anderlecht", "Anderlecht")
        with psycopg.connect(endpoints.dsn()) as conn:
            stored = dict(conn.execute("SELECT email, password_hash FROM users").fetchall())
        assert len(stored) == 6
        for (_role, email, old), login in zip(logins, again, strict=True):
            assert login.email == email
            assert verify_password(stored[email], login.password)
            assert not verify_password(stored[email], old)

    finally:
        Stack(StackSettings(var_dir=var)).down()
