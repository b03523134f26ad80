"""The demo: a simulated region publishing to the local stack, ingested into TimescaleDB, live.

It starts (or reuses) the stack, registers the region, runs ingest workers and the fleet
simulator as child processes, prints a status line with rates every few seconds, and draws the
energy profile and the luminaire map when it stops (Ctrl-C, or --duration-s).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from astral import LocationInfo
from astral.sun import sunset
from rich.console import Console

from controller_fw_sim.fleet_inventory import (
    REGION_CENTRE,
    build_inventory,
    luminaire_device_id,
    sensor_device_id,
)
from luciole.broker_config import Role
from luciole.compose import fleet_targets, ingest_account
from luciole.migrate import migrate
from luciole.pictures import render
from luciole.seed import seed_inventory
from luciole.stack import Stack, choose_port

log = logging.getLogger(__name__)
console = Console()

FLEET_PUBLISHERS = 2

STATUS = """
SELECT
  (SELECT count(*) FROM luminaire_telemetry),
  (SELECT count(*) FROM ingest_rejects),
  (SELECT coalesce(sum(energy_wh), 0) / 1000.0 FROM energy_15min_supply),
  (SELECT max(time) FROM luminaire_telemetry WHERE time > now() - interval '3 days'),
  (SELECT count(*) FROM luminaire_state WHERE failure <> 0)
"""


@dataclass(frozen=True)
class DemoOptions:
    controllers: int = 2000
    luminaires: int = 4
    speed: float = 60.0
    workers: int = 2
    duration_s: float | None = None  # wall seconds; None: until Ctrl-C
    status_every_s: float = 5.0
    seed: int = 7


def demo_start(now: datetime) -> datetime:
    """Half an hour before yesterday's sunset in Brussels: the demo opens on a whole night that is
    already in the past, so at 60x it stays behind the wall clock for about a day of wall time."""
    observer = LocationInfo(latitude=REGION_CENTRE[0], longitude=REGION_CENTRE[1]).observer
    yesterday = (now - timedelta(days=1)).date()
    return sunset(observer, date=yesterday, tzinfo=UTC) - timedelta(minutes=30)


def demo_scenario(inventory, start: datetime) -> dict:
    """One night with every fault kind once, on devices of this region (ground truth for analytics)."""
    ctl = inventory.controller_ids
    n = len(ctl)

    def lum(i: int, k: int = 0) -> str:
        return luminaire_device_id(ctl[i % n], k % inventory.luminaires_per_controller)

    faults = [
        ("lamp_failure", lum(3), "+2h", "+14h", {"standby_w": 0.4}),
        ("driver_failure", lum(7, 1), "+4h30m", None, {}),
        ("comm_loss", ctl[2 % n], "+3h", "+3h30m", {}),
        ("day_burning", lum(11, 2), "+0s", "+2d", {"cause": "photocell"}),
        ("cycling", lum(4, 3), "+4h", "+8h", {"period_s": 300, "on_fraction": 0.6}),
        ("over_voltage", lum(5), "+5h", "+5h20m", {"factor": 1.15}),
        ("under_voltage", lum(6), "+6h", "+6h15m", {"factor": 0.82}),
        ("power_drift", lum(8), "+0s", None, {"rate_per_day": 0.02}),
        ("low_power_factor", lum(9, 1), "+1h", "+13h", {"power_factor": 0.55}),
        ("cabinet_leakage", inventory.cabinet_ids[0], "+7h", "+9h", {"current_a": 0.8}),
        ("tilt", ctl[5 % n], "+10h17m", None, {"angle_deg": 82}),
        ("stuck_sensor", sensor_device_id(ctl[1 % n]), "+1h", "+20h", {}),
    ]
    return {
        "version": 1,
        "name": "demo night: every fault kind once",
        "start": start.isoformat().replace("+00:00", "Z"),
        "faults": [
            {"fault": f, "device": d, "start": a, **({"end": b} if b else {}), "params": p}
            for f, d, a, b, p in faults
        ],
    }


def _spawn(argv: list[str], log_path: Path, env: dict[str, str]) -> subprocess.Popen:
    out = open(log_path, "ab")  # noqa: SIM115 - owned by the child for its lifetime
    return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env=env, start_new_session=True)


def _stop(proc: subprocess.Popen, sig: int, timeout_s: float = 20.0) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, sig)
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        log.warning("pid %d did not stop; killing it", proc.pid)
        proc.kill()
        proc.wait(10)


def run_demo(stack: Stack, options: DemoOptions) -> int:
    endpoints = stack.up()
    migrate(endpoints.dsn())
    console.print(f"[bold]Luciole demo[/bold] — MQTT {endpoints.mqtt_host}:{endpoints.mqtt_port}, "
                  f"PostgreSQL {endpoints.pg_host}:{endpoints.pg_port}/{endpoints.pg_database}")
    inventory = build_inventory(options.controllers, options.luminaires, seed=options.seed)
    added = seed_inventory(endpoints.dsn(), inventory)
    console.print(f"region: {inventory.n_controllers:,} controllers, {inventory.n_luminaires:,} "
                  f"luminaires in {len(inventory.tenants)} municipalities (new rows: {added})")

    out = stack.var / "demo"
    out.mkdir(parents=True, exist_ok=True)
    # Each child is the command line itself: it reads the stack file and hands the service its
    # own account; no secret travels on a command line or in the environment.
    luciole = [sys.executable, "-m", "luciole.cli", "--var-dir", str(stack.var)]
    env = dict(os.environ)
    for i in range(options.workers):  # the accounts exist before the children start
        stack.service_account(ingest_account(i + 1), Role.INGEST)
    fleet_targets(stack, FLEET_PUBLISHERS)
    children: list[tuple[str, subprocess.Popen]] = []
    metrics_ports: list[int] = []
    for i in range(options.workers):
        metrics_ports.append(choose_port("127.0.0.1", 9464 + i, set(metrics_ports)))
        worker_env = {**env, "LUCIOLE_INGEST_METRICS_PORT": str(metrics_ports[-1])}
        children.append((f"ingest-{i + 1}", _spawn([*luciole, "ingest", "--worker", str(i + 1)],
                                                   out / f"ingest-{i + 1}.log", worker_env)))
    start = demo_start(datetime.now(UTC))
    scenario = out / "scenario.json"
    scenario.write_text(json.dumps(demo_scenario(inventory, start), indent=2))
    fleet_argv = [
        *luciole, "-v", "sim", "fleet", "--publishers", str(FLEET_PUBLISHERS),
        "--controllers", str(options.controllers), "--luminaires", str(options.luminaires),
        "--speed", str(options.speed), "--start", start.isoformat(), "--seed", str(options.seed),
        "--scenario", str(scenario), "--labels", str(out / "fault_labels.csv"),
    ]
    children.append(("fleet", _spawn(fleet_argv, out / "fleet.log", env)))
    metrics = ", ".join(f"http://127.0.0.1:{p}/metrics" for p in metrics_ports)
    console.print(f"ingest workers: {options.workers} ({metrics}), fleet at "
                  f"{options.speed:g}x from {start:%Y-%m-%d %H:%M} UTC; logs in {out}")
    console.print("Ctrl-C stops the demo (the stack keeps running: `luciole stack down`).")

    stopping = False

    def _interrupt(*_: object) -> None:
        nonlocal stopping
        stopping = True

    previous = signal.signal(signal.SIGINT, _interrupt)
    began = time.monotonic()
    last_rows, last_t = 0, began
    try:
        with psycopg.connect(endpoints.dsn(), autocommit=True) as conn:
            while not stopping:
                if options.duration_s is not None and time.monotonic() - began >= options.duration_s:
                    break
                dead = [name for name, p in children if p.poll() is not None]
                if dead:
                    console.print(f"[red]{', '.join(dead)} stopped unexpectedly; see {out}[/red]")
                    break
                time.sleep(min(options.status_every_s, 0.5))
                now = time.monotonic()
                if now - last_t < options.status_every_s:
                    continue
                status = conn.execute(STATUS).fetchone()
                assert status is not None  # an aggregate query has one row
                rows, rejects, kwh, latest, failing = status
                rate = (rows - last_rows) / (now - last_t)
                sim = f"{latest:%m-%d %H:%M}" if latest else "waiting"
                console.print(f"{now - began:5.0f}s sim {sim} | rows {rows:,} ({rate:,.0f}/s) | "
                              f"rejects {rejects:,} | {kwh:,.1f} kWh | failing {failing:,}")
                last_rows, last_t = rows, now
    finally:
        signal.signal(signal.SIGINT, previous)
        for name, proc in reversed(children):  # the fleet first, then the workers drain and stop
            _stop(proc, signal.SIGINT if name == "fleet" else signal.SIGTERM)
    pictures = render(endpoints.dsn(), out)
    console.print("pictures: " + ", ".join(str(p) for p in pictures))
    console.print(f"fault ground truth: {out / 'fault_labels.csv'}")
    return 0
