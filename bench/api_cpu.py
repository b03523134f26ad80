"""The API's CPU per request, in process: the real app (`api.app.create_app`, its lifespan, pool
and dependencies) on the database `bench/api.py --keep DIR` seeded, driven by ASGI calls from 32
concurrent tasks in the same event loop (no HTTP parsing, no sockets: what is left is the app's
own work). Prints the process CPU µs per request (and the database's, from /proc) for /healthz
(the ceiling: middleware, routing, one SELECT 1), one luminaire's live state, and the live state
again with the route index taken out (the router's linear walk, as before the index). CPU time
is what other work on the machine disturbs least; the load average is printed beside it.

    .venv/bin/python bench/api_cpu.py --reuse /work/bench-apispeed"""

from __future__ import annotations

import sys
from pathlib import Path

_here = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _here]
sys.path.insert(0, str(_here.parent))

import argparse
import asyncio
import os
import random
import time
from collections.abc import Callable
from typing import Any

import uvloop
from fastapi import FastAPI

from api.app import create_app
from api.settings import ApiSettings
from bench.api import _read_loaded, _tokens, _tree_cpu_s
from luciole.db_roles import DbService
from luciole.settings import StackSettings
from luciole.stack import Stack

Request = tuple[str, bytes]  # path, Authorization header ("" for none)


async def _call(app: FastAPI, path: str, auth: bytes) -> int:
    """One GET through the app as uvicorn would hand it over; returns the status."""
    raw_path, _, query = path.partition("?")
    headers = [(b"host", b"bench"), (b"accept", b"application/json")]
    if auth:
        headers.append((b"authorization", auth))
    scope: dict[str, Any] = {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
        "method": "GET", "scheme": "http", "path": raw_path, "raw_path": raw_path.encode(),
        "query_string": query.encode(), "root_path": "", "headers": headers,
        "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 8000), "state": {}}
    status = [0]
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.Event().wait()  # the app does not read past the body here
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status[0] = message["status"]

    await app(scope, receive, send)
    return status[0]


async def _drive(app: FastAPI, requests: list[Request], count: int, concurrency: int) -> int:
    """`count` requests from `concurrency` tasks, each drawing at random; returns non-2xx count."""
    left = [count]
    bad = [0]

    async def worker(seed: int) -> None:
        rng = random.Random(seed)
        while left[0] > 0:
            left[0] -= 1
            path, auth = rng.choice(requests)
            if not 200 <= await _call(app, path, auth) < 300:
                bad[0] += 1

    async with asyncio.TaskGroup() as group:
        for i in range(concurrency):
            group.create_task(worker(i))
    return bad[0]


def _linear(app: FastAPI) -> Callable[[], None]:
    """Take the route index out (the router walks every route); returns the undo."""
    index = app.router.middleware_stack
    app.router.middleware_stack = app.router.app

    def undo() -> None:
        app.router.middleware_stack = index
    return undo


async def _measure(app: FastAPI, name: str, requests: list[Request], count: int, concurrency: int,
                   pg_pid: int) -> float:
    await _drive(app, requests, min(count, 500), concurrency)  # plans cached, pool warm
    cpu0, pg0, wall0 = time.process_time(), _tree_cpu_s(pg_pid), time.perf_counter()
    bad = await _drive(app, requests, count, concurrency)
    cpu, pg = time.process_time() - cpu0, _tree_cpu_s(pg_pid) - pg0
    wall = time.perf_counter() - wall0
    per = 1e6 * cpu / count
    print(f"{name}: {count:,} requests, API {per:,.0f} µs CPU/request, PostgreSQL "
          f"{1e6 * pg / count:,.0f} µs; {count / wall:,.0f} req/s on one core, {bad} not 2xx; "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)
    return per


async def _run(app: FastAPI, plan: list[tuple[str, list[Request], bool]], count: int,
               concurrency: int, rounds: int, pg_pid: int) -> dict[str, list[float]]:
    found: dict[str, list[float]] = {}
    async with app.router.lifespan_context(app):
        for _ in range(rounds):  # interleaved, so a burst of other work hits every variant
            for name, requests, linear in plan:
                undo = _linear(app) if linear else None
                try:
                    found.setdefault(name, []).append(
                        await _measure(app, name, requests, count, concurrency, pg_pid))
                finally:
                    if undo is not None:
                        undo()
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reuse", type=Path, required=True, metavar="DIR",
                        help="the directory of an earlier `bench/api.py --keep DIR`")
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pool-max", type=int, default=None,
                        help="database connections per worker (default: the API's setting)")
    args = parser.parse_args()
    root = args.reuse.resolve()
    if not (root / "bench.json").exists():
        parser.error(f"{root} holds no seeded database (make one with bench/api.py --keep)")
    stack = Stack(StackSettings(var_dir=root / "var", mqtt_port=0, pg_port=0, pg_fsync=False,
                                pg_shared_buffers="512MB"))
    endpoints = stack.up()
    try:
        loaded, _ = _read_loaded(root / "bench.json")
        secret = "bench-signing-secret-" + os.urandom(16).hex()
        tokens = _tokens(endpoints.dsn(), loaded, secret)
        settings = ApiSettings(dsn=endpoints.service_dsn(DbService.API), token_secret=secret)
        if args.pool_max is not None:
            settings = settings.model_copy(update={"pool_max": args.pool_max})
        app = create_app(settings)
        rng = random.Random(7)
        ids = list(loaded.tenant_of)
        live = [(f"/api/v1/live/{lid}",
                 tokens[loaded.tenant_of[lid]]["Authorization"].encode())
                for lid in rng.sample(ids, 5000)]
        plan = [("/healthz (ceiling)", [("/healthz", b"")], False),
                ("live state", live, False),
                ("live state, linear route walk", live, True)]
        found = uvloop.run(_run(app, plan, args.requests, args.concurrency, args.rounds,
                                endpoints.postgres_pid or 0))
    finally:
        stack.down()
    best = {name: min(values) for name, values in found.items()}
    print("best of rounds (µs API CPU per request): " + ", ".join(
        f"{name} {value:,.0f}" for name, value in best.items()))
    print(f"api cpu: live {best['live state']:,.0f} µs/request (linear route walk "
          f"{best['live state, linear route walk']:,.0f}), ceiling /healthz "
          f"{best['/healthz (ceiling)']:,.0f}; load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
