"""API benchmark on its own stack: 100,000 luminaires (the simulator's Brussels region) with live
state and inventory, a day of one-minute telemetry for 10,000 of them and a week for 1,000 (binary
COPY with ingest's own layout), `luciole api` with several uvicorn workers, and wrk (C,
keep-alive, one thread pinned to the last core) as the load generator. Prints p50/p99 latency,
throughput and the CPU of the API workers, PostgreSQL and wrk for /healthz (the ceiling), one
luminaire's live state, a tenant's live state page, a week's series of one luminaire, a day's
energy of a supply point and the GeoJSON of a whole tenant, against the floors; live state also
offered at a fixed rate (`--rate`), its p99 printed beside the closed-loop one. `--keep DIR`
keeps the seeded database, `--reuse DIR` serves it again. Last line:
`api: p99 live M ms, p99 series S ms, R req/s`."""

from __future__ import annotations

import sys
from pathlib import Path

_here = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _here]
sys.path.insert(0, str(_here.parent))

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
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


def _save_loaded(path: Path, loaded: Loaded, now: datetime) -> None:
    path.write_text(json.dumps({"now": now.isoformat(), **asdict(loaded)}))


def _read_loaded(path: Path) -> tuple[Loaded, datetime]:
    raw = json.loads(path.read_text())
    now = datetime.fromisoformat(raw.pop("now"))
    raw["tenant_of"] = {int(k): v for k, v in raw["tenant_of"].items()}
    raw["eans"] = [tuple(e) for e in raw["eans"]]
    return Loaded(**raw), now


@dataclass
class Figures:
    """What wrk measured for one scenario (its own latency histogram, in microseconds)."""

    name: str
    concurrency: int
    requests: int
    seconds: float
    errors: int  # connect/read/write/timeout errors and non-2xx/3xx answers
    p50_ms: float
    p99_ms: float
    max_ms: float
    client_cpu_s: float  # wrk's own CPU time
    api_cpu_s: float  # the uvicorn workers'
    pg_cpu_s: float  # PostgreSQL's (every backend)
    load: float
    offered: float = 0.0  # requests/s offered at a fixed rate; 0: closed loop (each connection
    # sends its next request when the answer to its last arrives)
    late: int = 0  # fixed rate: requests sent after their slot (every connection was busy)
    late_max_ms: float = 0.0
    split: tuple[int, ...] = ()  # wrk's connections held by each API worker, most first

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    def per_request_ms(self, cpu_s: float) -> float:
        return 1000 * cpu_s / self.requests if self.requests else float("nan")

    @property
    def capacity(self) -> float:
        """Requests/s that the machine's cores, idle, would allow the server (API workers and
        PostgreSQL) at this CPU cost per request: an estimate, since the measured rate is bounded
        by the share of the cores the scheduler gives the server on a busy machine."""
        cost = self.per_request_ms(self.api_cpu_s + self.pg_cpu_s)
        return (os.cpu_count() or 1) * 1000 / cost if cost > 0 else float("nan")

    def line(self) -> str:
        core = 100 / self.seconds if self.seconds > 0 else 0.0
        how = (f"offered at a fixed {self.offered:,.0f} req/s on {self.concurrency} connections "
               f"({self.late} sent late, at most {self.late_max_ms:.0f} ms)" if self.offered
               else f"at concurrency {self.concurrency}")
        split = "/".join(map(str, self.split)) if self.split else "not seen"
        return (f"{self.name}: {self.requests:,} requests in {self.seconds:.0f} s {how}: "
                f"p50 {self.p50_ms:.1f} ms, p99 {self.p99_ms:.1f} ms, connections per API "
                f"worker {split}, "
                f"{self.rate:,.0f} req/s, {self.errors} errors; CPU: API workers "
                f"{self.api_cpu_s * core:.0f}%, PostgreSQL {self.pg_cpu_s * core:.0f}%, load "
                f"generator {self.client_cpu_s * core:.0f}% of a core; per request: API "
                f"{self.per_request_ms(self.api_cpu_s):.2f} ms, PostgreSQL "
                f"{self.per_request_ms(self.pg_cpu_s):.2f} ms, wrk "
                f"{self.per_request_ms(self.client_cpu_s):.2f} ms of CPU (idle cores would allow "
                f"the server ~{self.capacity:,.0f} req/s); load average {self.load:.1f}")


LUA = r"""
local paths = {%(paths)s}
local auths = {%(auths)s}
local n = #paths
local rate = %(rate)f
math.randomseed(%(seed)d)
request = function()
  local i = math.random(n)
  local a = auths[i]
  if a == "" then return wrk.format("GET", paths[i]) end
  return wrk.format("GET", paths[i], {["Authorization"] = a})
end
-- A fixed offered rate (rate > 0): every request has its slot, one each 1/rate s from the first;
-- a connection that is free takes the next slot and waits for it (wrk's delay()). A slot that
-- has already passed when a connection takes it (every connection was busy: the server fell
-- behind) is sent at once and counted late, with how late: wrk times a request from its
-- sending, so late slots are latency its figures do not show, and the bench says so.
scheduled, late, late_max_ms = 0, 0, 0
if rate > 0 then
  local ffi = require("ffi")
  ffi.cdef[[
    typedef struct { long tv_sec; long tv_nsec; } luciole_timespec;
    int clock_gettime(int clock, luciole_timespec *now);
  ]]
  local now = ffi.new("luciole_timespec")
  local function now_ms()
    ffi.C.clock_gettime(1, now)  -- CLOCK_MONOTONIC
    return tonumber(now.tv_sec) * 1000 + tonumber(now.tv_nsec) / 1e6
  end
  local period_ms, slot = 1000 / rate, nil
  delay = function()
    local t = now_ms()
    slot = slot or t
    local mine = slot
    slot = slot + period_ms
    scheduled = scheduled + 1
    if mine < t - 1 then
      late = late + 1
      late_max_ms = math.max(late_max_ms, t - mine)
      return 0
    end
    return math.max(0, mine - t)
  end
end
local threads = {}
setup = function(thread) table.insert(threads, thread) end
done = function(summary, latency, requests)
  local e = summary.errors
  local s, l, m = 0, 0, 0
  for _, thread in ipairs(threads) do
    s = s + thread:get("scheduled")
    l = l + thread:get("late")
    m = math.max(m, thread:get("late_max_ms"))
  end
  io.write(string.format(
    "WRK-JSON {\"requests\": %%d, \"duration_us\": %%d, \"errors\": %%d, \"p50_us\": %%d, "
    .. "\"p99_us\": %%d, \"max_us\": %%d, \"scheduled\": %%d, \"late\": %%d, "
    .. "\"late_max_ms\": %%.1f}\n",
    summary.requests, summary.duration, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max, s, l, m))
end
"""


def _lua_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _tree_cpu_s(root: int) -> float:
    """CPU seconds (user + system) of a process and its descendants, from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    times: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        parents[int(entry)] = int(fields[1])
        times[int(entry)] = int(fields[11]) + int(fields[12])
    total, todo, seen = 0, [root], set()
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        total += times.get(pid, 0)
        todo.extend(child for child, parent in parents.items() if parent == pid)
    return total / tick


def connection_split(port: int, workers: list[int]) -> tuple[int, ...]:
    """How many established connections to `port` each worker holds, most first (from `ss`:
    the pid owning each server-side socket); () when ss is missing."""
    ss = shutil.which("ss")
    if ss is None:
        return ()
    out = subprocess.run([ss, "-Htnp", "state", "established", f"( sport = :{port} )"],
                         capture_output=True, text=True, check=False).stdout
    owners = [int(pid) for pid in re.findall(r"pid=(\d+)", out)]
    return tuple(sorted((owners.count(pid) for pid in workers), reverse=True))


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


def scenario(name: str, base: str, make: Callable[[random.Random], tuple[str, dict[str, str]]],
             seconds: float, concurrency: int, server_pid: int, pg_pid: int, workdir: Path,
             distinct: int = 20_000, rate: float = 0.0) -> Figures:
    """wrk for `seconds` at `concurrency` keep-alive connections, one thread pinned to the last
    core, each request one of `distinct` paths (with its header) drawn at random; closed loop,
    or offered at a fixed `rate` (requests/s) when it is given."""
    rng = random.Random(name)
    chosen = [make(rng) for _ in range(distinct)]
    script = workdir / "scenario.lua"
    script.write_text(LUA % {
        "paths": ",".join(_lua_string(p) for p, _ in chosen),
        "auths": ",".join(_lua_string(h.get("Authorization", "")) for _, h in chosen),
        "seed": rng.randrange(1 << 30), "rate": rate})
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is missing: `make bootstrap` installs it")
    pin = ["taskset", "-c", str((os.cpu_count() or 1) - 1)] if shutil.which("taskset") else []
    warm = [*pin, wrk, "-t1", f"-c{concurrency}", "-d2s", "-s", str(script), base]
    subprocess.run(warm, check=True, capture_output=True)  # connections opened, plans cached
    api0, pg0 = _tree_cpu_s(server_pid), _tree_cpu_s(pg_pid)
    child = subprocess.Popen([*pin, wrk, "-t1", f"-c{concurrency}", f"-d{seconds:.0f}s",
                              "--timeout", "60s", "-s", str(script), base],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stderr is not None
    time.sleep(min(2.0, seconds / 4))  # wrk has opened its connections: which worker holds each
    split = connection_split(int(base.rsplit(":", 1)[1]), _children(server_pid))
    out, err = child.stdout.read(), child.stderr.read()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    api_cpu, pg_cpu = _tree_cpu_s(server_pid) - api0, _tree_cpu_s(pg_pid) - pg0
    found = [line for line in out.splitlines() if line.startswith("WRK-JSON ")]
    if child.returncode != 0 or not found:
        raise SystemExit(f"wrk failed ({child.returncode}): {out}\n{err}")
    r = json.loads(found[-1].removeprefix("WRK-JSON "))
    return Figures(name, concurrency, r["requests"], r["duration_us"] / 1e6, r["errors"],
                   r["p50_us"] / 1000, r["p99_us"] / 1000, r["max_us"] / 1000,
                   usage.ru_utime + usage.ru_stime, api_cpu, pg_cpu, os.getloadavg()[0],
                   rate, r["late"], r["late_max_ms"], split)


def _tokens(dsn: str, loaded: Loaded, secret: str) -> dict[str, dict[str, str]]:
    tokens: dict[str, dict[str, str]] = {}
    with psycopg.connect(dsn) as conn:
        for tenant in loaded.luminaires:
            row = conn.execute("INSERT INTO users (tenant_id, email, role) VALUES (%s, %s, 'viewer')"
                               " ON CONFLICT (email) DO UPDATE SET role = 'viewer' RETURNING id",
                               (tenant, f"bench@{tenant}.example")).fetchone()
            assert row is not None
            token = issue_token(Principal(int(row[0]), tenant, Role.VIEWER), secret,
                                timedelta(hours=2), datetime.now(UTC))
            tokens[tenant] = {"Authorization": f"Bearer {token}"}
    return tokens


def seeded_root(parser: argparse.ArgumentParser, args: argparse.Namespace, tmp: str,
                marker: str) -> Path:
    """Where a bench's stack and seeded database live: `--keep DIR` (new or empty), `--reuse
    DIR` (holding `marker`, written by an earlier --keep) or the temporary directory `tmp`."""
    if args.keep and args.reuse:
        parser.error("--keep and --reuse exclude each other")
    root: Path = (args.keep or args.reuse or Path(tmp)).resolve()
    if args.reuse and not (root / marker).exists():
        parser.error(f"{root} holds no seeded database (make one with --keep {root})")
    if args.keep and root.exists() and any(root.iterdir()):
        parser.error(f"{root} is not empty (reuse it with --reuse {root})")
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--luminaires", type=int, default=100_000)
    parser.add_argument("--day", type=int, default=10_000, help="luminaires with a day of telemetry")
    parser.add_argument("--week", type=int, default=1_000, help="... of which with a week")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0, help="wrk's run per scenario")
    parser.add_argument("--rate", type=float, default=FLOOR_LIVE_RPS,
                        help="requests/s offered in the fixed-rate live-state scenario")
    parser.add_argument("--keep", type=Path, metavar="DIR",
                        help="seed into DIR (new or empty) and keep it for --reuse")
    parser.add_argument("--reuse", type=Path, metavar="DIR",
                        help="serve the database seeded by an earlier --keep DIR (no seeding)")
    parser.add_argument("--only", help="run only the scenarios whose name contains this")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        root = seeded_root(parser, args, tmp, "bench.json")
        var = root / "var"
        stack = Stack(StackSettings(var_dir=var, mqtt_port=0, pg_port=0, pg_fsync=False,
                                    pg_shared_buffers="512MB"))
        endpoints = stack.up()
        server: subprocess.Popen[bytes] | None = None
        try:
            migrate(endpoints.dsn())
            say(f"stack up: postgres :{endpoints.pg_port}, mosquitto :{endpoints.mqtt_port}; "
                f"{os.cpu_count()} cores shared by everything (load generator included)")
            if args.reuse:
                loaded, now = _read_loaded(root / "bench.json")
                say(f"reusing the database seeded in {root} at {now:%Y-%m-%d %H:%M} UTC")
            else:
                now = datetime.now(UTC).replace(second=0, microsecond=0)
                loaded = load(endpoints.dsn(), args.luminaires, args.day, args.week, now)
                if args.keep:
                    _save_loaded(root / "bench.json", loaded, now)
            secret = "bench-signing-secret-" + os.urandom(16).hex()
            with socket_port() as port:
                pass
            env = {**os.environ, "LUCIOLE_API_TOKEN_SECRET": secret}
            server = subprocess.Popen(
                [str(REPO / ".venv/bin/luciole"), "--var-dir", str(var), "api", "serve",
                 "--workers", str(args.workers), "--port", str(port)], env=env, cwd=REPO)
            base = f"http://127.0.0.1:{port}"
            wait_for(lambda: _healthy(base), 240, "the API to answer")
            say(f"luciole api: {args.workers} workers on :{port}")
            tokens = _tokens(endpoints.dsn(), loaded, secret)
            all_ids = list(loaded.tenant_of)
            big = loaded.luminaires[loaded.biggest]
            week_from = (now - timedelta(days=7)).isoformat().replace("+00:00", "Z")
            week_to = now.isoformat().replace("+00:00", "Z")
            day_start = now.replace(hour=0, minute=0) - timedelta(days=1)

            def live(rng: random.Random) -> tuple[str, dict[str, str]]:
                lid = rng.choice(all_ids)
                return f"/api/v1/live/{lid}", tokens[loaded.tenant_of[lid]]

            def page(rng: random.Random) -> tuple[str, dict[str, str]]:
                after = rng.choice(big)
                return f"/api/v1/live?limit=100&cursor={encode_cursor(after)}", tokens[loaded.biggest]

            def series(rng: random.Random) -> tuple[str, dict[str, str]]:
                lid = rng.choice(loaded.week)
                return (f"/api/v1/luminaires/{lid}/series?from={week_from}&to={week_to}",
                        tokens[loaded.tenant_of[lid]])

            def energy(rng: random.Random) -> tuple[str, dict[str, str]]:
                ean, tenant = rng.choice(loaded.eans)
                start = day_start.isoformat().replace("+00:00", "Z")
                end = (day_start + timedelta(days=1)).isoformat().replace("+00:00", "Z")
                return f"/api/v1/energy/supply-points/{ean}?from={start}&to={end}", tokens[tenant]

            def geojson(rng: random.Random) -> tuple[str, dict[str, str]]:
                return "/api/v1/luminaires.geojson", tokens[loaded.biggest]

            def healthz(rng: random.Random) -> tuple[str, dict[str, str]]:
                return "/healthz", {}

            t = args.seconds
            c = args.concurrency
            plan = [(CEILING, healthz, t, c, 0.0), (LIVE, live, t, c, 0.0),
                    (LIVE_RATE, live, t, c, args.rate),
                    ("live state page (100)", page, t, c, 0.0),
                    (SERIES, series, t, 8, 0.0),
                    ("day energy of a supply point", energy, t, c, 0.0),
                    (f"GeoJSON of a tenant ({len(big):,} luminaires)", geojson, max(t, 10.0), 2,
                     0.0)]
            results: dict[str, Figures] = {}
            pg_pid = endpoints.postgres_pid or 0
            with tempfile.TemporaryDirectory(prefix="bench-wrk-") as workdir:
                for name, make, seconds, conc, rate in plan:
                    if args.only and args.only not in name and name not in MAIN:
                        continue
                    figures = scenario(name, base, make, seconds, conc, server.pid, pg_pid,
                                       Path(workdir), rate=rate)
                    results[name] = figures
                    say(figures.line())
        finally:
            try:
                if server is not None:
                    server.terminate()
                    try:
                        server.wait(60)
                    except subprocess.TimeoutExpired:
                        server.kill()
                        server.wait(10)
            finally:
                stack.down()
    ceiling, live_f, series_f = results[CEILING], results[LIVE], results[SERIES]
    print(f"ceiling: /healthz through the same stack {ceiling.rate:,.0f} req/s, p99 "
          f"{ceiling.p99_ms:.1f} ms; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; "
          f"the load generator (wrk, one thread) is pinned to core {(os.cpu_count() or 1) - 1}, "
          f"which the API and PostgreSQL share with it")
    print(f"floors: p99 live < {FLOOR_LIVE_P99_MS:.0f} ms "
          f"({'within' if live_f.p99_ms < FLOOR_LIVE_P99_MS else 'ABOVE'}), p99 week series < "
          f"{FLOOR_SERIES_P99_MS:.0f} ms ({'within' if series_f.p99_ms < FLOOR_SERIES_P99_MS else 'ABOVE'}),"
          f" live >= {FLOOR_LIVE_RPS:.0f} req/s ({'within' if live_f.rate >= FLOOR_LIVE_RPS else 'BELOW'})")
    print(f"CPU per request (all {os.cpu_count()} cores busy with other work, so these are "
          f"upper bounds): live state API {live_f.per_request_ms(live_f.api_cpu_s):.2f} ms + "
          f"PostgreSQL {live_f.per_request_ms(live_f.pg_cpu_s):.2f} ms (~{live_f.capacity:,.0f} "
          f"req/s on idle cores), week series API {series_f.per_request_ms(series_f.api_cpu_s):.2f}"
          f" ms + PostgreSQL {series_f.per_request_ms(series_f.pg_cpu_s):.2f} ms; the ceiling "
          f"/healthz API {ceiling.per_request_ms(ceiling.api_cpu_s):.2f} ms")
    print(f"wrk's {live_f.concurrency} connections per API worker (ss, while it ran): live state "
          f"{'/'.join(map(str, live_f.split)) or 'not seen'}, /healthz "
          f"{'/'.join(map(str, ceiling.split)) or 'not seen'}")
    fixed = results.get(LIVE_RATE)
    if fixed is not None:
        print(f"live state at a fixed {fixed.offered:,.0f} req/s offered: {fixed.rate:,.0f} req/s "
              f"answered, p50 {fixed.p50_ms:.1f} ms, p99 {fixed.p99_ms:.1f} ms, {fixed.late} of "
              f"{fixed.requests:,} requests sent late (at most {fixed.late_max_ms:.0f} ms: latency "
              f"wrk does not see){'' if fixed.late == 0 else '; the server did not keep the rate'}")
    print(f"the last line quotes the closed-loop figures (concurrency {live_f.concurrency}: each "
          f"connection sends its next request when its answer arrives, so p99 includes the queue "
          f"behind {live_f.concurrency} connections); the fixed-rate p99 is on the line above")
    print(f"api: p99 live {live_f.p99_ms:.1f} ms, p99 series {series_f.p99_ms:.1f} ms, "
          f"{live_f.rate:.0f} req/s")


CEILING = "/healthz (one SELECT 1, no identity: the stack's ceiling)"
LIVE = "live state of one luminaire"
LIVE_RATE = "live state of one luminaire, fixed rate"
SERIES = "week series of one luminaire"
MAIN = (CEILING, LIVE, LIVE_RATE, SERIES)


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
