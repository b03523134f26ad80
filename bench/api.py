"""API benchmark on its own stack: 100,000 luminaires (the simulator's Brussels region) with live
state and inventory, a day of one-minute telemetry for 10,000 of them and a week for 1,000 (binary
COPY with ingest's own layout), `luciole api` with several uvicorn workers, and an asyncio load
generator. Prints p50/p99 latency and throughput for one luminaire's live state, a tenant's live
state page, a week's series of one luminaire, a day's energy of a supply point and the GeoJSON of
a whole tenant, against the floors. Last line: `api: p99 live M ms, p99 series S ms, R req/s`."""

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
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import numpy as np
import psycopg

from api.credentials import issue_token
from api.pagination import encode_cursor
from api.roles import Principal, Role
from controller_fw_sim.fleet_inventory import build_inventory
from ingest.copy_binary import write as copy_write
from ingest.writer import LUMINAIRE_ROWS
from luciole.migrate import migrate
from luciole.seed import seed_inventory
from luciole.settings import StackSettings
from luciole.stack import Stack, wait_for

REPO = Path(__file__).resolve().parents[1]
FLOOR_LIVE_P99_MS = 50.0
FLOOR_SERIES_P99_MS = 250.0
FLOOR_LIVE_RPS = 1000.0
MINUTE_US = 60_000_000


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def _telemetry(conn: psycopg.Connection, keys: np.ndarray, idx: np.ndarray, start_us: int,
               minutes: int, chunk_rows: int = 2_000_000) -> int:
    """One reading a minute for each (key, idx), COPY in chunks; columns from ingest's layout."""
    per_chunk = max(1, chunk_rows // minutes)
    written = 0
    rng = np.random.default_rng(1)
    for lo in range(0, keys.shape[0], per_chunk):
        k = np.repeat(keys[lo:lo + per_chunk], minutes)
        i = np.repeat(idx[lo:lo + per_chunk], minutes)
        n = k.shape[0]
        t = start_us + np.tile(np.arange(minutes, dtype=np.int64) * MINUTE_US, n // minutes)
        power = (30 + 5 * rng.random(n)).astype(np.float32)
        values = {
            "time": t, "controller_key": k, "luminaire": i,
            "level": np.full(n, 200, np.int16), "status": np.zeros(n, np.int16), "power_w": power,
            "energy_wh": np.cumsum(power / 60.0, dtype=np.float64),
            "voltage_v": np.full(n, 230, np.float32), "current_a": power / 230,
            "power_factor": np.full(n, 0.95, np.float32),
            "driver_temp_c": np.full(n, 40, np.float32), "ambient_lux": np.zeros(n, np.float32),
            "presence": np.zeros(n, np.int32), "failure": np.zeros(n, np.int32),
            "boot_id": np.ones(n, np.int64), "seq": np.tile(np.arange(minutes, dtype=np.int64), n // minutes),
        }
        with conn.cursor() as cur:
            written += copy_write(cur, LUMINAIRE_ROWS, values)
        conn.commit()
    return written


@dataclass
class Loaded:
    luminaires: dict[str, list[int]]  # tenant -> luminaire ids
    tenant_of: dict[int, str]
    week: list[int]  # luminaires with a week of telemetry
    eans: list[tuple[str, str]]  # (ean, tenant)
    biggest: str


def load(dsn: str, luminaires: int, day_count: int, week_count: int, now: datetime) -> Loaded:
    inventory = build_inventory(luminaires // 4, 4, seed=7)
    t0 = time.perf_counter()
    seed_inventory(dsn, inventory)
    say(f"inventory: {luminaires:,} luminaires, {luminaires // 4:,} controllers, "
        f"{len(inventory.tenants)} tenants ({time.perf_counter() - t0:.1f} s)")
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT l.id, l.tenant_id, c.key, l.idx FROM luminaires l JOIN controllers c"
                            " ON c.id = l.controller_id ORDER BY l.id").fetchall()
        t0 = time.perf_counter()
        conn.execute(
            "INSERT INTO luminaire_state (controller_key, luminaire, time, level, status, power_w,"
            " energy_wh, voltage_v, power_factor, driver_temp_c, failure)"
            " SELECT c.key, l.idx, %s, 200, 0, 31.5, 1000 + l.id, 231, 0.95, 41, 0"
            " FROM luminaires l JOIN controllers c ON c.id = l.controller_id", (now,))
        conn.execute("UPDATE controllers SET online = true, last_seen = %s", (now,))
        start = now.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
        conn.execute(
            "INSERT INTO energy_supply_interval (bucket, ean, energy_wh, measured_wh, estimated_wh,"
            " default_wh, uncertainty_wh, luminaires_expected, luminaires_reporting, burning_s,"
            " flags, measured_cells, estimated_cells)"
            " SELECT b, p.ean, v.e, v.e, 0, 0, v.e * 0.01, 40, 40, 36000, 0, 40, 0 FROM supply_points p,"
            " generate_series(%s::timestamptz, %s::timestamptz - interval '15 min', interval '15 min') b,"
            " LATERAL (SELECT 100 + random() * 10 + 0 * extract(epoch FROM b) AS e) v",
            (start, start + timedelta(days=1)))
        conn.commit()
        say(f"live state and a day of supply-point energy ({time.perf_counter() - t0:.1f} s)")
        rng = random.Random(7)
        chosen = rng.sample(range(len(rows)), day_count)
        week_rows = [rows[i] for i in chosen[:week_count]]
        day_rows = [rows[i] for i in chosen[week_count:]]
        t0 = time.perf_counter()
        week_start_us = int((now - timedelta(days=7)).timestamp()) * 1_000_000
        n = _telemetry(conn, np.array([r[2] for r in week_rows], np.int32),
                       np.array([r[3] for r in week_rows], np.int16), week_start_us, 7 * 1440)
        day_start_us = int((now - timedelta(days=1)).timestamp()) * 1_000_000
        n += _telemetry(conn, np.array([r[2] for r in day_rows], np.int32),
                        np.array([r[3] for r in day_rows], np.int16), day_start_us, 1440)
        elapsed = time.perf_counter() - t0
        say(f"telemetry: {n:,} rows by COPY in {elapsed:.0f} s ({n / elapsed:,.0f} rows/s): a week for "
            f"{len(week_rows):,} luminaires, a day for {len(day_rows) + len(week_rows):,}")
        conn.execute("ANALYZE")
        conn.commit()
        eans = conn.execute("SELECT ean, tenant_id FROM supply_points").fetchall()
    by_tenant: dict[str, list[int]] = {}
    for lid, tenant, _, _ in rows:
        by_tenant.setdefault(tenant, []).append(lid)
    biggest = max(by_tenant, key=lambda t: len(by_tenant[t]))
    return Loaded(by_tenant, {r[0]: r[1] for r in rows}, [r[0] for r in week_rows],
                  [(e[0], e[1]) for e in eans], biggest)


@dataclass
class Figures:
    name: str
    latencies_ms: list[float]
    seconds: float
    errors: int
    client_cpu_s: float = 0.0  # the load generator's own CPU time during the scenario

    def p(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else float("nan")

    @property
    def rate(self) -> float:
        return len(self.latencies_ms) / self.seconds if self.seconds > 0 else 0.0


async def scenario(name: str, base: str, make: Callable[[random.Random], tuple[str, dict[str, str]]],
                   requests: int, concurrency: int) -> Figures:
    rng = random.Random(name)
    latencies: list[float] = []
    errors = 0
    queue: asyncio.Queue[tuple[str, dict[str, str]]] = asyncio.Queue()
    for _ in range(requests):
        queue.put_nowait(make(rng))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=120) as client:

        async def worker() -> None:
            nonlocal errors
            while True:
                try:
                    path, headers = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                started = time.perf_counter()
                try:
                    response = await client.get(path, headers=headers)
                    await response.aread()
                except httpx.TransportError:  # counted, never hidden
                    errors += 1
                    continue
                if response.status_code != 200:
                    errors += 1
                latencies.append((time.perf_counter() - started) * 1000)

        # warm-up: connections opened, plans cached
        for _ in range(min(concurrency, 20)):
            path, headers = make(rng)
            await client.get(path, headers=headers)
        started, cpu = time.perf_counter(), os.times()
        async with asyncio.TaskGroup() as group:
            for _ in range(concurrency):
                group.create_task(worker())
        seconds, after = time.perf_counter() - started, os.times()
    return Figures(name, latencies, seconds, errors,
                   after.user - cpu.user + after.system - cpu.system)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--luminaires", type=int, default=100_000)
    parser.add_argument("--day", type=int, default=10_000, help="luminaires with a day of telemetry")
    parser.add_argument("--week", type=int, default=1_000, help="... of which with a week")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--scale", type=float, default=1.0, help="requests per scenario, relative")
    args = parser.parse_args()
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        var = Path(tmp) / "var"
        stack = Stack(StackSettings(var_dir=var, mqtt_port=0, pg_port=0, pg_fsync=False,
                                    pg_shared_buffers="512MB"))
        endpoints = stack.up()
        server: subprocess.Popen[bytes] | None = None
        try:
            migrate(endpoints.dsn())
            say(f"stack up: postgres :{endpoints.pg_port}, mosquitto :{endpoints.mqtt_port}; "
                f"{os.cpu_count()} cores shared by everything (load generator included)")
            loaded = load(endpoints.dsn(), args.luminaires, args.day, args.week, now)
            secret = "bench-signing-secret-" + os.urandom(16).hex()
            with socket_port() as port:
                pass
            env = {**os.environ, "LUCIOLE_API_TOKEN_SECRET": secret,
                   "LUCIOLE_API_POOL_MAX": "16"}
            server = subprocess.Popen(
                [str(REPO / ".venv/bin/luciole"), "--var-dir", str(var), "api", "serve",
                 "--workers", str(args.workers), "--port", str(port)], env=env, cwd=REPO)
            base = f"http://127.0.0.1:{port}"
            wait_for(lambda: _healthy(base), 60, "the API to answer")
            say(f"luciole api: {args.workers} workers on :{port}")
            tokens: dict[str, dict[str, str]] = {}
            with psycopg.connect(endpoints.dsn()) as conn:
                for tenant in loaded.luminaires:
                    row = conn.execute("INSERT INTO users (tenant_id, email, role) VALUES (%s, %s,"
                                       " 'viewer') RETURNING id", (tenant, f"bench@{tenant}.example")
                                       ).fetchone()
                    assert row is not None
                    token = issue_token(Principal(int(row[0]), tenant, Role.VIEWER), secret,
                                        timedelta(hours=2), datetime.now(UTC))
                    tokens[tenant] = {"Authorization": f"Bearer {token}"}
            all_ids = list(loaded.tenant_of)
            big = loaded.luminaires[loaded.biggest]
            week_from = (now - timedelta(days=7)).isoformat().replace("+00:00", "Z")
            day_start = now.replace(hour=0, minute=0) - timedelta(days=1)

            def live(rng: random.Random) -> tuple[str, dict[str, str]]:
                lid = rng.choice(all_ids)
                return f"/api/v1/live/{lid}", tokens[loaded.tenant_of[lid]]

            def page(rng: random.Random) -> tuple[str, dict[str, str]]:
                after = rng.choice(big)
                return f"/api/v1/live?limit=100&cursor={encode_cursor(after)}", tokens[loaded.biggest]

            def series(rng: random.Random) -> tuple[str, dict[str, str]]:
                lid = rng.choice(loaded.week)
                return (f"/api/v1/luminaires/{lid}/series?from={week_from}",
                        tokens[loaded.tenant_of[lid]])

            def energy(rng: random.Random) -> tuple[str, dict[str, str]]:
                ean, tenant = rng.choice(loaded.eans)
                start = day_start.isoformat().replace("+00:00", "Z")
                end = (day_start + timedelta(days=1)).isoformat().replace("+00:00", "Z")
                return f"/api/v1/energy/supply-points/{ean}?from={start}&to={end}", tokens[tenant]

            def geojson(rng: random.Random) -> tuple[str, dict[str, str]]:
                return "/api/v1/luminaires.geojson", tokens[loaded.biggest]

            s = args.scale
            def healthz(rng: random.Random) -> tuple[str, dict[str, str]]:
                return "/healthz", {}

            plan = [("/healthz (one SELECT 1, no identity: the stack's ceiling)", healthz,
                     int(4000 * s), args.concurrency),
                    ("live state of one luminaire", live, int(4000 * s), args.concurrency),
                    ("live state page (100)", page, int(1000 * s), args.concurrency),
                    ("week series of one luminaire", series, int(400 * s), 8),
                    ("day energy of a supply point", energy, int(1000 * s), args.concurrency),
                    (f"GeoJSON of a tenant ({len(big):,} luminaires)", geojson, max(4, int(20 * s)), 2)]
            results = []
            for name, make, count, conc in plan:
                figures = asyncio.run(scenario(name, base, make, count, conc))
                results.append(figures)
                say(f"{name}: {len(figures.latencies_ms)} requests at concurrency {conc}: "
                    f"p50 {figures.p(50):.1f} ms, p99 {figures.p(99):.1f} ms, "
                    f"{figures.rate:,.0f} req/s, {figures.errors} errors; load generator "
                    f"{100 * figures.client_cpu_s / figures.seconds:.0f}% of a core, load average "
                    f"{os.getloadavg()[0]:.1f}")
        finally:
            if server is not None:
                server.terminate()
                server.wait(30)
            stack.down()
    ceiling, live_f, _, series_f = results[0], results[1], results[2], results[3]
    print(f"ceiling: /healthz through the same stack {ceiling.rate:.0f} req/s, p99 "
          f"{ceiling.p(99):.1f} ms; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"floors: p99 live < {FLOOR_LIVE_P99_MS:.0f} ms "
          f"({'within' if live_f.p(99) < FLOOR_LIVE_P99_MS else 'ABOVE'}), p99 week series < "
          f"{FLOOR_SERIES_P99_MS:.0f} ms ({'within' if series_f.p(99) < FLOOR_SERIES_P99_MS else 'ABOVE'}),"
          f" live >= {FLOOR_LIVE_RPS:.0f} req/s ({'within' if live_f.rate >= FLOOR_LIVE_RPS else 'BELOW'});"
          f" the load generator runs on the same {os.cpu_count()} cores")
    print(f"api: p99 live {live_f.p(99):.1f} ms, p99 series {series_f.p(99):.1f} ms, "
          f"{live_f.rate:.0f} req/s")


def _healthy(base: str) -> bool:
    try:
        return httpx.get(base + "/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


class socket_port:
    """A free loopback port."""

    def __enter__(self) -> int:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        return int(self.sock.getsockname()[1])

    def __exit__(self, *exc: object) -> None:
        self.sock.close()


if __name__ == "__main__":
    main()
