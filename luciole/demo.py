"""The demo: a simulated region publishing to the local stack, ingested into TimescaleDB, live.

It starts (or reuses) the stack, registers the region, creates one login per role, runs ingest
workers, the fleet simulator, the analytics job runner (`luciole jobs`, short periods) and the
API (`luciole api serve`, 2 workers, a free loopback port) as child processes, prints the API's
address and the logins, a progress line every few seconds, and draws the energy profile and the
luminaire map when it stops (Ctrl-C, or --duration-s). Every child it started is stopped, its
process group with it, before it returns.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
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
from controller_fw_sim.fleet_store import mark_switched
from ingest.prepare import LedgerKind
from luciole.broker_config import Role
from luciole.compose import fleet_targets, ingest_account
from luciole.db_roles import DbService
from luciole.demo_schedules import ApiError, DemoSchedules, EnergyManager
from luciole.hosted_agents import pick_hosted
from luciole.migrate import migrate
from luciole.pictures import render
from luciole.seed import seed_inventory
from luciole.stack import Stack, StackError, choose_port, free_port, wait_for
from wire.sim_clock import SimClock

log = logging.getLogger(__name__)
console = Console(soft_wrap=True)  # a line per status, however narrow the terminal

FLEET_PUBLISHERS = 2
DEMO_LEAD_MIN = 40  # the demo opens this long before sunset (see demo_start)

API_WORKERS = 2
# The analytics job runner's periods in the demo: simulated time runs at 60x, so the production
# periods (a minute to an hour of wall time) would leave the dashboard still for too long.
DEMO_JOBS_ENV = {
    "LUCIOLE_JOBS_FAULTS_EVERY_S": "5",
    "LUCIOLE_JOBS_ENERGY_EVERY_S": "15",
    "LUCIOLE_JOBS_SETTLEMENT_EVERY_S": "60",
    # the optimiser waits for its first described group and plans at its next pass: the demo's
    # schedule is optimised within the first minute, then once a simulated day (DB-cheap passes)
    "LUCIOLE_JOBS_OPTIMISER_EVERY_S": "10",
    "LUCIOLE_JOBS_PROGRESS_EVERY_S": "30",
    "LUCIOLE_JOBS_METRICS_PORT": "0",
}
# One login per role: the five roles of a municipality, and the grid operator (no tenant).
DEMO_ROLES = ("admin", "operator", "energy_manager", "technician", "viewer", "grid_operator")

# Readings are counted from the exactly-once ledger's rows received since the last look (by its
# received_at index), not by counting luminaire_telemetry, which grows all run long (0.3 s a look
# at 5.5 million rows in an hour's run). The bulk fleet's newest live state is read apart from
# the hosted agents': the agents keep the demo's clock on their own, so the newest reading alone
# hides a fleet fallen behind it on a busy machine.
STATUS = f"""
SELECT
  (SELECT coalesce(sum(record_count), 0) FROM message_ledger
   WHERE kind = {int(LedgerKind.LUMINAIRE)} AND received_at > %(since)s),
  (SELECT count(*) FROM ingest_rejects),
  (SELECT max(time) FROM luminaire_telemetry WHERE time > now() - interval '3 days'),
  (SELECT max(time) FROM luminaire_state),
  (SELECT count(*) FROM faults WHERE cleared_at IS NULL),
  (SELECT coalesce(sum(energy_wh), 0) / 1000.0 FROM energy_supply_interval),
  (SELECT coalesce(sum(estimated_wh + default_wh), 0) / 1000.0 FROM energy_supply_interval),
  (SELECT max(s.time) FROM luminaire_state s JOIN controllers c ON c.key = s.controller_key
   WHERE c.id <> ALL(%(hosted)s))
"""
# Each municipality's energy booked since the demo's start, how far, and its baseline's share.
BOOKED_SINCE = """
SELECT i.tenant_id, sum(i.energy_wh)::float8, max(i.bucket) + interval '15 minutes',
       coalesce(b.share, 1.0)
FROM energy_tenant_interval i LEFT JOIN energy_baselines b ON b.tenant_id = i.tenant_id
WHERE i.bucket >= %s
GROUP BY i.tenant_id, b.share
"""


@dataclass(frozen=True)
class Login:
    role: str
    email: str
    password: str
    tenant: str | None


def create_logins(dsn: str, tenant: str, tenant_name: str) -> list[Login]:
    """One user per role with a generated password, through api.bootstrap; a user left by an
    earlier run gets a new password (the old one was only ever shown on that run's console)."""
    from api import bootstrap
    from api.credentials import hash_password
    from api.roles import Role

    bootstrap.create_tenant(dsn, tenant, tenant_name)
    logins = []
    for role_name in DEMO_ROLES:
        role = Role(role_name)
        owner = None if role is Role.GRID_OPERATOR else tenant
        email = f"{role_name.replace('_', '-')}@{owner or 'grid'}.demo.luciole"
        password = secrets.token_urlsafe(12)
        try:
            bootstrap.create_user(dsn, email, role, owner, password, name=f"demo {role_name}")
        except bootstrap.BootstrapError:
            with psycopg.connect(dsn) as conn:
                done = conn.execute(
                    "UPDATE users SET password_hash = %s, disabled_at = NULL"
                    " WHERE lower(email) = lower(%s) AND role = %s",
                    (hash_password(password), email, role.value))
                if done.rowcount != 1:
                    raise
        logins.append(Login(role_name, email, password, owner))
    return logins


def api_healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@dataclass(frozen=True)
class DemoOptions:
    controllers: int = 500
    luminaires: int = 4
    speed: float = 60.0
    workers: int = 2
    duration_s: float | None = None  # wall seconds; None: until Ctrl-C
    status_every_s: float = 5.0
    seed: int = 7
    switched_fraction: float = 0.9  # most cabinets switched off by day, as on Sibelga's network
    agents: int = 8  # controllers played by real edge agents (one process); 0: none
    tick_s: float = 1.0  # the fleet's simulated step; coarser for very high speeds
    start: datetime | None = None  # simulated start; None: 40 minutes before last night's sunset


def demo_start(now: datetime) -> datetime:
    """40 minutes before yesterday's sunset in Brussels: the demo opens on a whole night that is
    already in the past, so at 60x it stays behind the wall clock for about a day of wall time.
    Its first 10 simulated minutes are day for sure (the day-burning rule leaves out the half
    hour before sunset): ten readings of the lamp burning by day, three of which raise it, within
    the first quarter minute of wall time; the region lights up at sunset, 40 s in, so energy is
    booked within the first minute."""
    observer = LocationInfo(latitude=REGION_CENTRE[0], longitude=REGION_CENTRE[1]).observer
    yesterday = (now - timedelta(days=1)).date()
    return sunset(observer, date=yesterday, tzinfo=UTC) - timedelta(minutes=DEMO_LEAD_MIN)


def demo_scenario(inventory, start: datetime, first: Sequence[str] = (),
                  avoid: Iterable[str] = ()) -> dict:
    """One night with every fault kind once, on devices of this region (ground truth for analytics).

    `first`: controllers that take the earliest faults (day burning, then the lamp failure), so
    that the municipality whose logins the demo prints sees a fault within the first minute;
    `avoid`: controllers the fleet does not play (hosted agents)."""
    skip = set(avoid)
    order = [c for c in inventory.controller_ids if c not in skip] or list(inventory.controller_ids)
    position = {c: i for i, c in enumerate(inventory.controller_ids)}
    switched = inventory.switched[inventory.controller_cabinet]
    # the slots of day burning (from the start; only where the supply is on by day), the lamp
    # failure (+35 min), the driver failure (+40 min) and the communication loss (+35 min)
    slots: tuple[int, ...] = (3, 7, 2)
    if first and first[0] in position and not switched[position[first[0]]]:
        slots = (0, 3, 7, 2)
    for slot, c in zip(slots, first, strict=False):
        if c in order:
            j = order.index(c)
            order[slot % len(order)], order[j] = order[j], order[slot % len(order)]
    ctl = order
    n = len(ctl)

    def lum(i: int, k: int = 0) -> str:
        return luminaire_device_id(ctl[i % n], k % inventory.luminaires_per_controller)

    # day burning shows only where the supply is on by day: a cabinet that is not switched
    always = [i for i in range(n) if not switched[position[ctl[i]]]] or [11]
    # the first faults begin within the first simulated hour (a minute of wall time at 60x)
    faults = [
        ("lamp_failure", lum(3), "+35m", "+14h", {"standby_w": 0.4}),
        ("driver_failure", lum(7, 1), "+40m", None, {}),
        ("comm_loss", ctl[2 % n], "+35m", "+3h30m", {}),
        ("day_burning", lum(always[0], 2), "+0s", "+2d", {"cause": "photocell"}),
        ("cycling", lum(4, 3), "+45m", "+8h", {"period_s": 300, "on_fraction": 0.6}),
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


def hosted_and_spares(inventory, agents: int) -> tuple[list[str], list[str]]:
    """The controllers hosted agents play, and those of the same municipality (whose logins the
    demo prints) that the fleet plays, on a cabinet powered by day first (day burning shows only
    there): the scenario's earliest faults go to the spares. A municipality of hosted agents
    only gives its last one back to the fleet."""
    hosted = pick_hosted(inventory, agents)
    if not hosted:
        return [], []
    tenant = inventory.controller_tenant
    index = {c: i for i, c in enumerate(inventory.controller_ids)}
    t = tenant[index[hosted[0]]]
    switched = inventory.switched[inventory.controller_cabinet]
    mine = [i for i in range(inventory.n_controllers)
            if tenant[i] == t and inventory.controller_ids[i] not in set(hosted)]
    spares = [inventory.controller_ids[i] for i in sorted(mine, key=lambda i: bool(switched[i]))]
    ours = [c for c in hosted if tenant[index[c]] == t]
    if not spares and len(ours) > 1:
        hosted.remove(ours[-1])
        spares = [ours[-1]]
    return hosted, spares


def scenario_controllers(scenario: dict) -> set[str]:
    """The controllers a fault scenario touches (its devices are `ctl-N`, `ctl-N:k`, `cab-N`)."""
    return {f["device"].split(":")[0] for f in scenario["faults"]}


HOSTED_GROUP = "edge agents"


def register_hosted_groups(dsn: str, inventory, hosted: list[str]) -> dict[str, int]:
    """One group per municipality holding the luminaires of its hosted controllers (the ones
    that obey commands and schedules): {tenant: group id}."""
    tenants = dict(zip(inventory.controller_ids, inventory.controller_tenant_ids(), strict=True))
    groups: dict[str, int] = {}
    with psycopg.connect(dsn) as conn:
        for tenant in sorted({tenants[c] for c in hosted}):
            row = conn.execute(
                "INSERT INTO groups (tenant_id, name) VALUES (%s, %s) ON CONFLICT (tenant_id, name)"
                " DO UPDATE SET name = EXCLUDED.name RETURNING id", (tenant, HOSTED_GROUP)).fetchone()
            assert row is not None
            groups[tenant] = int(row[0])
            conn.execute("DELETE FROM group_members WHERE group_id = %s", (row[0],))
            conn.execute(
                "INSERT INTO group_members (group_id, luminaire_id) SELECT %s, id FROM luminaires"
                " WHERE controller_id = ANY(%s)",
                (row[0], [c for c in hosted if tenants[c] == tenant]))
    return groups


def hosted_road_class(inventory, hosted: list[str], tenant: str) -> str:
    """The road class most of a municipality's hosted controllers light."""
    from controller_fw_sim.sensors import RoadClass

    index = {c: i for i, c in enumerate(inventory.controller_ids)}
    tenants = inventory.controller_tenant_ids()
    classes = [int(inventory.controller_road_class[index[c]]) for c in hosted
               if tenants[index[c]] == tenant]
    return RoadClass(max(set(classes), key=classes.count)).name.lower() if classes else "residential"


def savings_so_far_kwh(conn: psycopg.Connection, start: datetime,
                       fleets: dict[str, tuple[float, float, float] | None]) -> float:
    """Saved since `start` in every municipality, the day running included: its energy booked
    against the baseline up to where energy is booked, as the API's energy report counts a
    running bucket (`api.energy_report.savings_so_far_wh`). `fleets`: each municipality's full
    input power and position (the report's FLEET), filled on first use."""
    from api.energy import ENERGY_CURSOR, FLEET
    from api.energy_report import DRIVER_EFFICIENCY, STANDBY_W, savings_so_far_wh

    position = conn.execute(ENERGY_CURSOR).fetchone()
    saved_wh = 0.0
    for tenant, energy_wh, newest_end, share in conn.execute(BOOKED_SINCE, (start,)).fetchall():
        if tenant not in fleets:
            fleets[tenant] = conn.execute(FLEET.format(which="true"), {
                "tenant": tenant, "eff": DRIVER_EFFICIENCY, "standby": STANDBY_W}).fetchone()
        fleet = fleets[tenant]
        if fleet is None or fleet[1] is None or fleet[2] is None:
            continue
        saved_wh += savings_so_far_wh(start, float(energy_wh), newest_end,
                                      None if position is None else position[0],
                                      float(fleet[0] or 0.0), float(fleet[1]), float(fleet[2]),
                                      float(share))
    return saved_wh / 1000.0


def progress_line(elapsed_s: float, latest: datetime | None, state_at: datetime | None,
                  rate: float, rejects: int, faults_open: int, kwh: float,
                  saved_kwh: float, estimated_kwh: float = 0.0, speed: float = 1.0,
                  fleet_behind_s: float | None = None) -> str:
    """Simulated time (the newest record), readings per second, faults open, energy booked
    (and how much of it is still an estimate) and saved so far, and how far live state
    (luminaire_state) trails the newest record, in simulated seconds (record times are the
    simulated clock's) with the wall seconds that is at `speed`.

    Booked energy is not monotonic: an interval is booked as soon as it is touched, the
    unreported part estimated (or defaulted to rated power), and re-booked from the counters
    when the readings arrive; the estimated share says how much may still move.

    `fleet_behind_s`: how far the bulk-simulated fleet's newest live state trails the demo's
    clock, in simulated seconds (None: nothing stored yet); said in wall seconds too, since a
    fleet falling behind on a busy machine shows only there."""
    # negative before dusk (energy booked where the baseline has no night yet: lamps burning
    # by day); under 0.05 kWh either way is shown as 0.0, not -0.0
    saved = 0.0 if abs(saved_kwh) < 0.05 else saved_kwh
    sim = f"{latest:%m-%d %H:%M}" if latest else "waiting"
    if latest and state_at:
        behind = (latest - state_at).total_seconds()
        lag = f"{behind:.0f} s simulated = {behind / speed:.1f} s wall"
    else:
        lag = "-"
    return (f"{elapsed_s:5.0f}s sim {sim} | {rate:,.0f} readings/s | rejects {rejects:,} | "
            f"faults open {faults_open:,} | {kwh:,.1f} kWh booked ({estimated_kwh:,.1f} of it "
            f"estimated, re-booked as readings arrive), {saved:,.1f} saved so far | "
            f"live state {lag} behind the newest reading"
            + ("" if fleet_behind_s is None else
               f" | bulk fleet {fleet_behind_s / speed:,.1f} s wall behind the clock"))


def _spawn(argv: list[str], log_path: Path, env: dict[str, str]) -> subprocess.Popen:
    out = open(log_path, "ab")  # noqa: SIM115 - owned by the child for its lifetime
    return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env=env, start_new_session=True)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stop(proc: subprocess.Popen, sig: int, timeout_s: float = 20.0) -> None:
    """Stop a child and what it started: each child leads a session (process group) of its own,
    so workers it forked (uvicorn's) are stopped with it, and killed if they outlive it."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, sig)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            log.warning("pid %d did not stop; killing it", proc.pid)
            proc.kill()
            proc.wait(10)
    if _group_alive(proc.pid):  # the leader is gone; its own children are not
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            wait_for(lambda: not _group_alive(proc.pid), 10.0, f"process group {proc.pid}")
        except StackError:
            log.warning("process group %d did not stop; killing it", proc.pid)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)


def run_demo(stack: Stack, options: DemoOptions) -> int:
    endpoints = stack.up()
    migrate(endpoints.dsn())
    console.print(f"[bold]Luciole demo[/bold] — MQTT {endpoints.mqtt_host}:{endpoints.mqtt_port}, "
                  f"PostgreSQL {endpoints.pg_host}:{endpoints.pg_port}/{endpoints.pg_database}")
    inventory = build_inventory(options.controllers, options.luminaires, seed=options.seed,
                                switched_fraction=options.switched_fraction)
    added = seed_inventory(endpoints.dsn(), inventory)
    with psycopg.connect(endpoints.dsn()) as conn:
        switched = mark_switched(conn, inventory)
    console.print(f"region: {inventory.n_controllers:,} controllers, {inventory.n_luminaires:,} "
                  f"luminaires in {len(inventory.tenants)} municipalities, {switched} of "
                  f"{len(inventory.cabinet_ids)} cabinets switched off by day (new rows: {added})")

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
    stopping = False

    def _interrupt(*_: object) -> None:
        nonlocal stopping
        stopping = True

    previous = signal.signal(signal.SIGINT, _interrupt)
    previous_term = signal.signal(signal.SIGTERM, _interrupt)
    try:
        metrics_ports: list[int] = []
        start = options.start or demo_start(datetime.now(UTC))
        # Ingest accepts records up to a day past the later of the wall clock and this one, the
        # fleet's: at 60x the fleet passes now + 1 day after some 50 minutes of wall time. The
        # API issues commands on it, so they expire on the clock the agents and the fleet obey.
        clock = SimClock(origin=start, wall_s=time.time(), speed=options.speed)
        env["LUCIOLE_INGEST_SIM_CLOCK"] = clock.model_dump_json()
        env["LUCIOLE_API_SIM_CLOCK"] = clock.model_dump_json()
        env["LUCIOLE_JOBS_SIM_CLOCK"] = clock.model_dump_json()  # the optimiser plans its nights
        for i in range(options.workers):
            metrics_ports.append(choose_port("127.0.0.1", 9464 + i, set(metrics_ports)))
            worker_env = {**env, "LUCIOLE_INGEST_METRICS_PORT": str(metrics_ports[-1])}
            children.append((f"ingest-{i + 1}", _spawn([*luciole, "ingest", "--worker", str(i + 1)],
                                                       out / f"ingest-{i + 1}.log", worker_env)))
        # hosted agents first (the logins are of their municipality), then the fault scenario,
        # whose earliest faults go to that municipality's controllers the fleet plays
        hosted, spare = hosted_and_spares(inventory, options.agents)
        scenario = out / "scenario.json"
        scenario_doc = demo_scenario(inventory, start, first=spare, avoid=hosted)
        scenario.write_text(json.dumps(scenario_doc, indent=2))
        region = ["--controllers", str(options.controllers), "--luminaires", str(options.luminaires),
                  "--speed", str(options.speed), "--start", start.isoformat(),
                  "--wall-origin", repr(clock.wall_s), "--seed", str(options.seed),
                  "--switched-fraction", str(options.switched_fraction)]
        (out / "hosted_energy.json").unlink(missing_ok=True)  # a former run's agents' counters
        hosted_file = out / "hosted.txt"
        hosted_file.write_text("".join(f"{c}\n" for c in hosted))
        groups = register_hosted_groups(endpoints.dsn(), inventory, hosted)
        fleet_argv = [
            *luciole, "-v", "sim", "fleet", "--publishers", str(FLEET_PUBLISHERS), *region,
            "--scenario", str(scenario), "--labels", str(out / "fault_labels.csv"),
            "--hosted", str(hosted_file), "--tick-s", str(options.tick_s),
            # the cabinet meters count the hosted luminaires from the agents' gear
            "--hosted-energy", str(out / "hosted_energy.json"),
        ]
        children.append(("fleet", _spawn(fleet_argv, out / "fleet.log", env)))
        if hosted:
            children.append(("agents", _spawn(
                [*luciole, "sim", "agents", *region, "--hosted", str(hosted_file),
                 "--data-dir", str(out / "agents"), "--energy-file", str(out / "hosted_energy.json")],
                out / "agents.log", env)))
        jobs_env = {**env, **{k: v for k, v in DEMO_JOBS_ENV.items() if k not in env}}
        children.append(("jobs", _spawn([*luciole, "jobs"], out / "jobs.log", jobs_env)))
        api_port = free_port("127.0.0.1")
        children.append(("api", _spawn([*luciole, "api", "serve", "--workers", str(API_WORKERS),
                                        "--port", str(api_port)], out / "api.log", env)))
        (out / "children.json").write_text(json.dumps({name: p.pid for name, p in children}))
        metrics = ", ".join(f"http://127.0.0.1:{p}/metrics" for p in metrics_ports)
        console.print(f"ingest workers: {options.workers} ({metrics}), fleet at "
                      f"{options.speed:g}x from {start:%Y-%m-%d %H:%M} UTC, analytics jobs; "
                      f"logs in {out}")
        began = time.monotonic()
        last_t, last_wall = began, time.time()
        api_url = f"http://127.0.0.1:{api_port}"
        # the logins are of the municipality whose luminaires obey commands (hosted agents)
        tenant = inventory.tenants[int(inventory.controller_tenant[
            inventory.controller_ids.index(hosted[0])])] if hosted else inventory.tenants[0]
        logins = create_logins(endpoints.service_dsn(DbService.API), tenant.id, tenant.name)
        wait_for(lambda: stopping or api_healthy(api_url) or children[-1][1].poll() is not None,
                 120.0, "the API", interval_s=0.5)
        if api_healthy(api_url):
            console.print(f"[bold]API[/bold] {api_url} (docs {api_url}/docs) — dashboard: "
                          f"[bold]{api_url}/dashboard[/bold]")
        console.print("logins (POST /api/v1/auth/token; passwords generated for this run):")
        for login in logins:
            console.print(f"  {login.role:<15} {login.email:<40} {login.password}",
                          highlight=False)
        if hosted:
            named = ", ".join(f"{t} group {g} ({HOSTED_GROUP!r})" for t, g in sorted(groups.items()))
            console.print(f"{len(hosted)} controllers run real edge agents (commands and schedules "
                          f"work on them: {named}); the rest is simulated in bulk")
        manager = None
        if hosted and tenant.id in groups and api_healthy(api_url):
            login = next(x for x in logins if x.role == "energy_manager")
            try:  # the energy manager's schedules; the demo goes on without them if refused
                manager = DemoSchedules(EnergyManager(api_url, login.email, login.password),
                                        groups[tenant.id],
                                        hosted_road_class(inventory, hosted, tenant.id))
                console.print(manager.start(), highlight=False)
            except (ApiError, OSError) as exc:
                manager = None
                console.print(f"[yellow]the demo's schedules were not set: {exc}[/yellow]")
        console.print("Ctrl-C stops the demo (the stack keeps running: `luciole stack down`).")
        booked_from = start.replace(minute=start.minute - start.minute % 15, second=0,
                                    microsecond=0)  # the energy job's 15-minute buckets
        fleets: dict[str, tuple[float, float, float] | None] = {}
        with psycopg.connect(endpoints.dsn(), autocommit=True) as conn:
            while not stopping:
                if manager is not None and (said := manager.poll()):
                    console.print(said, highlight=False)
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
                wall = time.time()
                status = conn.execute(STATUS, {"since": datetime.fromtimestamp(last_wall, UTC),
                                               "hosted": hosted}).fetchone()
                assert status is not None  # an aggregate query has one row
                rows, rejects, latest, state_at, faults_open, kwh, estimated, fleet_at = status
                saved_kwh = savings_so_far_kwh(conn, booked_from, fleets)
                fleet_behind = (None if fleet_at is None
                                else (clock.now(wall) - fleet_at).total_seconds())
                console.print(progress_line(now - began, latest, state_at, rows / (now - last_t),
                                            rejects, faults_open, kwh, saved_kwh, estimated,
                                            options.speed, fleet_behind), highlight=False)
                last_t, last_wall = now, wall
    finally:
        # The handlers stay until every child is stopped: a second Ctrl-C (or a SIGTERM) during
        # the clean-up must not cut it short and leave children running.
        for name, proc in reversed(children):  # the API, jobs, fleet, then the workers drain
            # the job runner stops between passes, and a pass can take a while on a busy machine
            _stop(proc, signal.SIGINT if name == "fleet" else signal.SIGTERM,
                  timeout_s=90.0 if name == "jobs" else 20.0)
        signal.signal(signal.SIGINT, previous)
        signal.signal(signal.SIGTERM, previous_term)
    pictures = render(endpoints.dsn(), out)
    console.print("pictures: " + ", ".join(str(p) for p in pictures))
    console.print(f"fault ground truth: {out / 'fault_labels.csv'}")
    return 0
