"""Where one API request's CPU goes, in-process: the app is called as an ASGI callable (no
socket, no uvicorn), `--concurrency` requests in flight on one event loop, against the database
that `bench/api.py --keep DIR` seeded. Prints the process CPU per request of /healthz and of one
luminaire's live state, the latter also with the route index taken out (the router's own linear
walk, as before api/route_index.py), `--rounds` times interleaved, then the best of each in µs;
with `--profile`, cProfile's top functions by cumulative and own time. The socket, HTTP parsing
and uvicorn's part are what `bench/api.py` measures on top of this."""

from __future__ import annotations

import sys
from pathlib import Path

_here = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _here]
sys.path.insert(0, str(_here.parent))

import argparse
import asyncio
import cProfile
import gc
import io
import json
import os
import pstats
import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from starlette.types import ASGIApp, Message

from api.app import create_app
from api.credentials import issue_token
from api.roles import Principal, Role
from api.settings import ApiSettings
from luciole.db_roles import DbService
from luciole.settings import StackSettings
from luciole.stack import Stack


def _scope(path: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    raw, _, query = path.partition("?")
    return {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": "1.1", "method": "GET", "scheme": "http", "path": raw,
            "raw_path": raw.encode(), "query_string": query.encode(), "root_path": "",
            "headers": [(b"host", b"127.0.0.1"), *headers], "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000), "state": {}}


async def _one(app: ASGIApp, path: str, headers: list[tuple[bytes, bytes]]) -> int:
    status = [0]

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            status[0] = message["status"]

    await app(_scope(path, headers), receive, send)
    return status[0]


async def drive(app: ASGIApp, requests: list[tuple[str, list[tuple[bytes, bytes]]]],
                concurrency: int) -> tuple[float, float, dict[int, int]]:
    """Every request once, `concurrency` at a time: (wall s, process CPU s, statuses)."""
    queue = list(reversed(requests))
    statuses: dict[int, int] = {}

    async def worker() -> None:
        while queue:
            path, headers = queue.pop()
            status = await _one(app, path, headers)
            statuses[status] = statuses.get(status, 0) + 1

    wall, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - wall, time.process_time() - cpu, statuses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reuse", type=Path, required=True, metavar="DIR",
                        help="the directory of `bench/api.py --keep DIR`")
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--profile", action="store_true", help="cProfile the live-state run")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3,
                        help="runs of each variant, interleaved (a burst of other work hits all)")
    args = parser.parse_args()
    root = args.reuse.resolve()
    loaded = json.loads((root / "bench.json").read_text())
    tenant_of = {int(k): v for k, v in loaded["tenant_of"].items()}
    stack = Stack(StackSettings(var_dir=root / "var", mqtt_port=0, pg_port=0, pg_fsync=False,
                                pg_shared_buffers="512MB"))
    endpoints = stack.up()
    try:
        secret = "profile-signing-secret-" + os.urandom(16).hex()
        tokens: dict[str, bytes] = {}
        with psycopg.connect(endpoints.dsn()) as conn:
            for tenant in loaded["luminaires"]:
                row = conn.execute(
                    "INSERT INTO users (tenant_id, email, role) VALUES (%s, %s, 'viewer')"
                    " ON CONFLICT (email) DO UPDATE SET role = 'viewer' RETURNING id",
                    (tenant, f"bench@{tenant}.example")).fetchone()
                assert row is not None
                token = issue_token(Principal(int(row[0]), tenant, Role.VIEWER), secret,
                                    timedelta(hours=2), datetime.now(UTC))
                tokens[tenant] = f"Bearer {token}".encode()
        settings = ApiSettings(dsn=endpoints.service_dsn(DbService.API), token_secret=secret)
        app = create_app(settings)
        rng = random.Random(7)
        ids = list(tenant_of)
        live = [(f"/api/v1/live/{lid}", [(b"authorization", tokens[tenant_of[lid]])])
                for lid in (rng.choice(ids) for _ in range(args.requests))]
        health: list[tuple[str, list[tuple[bytes, bytes]]]] = [("/healthz", [])] * args.requests

        async def run() -> None:
            async with app.router.lifespan_context(app):
                await drive(app, health[:500] + live[:500], args.concurrency)  # warm
                runs = [("/healthz", health, False), (LIVE, live, False), (LINEAR, live, False)]
                runs *= args.rounds
                if args.profile:
                    runs += [("/healthz", health, True), (LIVE, live, True)]
                for name, requests, profiled in runs:
                    gc.collect()
                    index = app.router.middleware_stack
                    if name == LINEAR:  # the router walks every route, as before the index
                        app.router.middleware_stack = app.router.app
                    # CPU time, not wall time: on a busy machine a send() that wakes PostgreSQL is
                    # often preempted, which a wall clock would charge to that call
                    profiler = cProfile.Profile(time.process_time) if profiled else None
                    if profiler:
                        profiler.enable()
                    try:
                        wall, cpu, statuses = await drive(app, requests, args.concurrency)
                    finally:
                        app.router.middleware_stack = index
                    if profiler:
                        profiler.disable()
                    else:
                        best[name] = min(best.get(name, cpu), cpu) / len(requests) * 1e6
                    print(f"{name}{' (profiled)' if profiled else ''}: {len(requests):,} requests "
                          f"in-process at concurrency "
                          f"{args.concurrency}: {1000 * cpu / len(requests):.3f} ms of CPU each "
                          f"(the API process and its psycopg client; PostgreSQL not counted), "
                          f"{len(requests) / wall:,.0f} req/s, statuses {statuses}; load average "
                          f"{os.getloadavg()[0]:.1f}", flush=True)
                    if profiler:
                        for key in ("cumulative", "tottime"):
                            out = io.StringIO()
                            pstats.Stats(profiler, stream=out).sort_stats(key).print_stats(args.top)
                            print(out.getvalue())

        best: dict[str, float] = {}
        asyncio.run(run())
    finally:
        stack.down()
    print(f"api cpu (best of {args.rounds}): live state {best[LIVE]:,.0f} µs a request, with the "
          f"router's linear walk {best[LINEAR]:,.0f} µs; the ceiling /healthz {best['/healthz']:,.0f}"
          f" µs; load average {os.getloadavg()[0]:.1f}")


LIVE = "live state of one luminaire"
LINEAR = "live state of one luminaire, linear route walk"


if __name__ == "__main__":
    main()
