"""Urban sensors benchmark: GET /api/v1/map/sensors's query on a municipality of 25,000 controllers
(100,000 luminaires), 5 % of them multifunction poles with a sensor box of five quantities
reporting every minute for the last hour, plus one reading 20 hours ago (so the default 24-hour
window spans two chunks) and each cabinet's meter. Prints the query's median and best time (the
API's own SQL, as the API's database role) against a ceiling measured in the same run: listing the
same tenant's controllers with their position, which any per-controller answer costs at least.

    .venv/bin/python bench/sensors.py [--controllers 25000] [--runs 7]

Last line: `sensors: median M ms (best B ms) for S sensors of C controllers; ceiling (the
controllers' list) K ms; load L`."""

from __future__ import annotations

import sys
from pathlib import Path

_here = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _here]
sys.path.insert(0, str(_here.parent))

import os
import statistics
import time
from datetime import UTC, datetime, timedelta

import psycopg

from api.sensors import LATEST, URBAN_SENSOR_LAST
from controller_fw_sim.fleet_inventory import Tenant, build_inventory
from luciole.seed import seed_inventory
from wire.sensor_channels import URBAN_QUANTITIES, URBAN_SENSOR_BASE

CITY = Tenant("bigcity", "Bigcity", 50.85, 4.35, 1.0)
POLE_SHARE = 20  # one controller in 20 is a multifunction pole


def seed_readings(dsn: str, now: datetime) -> tuple[int, int]:
    """Sensor readings of the poles (and a meter per cabinet); (poles, rows) written."""
    quantities = [int(q) for q in URBAN_QUANTITIES.values()]
    with psycopg.connect(dsn) as conn:
        keys = [int(r[0]) for r in conn.execute(
            "SELECT key FROM controllers WHERE tenant_id = %s ORDER BY key", (CITY.id,)).fetchall()]
        poles = keys[::POLE_SHARE]
        meters = keys[1::50]
        rows = 0
        with conn.cursor().copy("COPY sensor_readings (time, controller_key, sensor, quantity, value,"
                                " boot_id, seq) FROM STDIN") as copy:
            for key in poles:
                times = [now - timedelta(hours=20)] + [now - timedelta(minutes=m) for m in range(60, 0, -1)]
                for seq, at in enumerate(times):
                    for q in quantities:
                        copy.write_row((at, key, URBAN_SENSOR_BASE, q, 20.0 + (seq % 7), 1, seq))
                        rows += 1
            for key in meters:
                for seq in range(60):
                    copy.write_row((now - timedelta(minutes=seq), key, 0, 9, 230.0, 1, seq))
                    rows += 1
        conn.execute("ANALYZE sensor_readings")
        conn.commit()
    return len(poles), rows


def timed(conn: psycopg.Connection, sql: str, params: dict[str, object],
          runs: int) -> tuple[list[float], int]:
    times, count = [], 0
    for _ in range(runs):
        t = time.perf_counter()
        count = len(conn.execute(sql, params).fetchall())
        times.append((time.perf_counter() - t) * 1000)
    return times, count


def main() -> None:
    import argparse
    import tempfile

    from luciole.db_roles import DbService
    from luciole.migrate import migrate
    from luciole.settings import StackSettings
    from luciole.stack import Stack

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--controllers", type=int, default=25_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-sensors-") as tmp:
        stack = Stack(StackSettings(var_dir=Path(tmp) / "var", mqtt_port=0, pg_port=0, pg_fsync=False))
        endpoints = stack.up()
        try:
            migrate(endpoints.dsn())
            seed_inventory(endpoints.dsn(), build_inventory(args.controllers, 4, seed=7, tenants=(CITY,)))
            now = datetime.now(UTC)
            poles, rows = seed_readings(endpoints.dsn(), now)
            print(f"seeded {args.controllers:,} controllers, {poles:,} sensor boxes, {rows:,} readings")
            with psycopg.connect(endpoints.service_dsn(DbService.API), autocommit=True) as conn:
                params = {"tenant": CITY.id, "since": now - timedelta(hours=24),
                          "first": URBAN_SENSOR_BASE, "last": URBAN_SENSOR_LAST}
                query, found = timed(conn, LATEST, params, args.runs)
                ceiling, listed = timed(conn, "SELECT id, lat, lon FROM controllers WHERE tenant_id ="
                                        " %(tenant)s AND status <> 'retired'", params, args.runs)
            assert found == poles * len(URBAN_QUANTITIES), (found, poles)
            print(f"sensors: median {statistics.median(query):.0f} ms (best {min(query):.0f} ms) for"
                  f" {poles:,} sensors of {listed:,} controllers; ceiling (the controllers' list)"
                  f" {statistics.median(ceiling):.0f} ms; load {os.getloadavg()[0]:.1f}")
        finally:
            stack.down()


if __name__ == "__main__":
    main()
