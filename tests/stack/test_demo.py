"""The demo end to end: fleet -> real broker -> ingest workers -> real TimescaleDB -> pictures."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from luciole.settings import StackSettings
from luciole.stack import Stack

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_demo_runs_a_region_into_the_database(tmp_path: Path) -> None:
    var = tmp_path / "var"
    env = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "LUCIOLE_MQTT_PORT": "0", "LUCIOLE_PG_PORT": "0",
           "LUCIOLE_PG_FSYNC": "false", "LUCIOLE_PG_SHARED_BUFFERS": "64MB"}
    try:
        done = subprocess.run(
            [sys.executable, "-m", "luciole.cli", "--var-dir", str(var), "demo", "--controllers", "60",
             "--duration-s", "25", "--workers", "1"],
            capture_output=True, text=True, timeout=240, env=env,
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        assert "rows" in done.stdout
        demo = var / "demo"
        for picture in ("energy_profile.png", "luminaire_map.png"):
            assert (demo / picture).stat().st_size > 10_000
        labels = (demo / "fault_labels.csv").read_text().splitlines()
        assert labels[0] == "fault,device,start,end"
        assert len(labels) == 1 + 12  # every fault kind once, on devices of the demo region
        assert all(",ctl-" in line or ",cab-" in line for line in labels[1:])
        endpoints = Stack(StackSettings(var_dir=var)).endpoints()
        with psycopg.connect(endpoints.dsn()) as conn:
            rows, controllers = conn.execute(
                "SELECT count(*), count(DISTINCT controller_key) FROM luminaire_telemetry"
            ).fetchone()
            rejects = conn.execute("SELECT count(*) FROM ingest_rejects").fetchone()[0]
        assert controllers >= 55  # all but any in a simulated communication loss
        assert rows >= 60 * 4 * 10  # at 60x, 25 s is 25 sim minutes of 1-minute telemetry
        assert rejects == 0
    finally:
        Stack(StackSettings(var_dir=var)).down()
