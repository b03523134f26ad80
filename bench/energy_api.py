"""Energy reports through the API on their own stack: a municipality of 20,000 luminaires on 200
supply points with a year of the energy job's days (energy_day per municipality and supply point)
and 30 days of 15-minute supply-point and tenant intervals; `luciole api` answers a year of the
municipality by day and by month, 30 days by hour and a supply point's day by 15 minutes, one
request at a time. Prints p50 and p99 of each against the ceiling measured in the same run
(/healthz through the same stack) and the floor. Last line:
`energy api: p99 year by day Y ms, p99 30 days by hour H ms`."""

from __future__ import annotations

import sys
from pathlib import Path

_here = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _here]
sys.path.insert(0, str(_here.parent))

import argparse
import os
import socket
import subprocess
import tempfile
import time
from datetime import UTC, date, datetime, timedelta

import httpx
import numpy as np
import psycopg

from api.credentials import issue_token
from api.roles import Principal, Role
from luciole.migrate import migrate
from luciole.settings import StackSettings
from luciole.stack import Stack, wait_for

REPO = Path(__file__).resolve().parents[1]
FLOOR_YEAR_P99_MS = 250.0
TENANT = "bench-town"
YEAR_END = date(2026, 11, 1)


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def load(dsn: str, eans: int, per_ean: int, interval_days: int) -> list[str]:
    """The municipality, its supply points, cabinets, controllers and luminaires; a year of days
    and `interval_days` of 15-minute supply intervals, written by SQL as the job would."""
    first = YEAR_END - timedelta(days=365)
    with psycopg.connect(dsn) as conn:
        conn.execute("INSERT INTO tenants (id, name) VALUES (%s, 'Bench Town')", (TENANT,))
        conn.execute("INSERT INTO supply_points (ean, tenant_id, name) SELECT '5' || lpad(i::text, 17, '0'),"
                     " %s, 'sp ' || i FROM generate_series(1, %s) i", (TENANT, eans))
        conn.execute("INSERT INTO cabinets (id, tenant_id, supply_point_ean, name) SELECT 'cab-' || i,"
                     " %s, '5' || lpad(i::text, 17, '0'), 'c' FROM generate_series(1, %s) i", (TENANT, eans))
        conn.execute("INSERT INTO controllers (id, tenant_id, cabinet_id, lat, lon, status) SELECT"
                     " 'ctl-' || i, %s, 'cab-' || (1 + i %% %s), 50.8 + random() * 0.1,"
                     " 4.3 + random() * 0.1, 'active' FROM generate_series(1, %s) i",
                     (TENANT, eans, eans * per_ean // 4))
        conn.execute("INSERT INTO luminaires (tenant_id, controller_id, idx, rated_power_w)"
                     " SELECT %s, c.id, x, 40 + 20 * random() FROM controllers c,"
                     " generate_series(0, 3) x WHERE c.tenant_id = %s", (TENANT, TENANT))
        conn.execute(
            "INSERT INTO energy_day (scope, key, day, tenant_id, intervals, intervals_present,"
            " energy_wh, measured_wh, estimated_wh, default_wh, uncertainty_wh, baseline_wh,"
            " baseline_regime, savings_wh, tariff_eur_kwh, tariff_basis, tariff_year, tariff_source,"
            " savings_eur, emission_g_kwh, emission_basis, emission_year, emission_source,"
            " savings_co2_kg, measured_cells, estimated_cells)"
            " SELECT k.scope, k.key, d::date, %s, 96, 96, v.e, v.e * 0.97, v.e * 0.03, 0, v.e * 0.02,"
            " v.e * 1.4, 'full_dusk_to_dawn', v.e * 0.4, 0.3, 'contract', 2026, 'bench', v.e * 0.4e-3 * 0.3,"
            " 167.49, 'residual mix', 2023, 'AIB', v.e * 0.4e-6 * 167.49, k.n * 40, k.n * 2"
            " FROM (SELECT 'tenant' AS scope, %s AS key, %s * %s AS n UNION ALL"
            "       SELECT 'supply_point', ean, %s FROM supply_points WHERE tenant_id = %s) k,"
            " generate_series(%s::date, %s::date - 1, interval '1 day') d,"
            " LATERAL (SELECT k.n * 400.0 * (1 + random() * 0.1 + 0 * extract(epoch FROM d)) AS e) v",
            (TENANT, TENANT, eans, per_ean, per_ean, TENANT, first, YEAR_END))
        end = datetime(YEAR_END.year, YEAR_END.month, YEAR_END.day, tzinfo=UTC)
        start = end - timedelta(days=interval_days)
        conn.execute(
            "INSERT INTO energy_supply_interval (bucket, ean, energy_wh, measured_wh, estimated_wh,"
            " default_wh, uncertainty_wh, luminaires_expected, luminaires_reporting, burning_s,"
            " flags, measured_cells, estimated_cells)"
            " SELECT b, p.ean, v.e, v.e, 0, 0, v.e * 0.01, %s, %s, 36000, 0, %s, 0"
            " FROM supply_points p, generate_series(%s::timestamptz, %s::timestamptz - interval '15 min',"
            " interval '15 min') b, LATERAL (SELECT %s * 10.0 * random() + 0 * extract(epoch FROM b) AS e) v"
            " WHERE p.tenant_id = %s",
            (per_ean, per_ean, per_ean, start, start + timedelta(days=interval_days), per_ean, TENANT))
        # the tenant's intervals, as the job writes them beside its supply points' (every
        # luminaire of the municipality is on one of them here)
        conn.execute(
            "INSERT INTO energy_tenant_interval (tenant_id, bucket, energy_wh, measured_wh,"
            " estimated_wh, default_wh, uncertainty_wh, measured_cells, estimated_cells)"
            " SELECT p.tenant_id, s.bucket, sum(s.energy_wh), sum(s.measured_wh),"
            " sum(s.estimated_wh), sum(s.default_wh), sum(s.uncertainty_wh), sum(s.measured_cells),"
            " sum(s.estimated_cells) FROM energy_supply_interval s JOIN supply_points p"
            " ON p.ean = s.ean WHERE p.tenant_id = %s GROUP BY 1, 2", (TENANT,))
        conn.execute("ANALYZE")
        conn.commit()
        return [r[0] for r in conn.execute("SELECT ean FROM supply_points WHERE tenant_id = %s",
                                           (TENANT,)).fetchall()]


def timed(client: httpx.Client, path: str, headers: dict[str, str], n: int) -> np.ndarray:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        response = client.get(path, headers=headers)
        out.append((time.perf_counter() - t0) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"{path}: {response.status_code} {response.text[:300]}")
    return np.array(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--eans", type=int, default=200)
    parser.add_argument("--per-ean", type=int, default=100, help="luminaires per supply point")
    parser.add_argument("--interval-days", type=int, default=30)
    parser.add_argument("--requests", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-energy-api-") as tmp:
        var = Path(tmp) / "var"
        stack = Stack(StackSettings(var_dir=var, mqtt_port=0, pg_port=0, pg_fsync=False))
        endpoints = stack.up()
        server: subprocess.Popen[bytes] | None = None
        try:
            migrate(endpoints.dsn())
            t0 = time.perf_counter()
            eans = load(endpoints.dsn(), args.eans, args.per_ean, args.interval_days)
            say(f"loaded {args.eans} supply points, {args.eans * args.per_ean:,} luminaires, a year of days,"
                f" {args.interval_days} days of 15-minute intervals ({time.perf_counter() - t0:.0f} s)")
            secret = "bench-signing-secret-" + os.urandom(16).hex()
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            env = {**os.environ, "LUCIOLE_API_TOKEN_SECRET": secret}
            server = subprocess.Popen(
                [str(REPO / ".venv/bin/luciole"), "--var-dir", str(var), "api", "serve",
                 "--workers", "1", "--port", str(port)], env=env, cwd=REPO)
            base = f"http://127.0.0.1:{port}"
            wait_for(lambda: _healthy(base), 240, "the API")
            with psycopg.connect(endpoints.dsn()) as conn:
                row = conn.execute("INSERT INTO users (tenant_id, email, role) VALUES (%s,"
                                   " 'bench@bench.example', 'viewer') RETURNING id", (TENANT,)).fetchone()
                conn.commit()
            assert row is not None
            headers = {"Authorization": "Bearer " + issue_token(
                Principal(int(row[0]), TENANT, Role.VIEWER), secret, timedelta(hours=1), datetime.now(UTC))}
            end = datetime(YEAR_END.year, YEAR_END.month, YEAR_END.day, tzinfo=UTC)
            iso = lambda t: t.isoformat().replace("+00:00", "Z")  # noqa: E731
            year = f"from={iso(end - timedelta(days=365))}&to={iso(end)}"
            month = f"from={iso(end - timedelta(days=args.interval_days))}&to={iso(end)}"
            day = f"from={iso(end - timedelta(days=1))}&to={iso(end)}"
            plan = [("/healthz (the ceiling: one SELECT 1 through the same stack)", "/healthz"),
                    ("a year of the municipality by day (energy_day)",
                     f"/api/v1/energy/municipality?{year}&interval=day"),
                    ("a year of the municipality by month",
                     f"/api/v1/energy/municipality?{year}&interval=month"),
                    (f"{args.interval_days} days of the municipality by hour (its tenant intervals,"
                     f" {args.eans} supply points)", f"/api/v1/energy/municipality?{month}&interval=hour"),
                    ("a day of one supply point by 15 minutes",
                     f"/api/v1/energy/supply-points/{eans[0]}?{day}")]
            figures = []
            with httpx.Client(base_url=base, timeout=120) as client:
                for name, path in plan:
                    timed(client, path, headers, 3)  # warm
                    ms = timed(client, path, headers, args.requests)
                    figures.append(ms)
                    say(f"{name}: {args.requests} requests one at a time: p50 {np.percentile(ms, 50):.1f} ms,"
                        f" p99 {np.percentile(ms, 99):.1f} ms; load average {os.getloadavg()[0]:.1f}")
        finally:
            if server is not None:
                server.terminate()
                server.wait(30)
            stack.down()
    ceiling, year_ms, hour_ms = figures[0], figures[1], figures[3]
    print(f"ceiling: /healthz p99 {np.percentile(ceiling, 99):.1f} ms; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"floor: p99 of a year of a municipality < {FLOOR_YEAR_P99_MS:.0f} ms "
          f"({'within' if np.percentile(year_ms, 99) < FLOOR_YEAR_P99_MS else 'ABOVE'})")
    print(f"energy api: p99 year by day {np.percentile(year_ms, 99):.0f} ms, "
          f"p99 {args.interval_days} days by hour {np.percentile(hour_ms, 99):.0f} ms")


def _healthy(base: str) -> bool:
    try:
        return httpx.get(base + "/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


if __name__ == "__main__":
    main()
