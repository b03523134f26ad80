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
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta
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


def _token(url: str, email: str, password: str) -> str:
    body = urllib.parse.urlencode({"username": email, "password": password}).encode()
    with urllib.request.urlopen(f"{url}/api/v1/auth/token", data=body, timeout=10) as response:
        return str(json.loads(response.read())["access_token"])


def _call(url: str, path: str, token: str, body: object = None) -> dict:
    request = urllib.request.Request(
        f"{url}{path}", data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return dict(json.loads(response.read()))


def test_demo_runs_a_region_into_the_database(tmp_path: Path) -> None:
    var = tmp_path / "var"
    env = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "LUCIOLE_MQTT_PORT": "0", "LUCIOLE_PG_PORT": "0",
           "LUCIOLE_PG_FSYNC": "false", "LUCIOLE_PG_SHARED_BUFFERS": "64MB"}
    console = tmp_path / "demo.out"
    try:
        with open(console, "w") as sink:
            demo_proc = subprocess.Popen(
                [sys.executable, "-m", "luciole.cli", "--var-dir", str(var), "demo",
                 "--controllers", "60", "--duration-s", "120", "--workers", "1", "--agents", "4"],
                stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
                env=env)
        try:
            # While it runs: the printed API answers, and a printed login works.
            wait_for(lambda: "Ctrl-C stops" in console.read_text() or demo_proc.poll() is not None,
                     240, "the demo's logins", interval_s=0.5)
            shown = time.monotonic()  # the dashboard's address and the logins are on screen
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
            # Faults injected by the scenario appear through the API within the first minute.
            operator = next(login for login in logins if login[0] == "operator")
            token = _token(url.group(1), operator[1], operator[2])
            wait_for(lambda: _call(url.group(1), "/api/v1/faults", token)["items"],
                     max(5.0, 60.0 - (time.monotonic() - shown)), "a fault in GET /faults",
                     interval_s=1)
            first_fault_s = time.monotonic() - shown
            # A command to the printed group of hosted agents is done by their agents.
            tenant = logins[0][1].split("@")[1].split(".")[0]  # admin@<tenant>.demo.luciole
            group = re.search(rf"{tenant} group (\d+) \('edge agents'\)", out)
            assert group is not None, out
            issued = _call(url.group(1), "/api/v1/commands", token, {
                "target": {"group": int(group.group(1))},
                "action": {"type": "set_level", "level": 100, "duration_s": 600}})
            assert 1 <= issued["devices"] <= 4, issued
            wait_for(lambda: _call(url.group(1), f"/api/v1/commands/{issued['id']}", token)
                     ["counts"].get("done") == issued["devices"], 60, "the group command done",
                     interval_s=1)
            assert demo_proc.wait(300) == 0, console.read_text()[-3000:]
        finally:
            if demo_proc.poll() is None:
                demo_proc.send_signal(signal.SIGINT)
                demo_proc.wait(180)
        out = console.read_text()
        assert "readings/s" in out and "faults open" in out and "kWh booked" in out
        assert "s simulated = " in out and "s wall behind the newest reading" in out
        # 4 asked; one goes back to the fleet when they would be all of their municipality's
        # controllers (it then plays the municipality's first faults)
        hosted_n = re.search(r"(\d+) controllers run real edge agents", out)
        assert hosted_n is not None and 3 <= int(hosted_n.group(1)) <= 4, out
        print(f"demo: first fault in GET /faults {first_fault_s:.0f} s after the logins")  # noqa: T201
        demo = var / "demo"
        children = json.loads((demo / "children.json").read_text())
        assert set(children) == {"ingest-1", "fleet", "agents", "jobs", "api"}
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
        again = create_logins(endpoints.service_dsn(DbService.API), tenant, tenant.title())
        with psycopg.connect(endpoints.dsn()) as conn:
            stored = dict(conn.execute("SELECT email, password_hash FROM users").fetchall())
        assert len(stored) == 6
        for (_role, email, old), login in zip(logins, again, strict=True):
            assert login.email == email
            assert verify_password(stored[email], login.password)
            assert not verify_password(stored[email], old)

    finally:
        Stack(StackSettings(var_dir=var)).down()


def test_the_demo_runs_past_the_wall_clocks_window(tmp_path: Path) -> None:
    """The demo's simulated clock, opening 18 hours ahead of the wall clock and run at 900x,
    passes the wall clock's "now + 1 day" within the run (at 60x from last night's sunset it
    does after about 50 minutes), and ingest keeps accepting every record: its window moves with
    the fleet's clock. Nothing is left running."""
    var = tmp_path / "var"
    env = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "LUCIOLE_MQTT_PORT": "0", "LUCIOLE_PG_PORT": "0",
           "LUCIOLE_PG_FSYNC": "false", "LUCIOLE_PG_SHARED_BUFFERS": "64MB"}
    began = datetime.now(UTC)
    start = began + timedelta(hours=18)
    console = tmp_path / "demo.out"
    try:
        with open(console, "w") as sink:
            demo_proc = subprocess.Popen(
                [sys.executable, "-m", "luciole.cli", "--var-dir", str(var), "demo",
                 "--controllers", "8", "--agents", "0", "--workers", "1", "--speed", "900",
                 "--switched-fraction", "0", "--tick-s", "30", "--start", start.isoformat(),
                 "--duration-s", "110"],
                stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
                env=env)
        try:
            assert demo_proc.wait(400) == 0, console.read_text()[-3000:]
        finally:
            if demo_proc.poll() is None:
                demo_proc.send_signal(signal.SIGINT)
                demo_proc.wait(180)
        children = json.loads((var / "demo" / "children.json").read_text())
        assert not [name for name, pid in children.items() if _alive(pid)]
        endpoints = Stack(StackSettings(var_dir=var)).endpoints()
        with psycopg.connect(endpoints.dsn()) as conn:
            newest, rows = conn.execute(
                "SELECT max(time), count(*) FROM luminaire_telemetry").fetchone()
            rejects = conn.execute(
                "SELECT count(*), string_agg(DISTINCT reason, '; ') FROM ingest_rejects").fetchone()
        # the newest record lies past the window the wall clock alone would allow
        assert newest > datetime.now(UTC) + timedelta(days=1), (newest, console.read_text()[-2000:])
        assert rows > 8 * 4 * 60 * 6  # a reading a simulated minute, six simulated hours at least
        assert rejects[0] == 0, rejects
    finally:
        Stack(StackSettings(var_dir=var)).down()
