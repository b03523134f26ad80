"""Open-data and tenant GeoJSON benchmark on its own stack: one municipality of 100,000
luminaires (the simulator's inventory, 25,000 controllers, groups, live state, open faults),
`luciole api serve` with one worker, each export downloaded whole over HTTP (streamed) a few
times: wall time, bytes, the API worker's and PostgreSQL's CPU, and how much the worker's
resident memory grew. The ceiling printed beside each: PostgreSQL writing the same rows as
text (`COPY (SELECT ...) TO STDOUT` of the export's queries), which no export can beat.
`--keep DIR` keeps the seeded database, `--reuse DIR` serves it again. Last line:
`opendata: geojson S s, ngsi-ld key-values S s for N streetlights (ceiling C s)`."""

from __future__ import annotations

import sys
from pathlib import Path

_here = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _here]
sys.path.insert(0, str(_here.parent))

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import psycopg

from api import open_data_queries as q
from api.credentials import issue_token
from api.roles import Principal, Role
from bench.api import _healthy, _tree_cpu_s, seeded_root, socket_port
from controller_fw_sim.fleet_inventory import Tenant, build_inventory
from luciole.migrate import migrate
from luciole.seed import seed_inventory
from luciole.settings import StackSettings
from luciole.stack import Stack, wait_for

REPO = Path(__file__).resolve().parents[1]
TENANT = Tenant("bench-city", "Bench City", 50.8467, 4.3525, 1.0)


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def seed(dsn: str, luminaires: int, groups: int, now: datetime) -> int:
    """One municipality of `luminaires` luminaires with live state (a mix of levels, gear without
    diagnostics, offline controllers), `groups` groups, open faults on 2 % of the luminaires and
    on some controllers and cabinets, installation dates on half. Returns the streetlights."""
    inventory = build_inventory(luminaires // 4, 4, seed=7, tenants=(TENANT,))
    t0 = time.perf_counter()
    seed_inventory(dsn, inventory)
    with psycopg.connect(dsn) as conn:
        conn.execute("UPDATE supply_points SET contracted_kw = 25")
        conn.execute("UPDATE luminaires SET installed_at = %s - (id %% 3000) * interval '1 day'"
                     " WHERE id %% 2 = 0", (now,))
        conn.execute(
            "INSERT INTO luminaire_state (controller_key, luminaire, time, level, status, power_w,"
            " energy_wh, voltage_v, power_factor, driver_temp_c, failure)"
            " SELECT c.key, l.idx, %s - (l.id %% 600) * interval '1 second',"
            " (ARRAY[0, 120, 200, 254, 255])[1 + l.id %% 5], 0, 20 + (l.id %% 17) * 1.25,"
            " 1000 + l.id, 229.5 + (l.id %% 7), 0.9 + (l.id %% 9) * 0.01, 41,"
            " CASE WHEN l.id %% 11 = 0 THEN 512 ELSE 0 END"
            " FROM luminaires l JOIN controllers c ON c.id = l.controller_id", (now,))
        conn.execute("UPDATE controllers SET online = key %% 20 <> 0, last_seen = %s", (now,))
        conn.execute(
            "INSERT INTO groups (tenant_id, name) SELECT %s, 'group ' || g"
            " FROM generate_series(1, %s) g", (TENANT.id, groups))
        conn.execute(
            "INSERT INTO group_members (group_id, luminaire_id)"
            " SELECT g.id, l.id FROM luminaires l JOIN groups g ON g.tenant_id = l.tenant_id"
            " AND g.name = 'group ' || (1 + l.id * 7 %% %s)", (groups,))
        conn.execute(
            "INSERT INTO faults (tenant_id, controller_id, luminaire_idx, kind, severity, raised_at)"
            " SELECT l.tenant_id, l.controller_id, l.idx,"
            " (ARRAY['lampFailure', 'supplyVoltageTooHigh', 'controlGearCommFailure'])[1 + l.id %% 3],"
            " 'warning', %s FROM luminaires l WHERE l.id %% 50 = 0", (now,))
        conn.execute(
            "INSERT INTO faults (tenant_id, controller_id, kind, severity, raised_at)"
            " SELECT tenant_id, id, 'poleTilted', 'warning', %s FROM controllers WHERE key %% 97 = 0",
            (now,))
        conn.execute(
            "INSERT INTO faults (tenant_id, cabinet_id, kind, severity, raised_at)"
            " SELECT tenant_id, id, 'supplyLoss', 'critical', %s FROM cabinets"
            " WHERE id IN (SELECT id FROM cabinets ORDER BY id LIMIT 5)", (now,))
        conn.execute("ANALYZE")
        conn.commit()
        (n,) = conn.execute("SELECT count(*) FROM luminaires").fetchone()  # type: ignore[misc]
    say(f"seeded {n:,} luminaires, {len(inventory.controller_ids):,} controllers, "
        f"{len(inventory.cabinet_ids):,} cabinets, {groups} groups in {time.perf_counter() - t0:.0f} s")
    return int(n)


@dataclass
class Run:
    seconds: float
    first_byte_s: float
    bytes: int
    api_cpu_s: float
    pg_cpu_s: float
    rss_growth_mib: float


def _worker_rss_mib(server_pid: int) -> float:
    """The largest resident set (VmHWM, MiB) among the server's processes."""
    best = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry}/status").read_text()
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        if int(entry) != server_pid and ppid != server_pid:
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                best = max(best, int(line.split()[1]) / 1024)
    return best


def download(url: str, headers: dict[str, str], server_pid: int, pg_pid: int) -> Run:
    rss0 = _worker_rss_mib(server_pid)
    api0, pg0 = _tree_cpu_s(server_pid), _tree_cpu_s(pg_pid)
    t0 = time.perf_counter()
    first = None
    size = 0
    with httpx.stream("GET", url, headers=headers, timeout=600) as r:
        if r.status_code != 200:
            raise SystemExit(f"{url}: {r.status_code} {r.read()[:300]!r}")
        for chunk in r.iter_raw():
            if first is None:
                first = time.perf_counter() - t0
            size += len(chunk)
    seconds = time.perf_counter() - t0
    return Run(seconds, first or seconds, size, _tree_cpu_s(server_pid) - api0,
               _tree_cpu_s(pg_pid) - pg0, _worker_rss_mib(server_pid) - rss0)


def copy_seconds(dsn: str, queries: list[tuple[str, dict[str, object]]]) -> tuple[float, int]:
    """PostgreSQL writing the rows of `queries` as text to this client: the ceiling."""
    size = 0
    t0 = time.perf_counter()
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        for sql, params in queries:
            with cur.copy(f"COPY ({sql}) TO STDOUT", params) as copy:
                for block in copy:
                    size += len(block)
    return time.perf_counter() - t0, size


TENANT_ROWS = """
SELECT l.id, l.lon, l.lat, l.controller_id, l.idx, l.model, l.rated_power_w, l.road_class,
       s.level, s.power_w, s.failure, to_json(s.time) #>> '{}', c.online
FROM luminaires l JOIN controllers c ON c.id = l.controller_id
LEFT JOIN luminaire_state s ON s.controller_key = c.key AND s.luminaire = l.idx
WHERE l.tenant_id = %(tenant)s AND (%(controller)s::text IS NULL OR l.controller_id = %(controller)s)
ORDER BY l.id
"""
"""The tenant GeoJSON's rows as plain columns: its ceiling (PostgreSQL writing them as text)."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--luminaires", type=int, default=100_000)
    parser.add_argument("--groups", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3, help="downloads of each export")
    parser.add_argument("--keep", type=Path, metavar="DIR")
    parser.add_argument("--reuse", type=Path, metavar="DIR")
    parser.add_argument("--only", metavar="TEXT",
                        help="run only the exports whose name contains TEXT (e.g. 'tenant')")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-opendata-") as tmp:
        root = seeded_root(parser, args, tmp, "opendata.json")
        var = root / "var"
        stack = Stack(StackSettings(var_dir=var, mqtt_port=0, pg_port=0, pg_fsync=False,
                                    pg_shared_buffers="512MB"))
        endpoints = stack.up()
        server: subprocess.Popen[bytes] | None = None
        try:
            migrate(endpoints.dsn())
            if args.reuse:
                n = int(json.loads((root / "opendata.json").read_text())["luminaires"])
            else:
                n = seed(endpoints.dsn(), args.luminaires, args.groups, datetime.now(UTC))
                if args.keep:
                    (root / "opendata.json").write_text(json.dumps({"luminaires": n}))
            secret = "bench-signing-secret-" + os.urandom(16).hex()
            with socket_port() as port:
                pass
            server = subprocess.Popen(
                [str(REPO / ".venv/bin/luciole"), "--var-dir", str(var), "api", "serve",
                 "--workers", "1", "--port", str(port)],
                env={**os.environ, "LUCIOLE_API_TOKEN_SECRET": secret}, cwd=REPO)
            base = f"http://127.0.0.1:{port}"
            wait_for(lambda: _healthy(base), 240, "the API to answer")
            with psycopg.connect(endpoints.dsn()) as conn:
                row = conn.execute("INSERT INTO users (tenant_id, email, role) VALUES (%s, %s,"
                                   " 'viewer') ON CONFLICT (email) DO UPDATE SET role = 'viewer'"
                                   " RETURNING id", (TENANT.id, "bench@opendata.example")).fetchone()
                streetlights = conn.execute(
                    "SELECT count(*) FROM luminaires l JOIN controllers c ON c.id = l.controller_id"
                    " WHERE c.status <> 'retired' AND coalesce(l.lat, c.lat) IS NOT NULL"
                    " AND coalesce(l.lon, c.lon) IS NOT NULL").fetchone()[0]  # type: ignore[index]
                conn.commit()
            assert row is not None
            token = issue_token(Principal(int(row[0]), TENANT.id, Role.VIEWER), secret,
                                timedelta(hours=2), datetime.now(UTC))
            tenant = {"tenant": TENANT.id}
            od = f"{base}/api/v1/opendata/{TENANT.id}"
            plan = [
                ("open-data GeoJSON", f"{od}/streetlights.geojson", {},
                 [(q.STREETLIGHTS, tenant), (q.CABINETS, tenant)]),
                ("NGSI-LD key-values", f"{od}/ngsi-ld/entities?options=keyValues", {},
                 [(sql, tenant) for sql in q.ALL_QUERIES]),
                ("NGSI-LD normalized", f"{od}/ngsi-ld/entities", {},
                 [(sql, tenant) for sql in q.ALL_QUERIES]),
                ("tenant GeoJSON (luminaires.geojson)", f"{base}/api/v1/luminaires.geojson",
                 {"Authorization": f"Bearer {token}"},
                 [(TENANT_ROWS, {"tenant": TENANT.id, "controller": None})]),
            ]
            say(f"luciole api: 1 worker on :{port}; {streetlights:,} streetlights; "
                f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
            medians: dict[str, tuple[float, float]] = {}
            plan = [p for p in plan if args.only is None or args.only in p[0]]
            for name, url, headers, queries in plan:
                ceiling, ceiling_bytes = copy_seconds(endpoints.dsn(), queries)
                runs = [download(url, headers, server.pid, endpoints.postgres_pid or 0)
                        for _ in range(args.runs)]
                wall = statistics.median(r.seconds for r in runs)
                medians[name] = (wall, ceiling)
                say(f"{name}: {runs[0].bytes / 1e6:,.1f} MB in {wall:.2f} s (median of {len(runs)}: "
                    + ", ".join(f"{r.seconds:.2f}" for r in runs)
                    + f"), first byte {min(r.first_byte_s for r in runs):.2f} s; per download CPU: "
                    f"API worker {statistics.median(r.api_cpu_s for r in runs):.2f} s, PostgreSQL "
                    f"{statistics.median(r.pg_cpu_s for r in runs):.2f} s; worker memory grew by "
                    f"at most {max(r.rss_growth_mib for r in runs):.0f} MiB; ceiling: COPY of the "
                    f"same rows as text {ceiling:.2f} s ({ceiling_bytes / 1e6:,.1f} MB); "
                    f"load average {os.getloadavg()[0]:.1f}")
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
    if "open-data GeoJSON" not in medians or "NGSI-LD key-values" not in medians:
        return
    geo, kv = medians["open-data GeoJSON"], medians["NGSI-LD key-values"]
    print(f"opendata: geojson {geo[0]:.2f} s, ngsi-ld key-values {kv[0]:.2f} s for "
          f"{streetlights:,} streetlights (ceiling {geo[1]:.2f} s and {kv[1]:.2f} s); "
          f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
