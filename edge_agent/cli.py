"""Command line of the edge agent: `luciole agent run --config FILE` and `luciole provision`.

`add_arguments(parser)` / `run(args)` fill a `luciole agent` sub-parser;
`add_provision_arguments(parser)` / `run_provision(args)` fill `luciole provision`.
`python -m edge_agent run --config FILE` works without the luciole CLI.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="agent_action", required=True)
    run_p = sub.add_parser("run", help="run one agent (or several) until SIGTERM / Ctrl-C")
    run_p.add_argument("--config", type=Path, action="append", required=True,
                       help="agent config file (TOML or JSON); repeat to host several agents")
    run_p.add_argument("--metrics-port", type=int, default=None,
                       help="serve Prometheus /metrics on this port")


async def _serve(paths: list[Path]) -> int:
    from edge_agent.agent import Agent
    from edge_agent.host import Host
    from edge_agent.settings import load_settings

    settings = [load_settings(p) for p in paths]
    host = Host([lambda s=s: Agent(s) for s in settings])
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, host.stop)
    await host.run()
    return 0


def run(args: argparse.Namespace) -> int:
    from edge_agent.settings import SettingsError

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if getattr(args, "metrics_port", None):
        from prometheus_client import start_http_server

        start_http_server(args.metrics_port)
    try:
        return asyncio.run(_serve(args.config))
    except SettingsError as exc:
        sys.stderr.write(f"agent: {exc}\n")
        return 2


def add_provision_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `luciole provision` (here, so that running an agent never imports the
    provisioning flow and its HTTP client and terminal libraries)."""
    parser.add_argument("--api", required=True, help="central API base URL")
    parser.add_argument("--claim-code", required=True)
    parser.add_argument("--controller-id", default=None)
    parser.add_argument("--pole-id", required=True)
    parser.add_argument("--lat", type=float, required=True)
    parser.add_argument("--lon", type=float, required=True)
    parser.add_argument("--luminaire-model", required=True)
    parser.add_argument("--cabinet", required=True, dest="cabinet_id")
    parser.add_argument("--dali", default="127.0.0.1:55825", help="daliserver host:port")
    parser.add_argument("--meter", default=None, help="Modbus TCP meter host:port")
    parser.add_argument("--meter-profile", default="eastron_sdm630")
    parser.add_argument("--data-dir", type=Path, default=Path("/var/lib/luciole-agent"))
    parser.add_argument("--config-out", type=Path, default=Path("/etc/luciole/agent.json"))


def run_provision(args: argparse.Namespace) -> int:
    from edge_agent.provision import run_cli

    return run_cli(args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edge_agent")
    sub = parser.add_subparsers(dest="command", required=True)
    run_p = sub.add_parser("run", help="run agents from config files")
    run_p.add_argument("--config", type=Path, action="append", required=True)
    run_p.add_argument("--metrics-port", type=int, default=None)
    prov = sub.add_parser("provision", help="provision this controller")
    add_provision_arguments(prov)
    args = parser.parse_args(argv)
    return run(args) if args.command == "run" else run_provision(args)
