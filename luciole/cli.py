"""The `luciole` command line: the local stack, the database schema, the demo, the services."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from luciole.settings import StackSettings

if TYPE_CHECKING:
    from luciole.stack import Stack

console = Console()


def _stack(args: argparse.Namespace) -> Stack:
    from luciole.stack import Stack

    overrides = {}
    if args.var_dir:
        overrides["var_dir"] = args.var_dir
    return Stack(StackSettings(**overrides))


def cmd_stack(args: argparse.Namespace) -> int:
    from luciole.migrate import migrate
    from luciole.stack import StackError

    stack = _stack(args)
    try:
        if args.action == "up":
            endpoints = stack.up()
            applied = migrate(endpoints.dsn())
            table = Table(title="Luciole stack", show_header=True)
            table.add_column("component")
            table.add_column("listens on")
            table.add_column("pid")
            table.add_row("mosquitto (MQTT 5)", f"{endpoints.mqtt_host}:{endpoints.mqtt_port}",
                          str(endpoints.mosquitto_pid))
            table.add_row("postgresql 15 + timescaledb", f"{endpoints.pg_host}:{endpoints.pg_port}",
                          str(endpoints.postgres_pid))
            console.print(table)
            console.print(f"credentials and endpoints: {stack.state_file} (mode 0600)")
            if applied:
                console.print(
                    f"migrations applied: {', '.join(f'{m.version:04d}_{m.name}' for m in applied)}"
                )
        elif args.action == "down":
            stack.down()
            console.print("stack stopped")
        else:
            console.print_json(json.dumps(stack.status()))
    except StackError as exc:
        console.print(f"[red]stack: {exc}[/red]")
        return 1
    return 0


def cmd_db(args: argparse.Namespace) -> int:
    from luciole.migrate import MigrationError, migrate

    if args.action == "retention":
        return cmd_retention(args)
    stack = _stack(args)
    dsn = args.dsn or stack.endpoints().dsn()  # the owner role runs migrations
    try:
        applied = migrate(dsn)
    except MigrationError as exc:
        console.print(f"[red]{exc}[/red]")
        return 1
    console.print(f"{len(applied)} migration(s) applied" +
                  (": " + ", ".join(f"{m.version:04d}_{m.name}" for m in applied) if applied else ""))
    return 0


def cmd_retention(args: argparse.Namespace) -> int:
    """Drop what is past its retention period, once, as the jobs role."""
    from pydantic import ValidationError

    from luciole.db_roles import DbService
    from luciole.retention import RetentionSettings, run_retention

    try:
        settings = RetentionSettings()
    except ValidationError as exc:
        console.print(f"[red]invalid retention settings: {exc}[/red]")
        return 2
    dsn = args.dsn or _stack(args).endpoints().service_dsn(DbService.JOBS)
    removed = run_retention(dsn, settings)
    console.print(", ".join(f"{target}: {n}" for target, n in removed.items()))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """A simulated region publishing through the real broker into the real database, live."""
    from luciole.demo import DemoOptions, run_demo

    options = DemoOptions(controllers=args.controllers, luminaires=args.luminaires,
                          speed=args.speed, workers=args.workers, duration_s=args.duration_s,
                          agents=args.agents, start=args.start,
                          switched_fraction=args.switched_fraction, tick_s=args.tick_s)
    return run_demo(_stack(args), options)


def cmd_ingest(args: argparse.Namespace) -> int:
    """One ingest worker, handed its own broker account (ingest-N) and the ingest role."""
    from pydantic import ValidationError

    from ingest.service import run as run_ingest
    from luciole.compose import ingest_settings

    logging.getLogger().setLevel(logging.INFO)
    try:
        settings = ingest_settings(_stack(args), args.worker)
    except ValidationError as exc:
        console.print(f"[red]invalid ingest settings: {exc}[/red]")
        return 2
    run_ingest(settings)
    return 0


def cmd_sim_fleet(args: argparse.Namespace) -> int:
    """The fleet simulator, handed one broker account per publisher process."""
    from controller_fw_sim import fleet_cli
    from luciole.compose import fleet_targets

    return fleet_cli.run(args, fleet_targets(_stack(args), args.publishers))


def cmd_sim_agents(args: argparse.Namespace) -> int:
    """Edge agents for the controllers listed in --hosted, several in this process, on simulated
    gear and the fleet's clock; each controller's broker account is made here (as the region's
    registration does) and its password kept in its agent's data directory."""
    from controller_fw_sim.fleet_inventory import build_inventory
    from luciole.broker_config import BrokerAccount, Role
    from luciole.hosted_agents import (
        HostedAgents,
        agent_settings,
        hosted_of,
        read_or_make_password,
        run_hosted,
        scaled_clock,
    )

    logging.getLogger().setLevel(logging.INFO)
    inventory = build_inventory(args.controllers, args.luminaires, seed=args.seed,
                                switched_fraction=args.switched_fraction)
    names = [line.strip() for line in args.hosted.read_text().splitlines() if line.strip()]
    unknown = sorted(set(names) - set(inventory.controller_ids))
    if unknown:
        console.print(f"[red]--hosted: not in the region: {', '.join(map(repr, unknown[:5]))}"
                      "[/red]", highlight=False)
        return 2
    stack = _stack(args)
    endpoints = stack.endpoints()
    hosted = hosted_of(inventory, names)
    passwords = {}
    for h in hosted:
        password, made = read_or_make_password(args.data_dir, h.controller)
        stack.add_broker_account(BrokerAccount(h.controller, Role.DEVICE, h.tenant, h.controller),
                                 password)
        passwords[h.controller] = password
    now = time.time()
    wall_origin = now if args.wall_origin is None else args.wall_origin
    clock = scaled_clock(args.start.timestamp(), args.speed, wall_origin, now)
    agents = HostedAgents(
        hosted, inventory, clock,
        lambda h: agent_settings(h, args.data_dir, endpoints.mqtt_host, endpoints.mqtt_port,
                                 passwords[h.controller]), seed=args.seed)
    run_hosted(agents, energy_file=args.energy_file)
    return 0


def cmd_jobs(args: argparse.Namespace) -> int:
    """The job runner: fault detection (and, later, energy and exports) on their schedules."""
    import os
    import signal
    import threading

    from prometheus_client import start_http_server
    from pydantic import ValidationError

    from analytics.metrics import JobMetrics
    from analytics.runner import run_forever, run_once, scheduled_jobs
    from analytics.settings import JobsSettings
    from luciole.db_roles import DbService

    overrides: dict[str, Any] = {}
    if not os.environ.get("LUCIOLE_JOBS_DSN"):  # the jobs role of the local stack
        overrides["dsn"] = _stack(args).endpoints().service_dsn(DbService.JOBS)
    try:
        settings = JobsSettings(**overrides)
    except ValidationError as exc:
        console.print(f"[red]invalid jobs settings: {exc}[/red]")
        return 2
    logging.getLogger("analytics").setLevel(logging.INFO)
    metrics = JobMetrics()
    if args.once:
        import psycopg

        with psycopg.connect(settings.dsn.get_secret_value(), autocommit=True) as conn:
            for item in scheduled_jobs(settings):
                while (outcome := run_once(conn, item, metrics, ignore_schedule=True)) is not None:
                    console.print(f"{outcome.job}: {outcome.start:%Y-%m-%d %H:%M} .. "
                                  f"{outcome.end:%Y-%m-%d %H:%M}, {outcome.result.records} "
                                  f"records, {outcome.result.raised} raised, "
                                  f"{outcome.result.cleared} cleared")
        return 0
    if settings.metrics_port:
        start_http_server(settings.metrics_port, settings.metrics_host, registry=metrics.registry)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        run_forever(settings, stop, metrics)
    except KeyboardInterrupt:
        stop.set()
    return 0


def cmd_settlement(args: argparse.Namespace) -> int:
    """Export a supply point's settlement files for a local day (a new version where the content
    changed) and write the current versions into a directory."""
    import os
    from datetime import date
    from pathlib import Path

    import psycopg

    from analytics.settlement import file_name
    from analytics.settlement_job import export, latest_files
    from luciole.db_roles import DbService

    dsn = os.environ.get("LUCIOLE_JOBS_DSN") or _stack(args).endpoints().service_dsn(
        DbService.JOBS)
    try:
        day = date.fromisoformat(args.day)
    except ValueError:
        console.print(f"[red]--day must be a date (YYYY-MM-DD), not {args.day!r}[/red]")
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with psycopg.connect(dsn, autocommit=True) as conn:
        try:
            done = export(conn, args.ean, day)
        except ValueError as exc:
            console.print(f"[red]{exc}[/red]")
            return 2
        for kind, version, content in latest_files(conn, args.ean, day):
            path = out / file_name(kind, args.ean, day, version)
            path.write_bytes(content.encode("utf-8"))
            new = "new" if done.versions[kind][1] else "unchanged"
            console.print(f"{path} ({new})")
    return 0


def _read_secret(args: argparse.Namespace) -> tuple[str, bool]:
    """The password from stdin (--password-stdin), else a generated one (shown once)."""
    import secrets

    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n"), False
    return secrets.token_urlsafe(18), True


def cmd_api(args: argparse.Namespace) -> int:
    """Serve the API (uvicorn, several workers), or create its first tenants, people and keys."""
    import os

    from pydantic import ValidationError

    from api.roles import Role
    from api.settings import ApiSettings
    from luciole.db_roles import DbService

    stack = _stack(args)
    action = args.api_action or "serve"
    if action == "serve":
        from luciole import api_workers
        from luciole.compose import api_environment

        logging.getLogger().setLevel(logging.INFO)
        try:
            base = ApiSettings()
            if args.workers:
                base = base.model_copy(update={"workers": args.workers})
            os.environ.update(api_environment(stack, base))
            os.environ["LUCIOLE_API_WORKERS"] = str(base.workers)
            settings = ApiSettings()
        except ValidationError as exc:
            console.print(f"[red]invalid API settings: {exc}[/red]")
            return 2
        port = args.port if args.port is not None else settings.port
        console.print(f"API on http://{settings.host}:{port} with {settings.workers} workers")
        # the workers' shared metrics (prometheus-client's multiprocess mode): a fresh directory
        # on start, removed on stop, so /metrics adds up the workers of this run only
        import shutil
        import tempfile
        from pathlib import Path

        metrics_dir = (settings.run_dir or Path(tempfile.gettempdir())) / "metrics"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True, mode=0o700)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)  # before any worker imports it
        try:  # each worker on its own SO_REUSEPORT socket (luciole/api_workers.py says why)
            return api_workers.serve(settings.host, port, settings.workers)
        except OSError as exc:
            console.print(f"[red]cannot listen on {settings.host}:{port}: {exc}[/red]")
            return 1
        finally:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    from api import bootstrap

    dsn = args.dsn or stack.endpoints().service_dsn(DbService.API)
    try:
        if action == "create-tenant":
            bootstrap.create_tenant(dsn, args.tenant, args.name or args.tenant)
            console.print(f"tenant {args.tenant} ready")
        elif action == "create-user":
            role = Role(args.role)
            password, generated = _read_secret(args)
            user_id = bootstrap.create_user(dsn, args.email, role, args.tenant, password,
                                            args.name or "")
            console.print(f"user {user_id} {args.email} ({role.value})")
            if generated:
                console.print(f"password (shown once): {password}", highlight=False)
        else:
            key = bootstrap.create_key(dsn, args.email, Role(args.role), args.name or "",
                                       args.days)
            console.print(f"API key (shown once): {key}", highlight=False)
    except (bootstrap.BootstrapError, ValueError) as exc:
        console.print(f"[red]{exc}[/red]")
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="luciole", description=__doc__)
    parser.add_argument("--var-dir", help="data directory of the local stack (default ./var)")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    stack = sub.add_parser("stack", help="the local broker and database")
    stack.add_argument("action", choices=["up", "down", "status"])
    stack.set_defaults(func=cmd_stack)

    db = sub.add_parser("db", help="database schema")
    db.add_argument("action", choices=["migrate", "retention"],
                    help="migrate: apply the migrations (owner role); retention: drop what is "
                    "past its period once (jobs role; settings LUCIOLE_RETENTION_*)")
    db.add_argument("--dsn", help="database and role (default: the local stack's)")
    db.set_defaults(func=cmd_db)

    from controller_fw_sim import fleet_cli
    from edge_agent import cli as agent_cli

    demo = sub.add_parser("demo", help="run the demo: a simulated region, live, until Ctrl-C")
    demo.add_argument("--controllers", type=int, default=500)
    demo.add_argument("--luminaires", type=int, default=4, help="per controller")
    demo.add_argument("--speed", type=float, default=60.0, help="simulated seconds per second")
    demo.add_argument("--workers", type=int, default=2, help="ingest worker processes")
    demo.add_argument("--duration-s", type=float, default=None, help="stop after this many seconds")
    demo.add_argument("--agents", type=int, default=8, help="controllers played by real edge "
                      "agents (they obey commands and schedules); the rest is simulated in bulk")
    demo.add_argument("--start", type=fleet_cli.parse_start, default=None,
                      help="simulated start, ISO UTC (default: 40 minutes before last night's "
                      "sunset in Brussels)")
    demo.add_argument("--tick-s", type=float, default=1.0,
                      help="the fleet's simulated step (coarser for very high speeds)")
    demo.add_argument("--switched-fraction", type=float, default=0.9,
                      help="share of cabinets switched off by day (as on Sibelga's network)")
    demo.set_defaults(func=cmd_demo)

    sim = sub.add_parser("sim", help="the controller firmware simulator")
    sim_sub = sim.add_subparsers(dest="sim_action", required=True)
    fleet = sim_sub.add_parser("fleet", help="simulate a fleet of controllers publishing to MQTT")
    fleet_cli.add_arguments(fleet)
    fleet.set_defaults(func=cmd_sim_fleet)

    agents = sim_sub.add_parser("agents", help="edge agents for some of the fleet's controllers, "
                                "several in one process, on simulated gear (until Ctrl-C)")
    agents.add_argument("--hosted", type=Path, required=True, help="controller ids, one a line")
    agents.add_argument("--controllers", type=int, required=True, help="the region's size (as "
                        "the fleet's --controllers)")
    agents.add_argument("--luminaires", type=int, default=4, help="per controller")
    agents.add_argument("--seed", type=int, default=0)
    agents.add_argument("--switched-fraction", type=float, default=0.0)
    agents.add_argument("--speed", type=float, default=1.0, help="simulated seconds per second")
    agents.add_argument("--start", type=fleet_cli.parse_start, required=True,
                        help="simulated time at --wall-origin, ISO UTC")
    agents.add_argument("--wall-origin", type=float, default=None,
                        help="wall clock (epoch s) at which simulated time was --start "
                        "(default: now)")
    agents.add_argument("--data-dir", type=Path, required=True, help="one folder per agent")
    agents.add_argument("--energy-file", type=Path, default=None,
                        help="write the gear's energy counters here every wall second, for the "
                        "fleet's cabinet meters (`sim fleet --hosted-energy`)")
    agents.set_defaults(func=cmd_sim_agents)

    agent = sub.add_parser("agent", help="the edge agent of a controller")
    agent_cli.add_arguments(agent)
    agent.set_defaults(func=agent_cli.run)

    provision = sub.add_parser("provision", help="provision a controller on its pole (technicians)")
    agent_cli.add_provision_arguments(provision)
    provision.set_defaults(func=agent_cli.run_provision)

    ingest = sub.add_parser("ingest", help="run one ingest worker (settings: LUCIOLE_INGEST_*)")
    ingest.add_argument("--worker", type=int, default=1,
                        help="worker number N: broker account and client id ingest-N")
    ingest.set_defaults(func=cmd_ingest)

    api = sub.add_parser("api", help="the REST API (settings: LUCIOLE_API_*), and its first users")
    api.add_argument("--dsn", help="database and role for create-* (default: the stack's API role)")
    api_sub = api.add_subparsers(dest="api_action")
    serve = api_sub.add_parser("serve", help="serve the API (the default)")
    serve.add_argument("--workers", type=int, default=None, help="uvicorn workers")
    serve.add_argument("--port", type=int, default=None)
    api.add_argument("--workers", type=int, default=None, help=argparse.SUPPRESS)
    api.add_argument("--port", type=int, default=None, help=argparse.SUPPRESS)
    tenant = api_sub.add_parser("create-tenant", help="a municipality")
    tenant.add_argument("tenant")
    tenant.add_argument("--name")
    roles = ["admin", "operator", "energy_manager", "technician", "grid_operator", "viewer"]
    user = api_sub.add_parser("create-user", help="a person; the password is read from stdin "
                              "(--password-stdin) or generated and shown once")
    user.add_argument("--email", required=True)
    user.add_argument("--role", required=True, choices=roles)
    user.add_argument("--tenant", help="the municipality (none for the grid operator)")
    user.add_argument("--name")
    user.add_argument("--password-stdin", action="store_true")
    key = api_sub.add_parser("create-key", help="an API key of a user, shown once")
    key.add_argument("--email", required=True, help="the key's owner")
    key.add_argument("--role", required=True, choices=roles)
    key.add_argument("--name")
    key.add_argument("--days", type=int, default=365, help="lifetime (0: no expiry)")
    api.set_defaults(func=cmd_api)

    jobs = sub.add_parser("jobs", help="run the analytics jobs (settings: LUCIOLE_JOBS_*)")
    jobs.add_argument("--once", action="store_true",
                      help="catch every job up with the stored records, then exit")
    jobs.set_defaults(func=cmd_jobs)

    settlement = sub.add_parser("settlement", help="settlement files for the grid operator")
    settlement_sub = settlement.add_subparsers(dest="settlement_action", required=True)
    sx = settlement_sub.add_parser("export", help="a supply point's files of a local day "
                                   "(inventory, events, profile, faults; CSV, versioned)")
    sx.add_argument("--ean", required=True, help="the supply point (EAN-18)")
    sx.add_argument("--day", required=True, help="the local day, YYYY-MM-DD")
    sx.add_argument("--out", required=True, help="directory the CSV files are written to")
    sx.set_defaults(func=cmd_settlement)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
