"""Urban sensors benchmark: GET /api/v1/map/sensors's query (the sensor inventory, sensor_state)
on a municipality of 25,000 controllers (100,000 luminaires), 5 % of them multifunction poles
with a sensor box of five quantities reporting every minute for the last hour, plus one reading
20 hours ago (so the default 24-hour window spans two chunks) and each cabinet's meter. Prints the
query's median and best time (the API's own SQL, as the API's database role) against a ceiling
measured in the same run: listing the same tenant's controllers with their position, which any
per-controller answer costs at least.

    .venv/bin/python bench/sensors.py [--controllers 25000] [--runs 7] [--before] [--explain]

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

import numpy as np
import psycopg

from api.sensors import LATEST
from controller_fw_sim.fleet_inventory import Tenant, build_inventory
from ingest import sensor_state
from ingest.copy_binary import write as copy_write
from ingest.writer import SENSOR_ROWS
from luciole.seed import seed_inventory
from wire.sensor_channels import URBAN_QUANTITIES, URBAN_SENSOR_BASE, URBAN_SENSOR_LAST

SKIP_SCAN = """
WITH RECURSIVE series AS (
    SELECT c.key, f.sensor, f.quantity
    FROM controllers c
    CROSS JOIN LATERAL (
        SELECT r.sensor, r.quantity FROM sensor_readings r
        WHERE r.controller_key = c.key AND r.sensor BETWEEN %(first)s AND %(last)s
          AND r.time > %(since)s
        ORDER BY r.sensor, r.quantity LIMIT 1) f
    WHERE c.tenant_id = %(tenant)s AND c.status <> 'retired'
  UNION ALL
    SELECT s.key, n.sensor, n.quantity
    FROM series s
    CROSS JOIN LATERAL (
        SELECT r.sensor, r.quantity FROM sensor_readings r
        WHERE r.controller_key = s.key AND r.sensor BETWEEN %(first)s AND %(last)s
          AND r.time > %(since)s AND (r.sensor, r.quantity) > (s.sensor, s.quantity)
        ORDER BY r.sensor, r.quantity LIMIT 1) n
)
SELECT c.id AS controller_id, c.lon, c.lat, s.sensor, s.quantity, l.time, l.value::float8 AS value
FROM series s
JOIN controllers c ON c.key = s.key
CROSS JOIN LATERAL (
    SELECT r.time, r.value FROM sensor_readings r
    WHERE r.controller_key = s.key AND r.sensor = s.sensor AND r.quantity = s.quantity
      AND r.time > %(since)s
    ORDER BY r.time DESC LIMIT 1) l
ORDER BY c.id, s.sensor, s.quantity
"""
"""The route's query before the sensor inventory (a skip scan of the readings' index), timed
beside it with --before: the same answer, for comparison."""

CITY = Tenant("bigcity", "Bigcity", 50.85, 4.35, 1.0)
POLE_SHARE = 20  # one controller in 20 is a multifunction pole


def seed_readings(dsn: str, now: datetime) -> tuple[int, int]:
    """Sensor readings of the poles (and a meter per cabinet), stored as ingest stores them: the
    readings' COPY and the sensor inventory's merge in one transaction; (poles, rows) written."""
    quantities = np.array([int(q) for q in URBAN_QUANTITIES.values()], np.int16)
    now_us = int(now.timestamp() * 1_000_000)
    with psycopg.connect(dsn) as conn:
        keys = np.array([int(r[0]) for r in conn.execute(
            "SELECT key FROM controllers WHERE tenant_id = %s ORDER BY key", (CITY.id,)).fetchall()],
            np.int32)
        poles, meters = keys[::POLE_SHARE], keys[1::50]
        # per pole: 20 hours back, then every minute of the last hour (seq counts its readings)
        times = np.array([now_us - 20 * 3_600_000_000]
                         + [now_us - m * 60_000_000 for m in range(60, 0, -1)], np.int64)
        pole_key = np.repeat(poles, times.shape[0] * quantities.shape[0])
        pole_seq = np.tile(np.repeat(np.arange(times.shape[0]), quantities.shape[0]), poles.shape[0])
        columns = {
            "controller_key": np.concatenate([pole_key, np.repeat(meters, 60)]),
            "sensor": np.concatenate([np.full(pole_key.shape[0], URBAN_SENSOR_BASE, np.int16),
                                      np.zeros(meters.shape[0] * 60, np.int16)]),
            "quantity": np.concatenate([np.tile(quantities, times.shape[0] * poles.shape[0]),
                                        np.full(meters.shape[0] * 60, 9, np.int16)]),
            "time": np.concatenate([times[pole_seq],
                                    np.tile(now_us - np.arange(60) * 60_000_000, meters.shape[0])]),
            "value": np.concatenate([20.0 + pole_seq % 7, np.full(meters.shape[0] * 60, 230.0)]
                                    ).astype(np.float32),
            "boot_id": np.ones(pole_key.shape[0] + meters.shape[0] * 60, np.int64),
            "seq": np.concatenate([pole_seq, np.tile(np.arange(60), meters.shape[0])]).astype(np.int64),
        }
        conn.execute(sensor_state.TEMP_TABLE)
        with conn.cursor() as cur:
            rows = copy_write(cur, SENSOR_ROWS, columns)
            sensor_state.merge(cur, columns["controller_key"], columns["sensor"], columns["quantity"],
                               columns["time"], columns["boot_id"], columns["seq"], columns["value"])
        conn.commit()
        conn.execute("ANALYZE sensor_readings")
        conn.execute("ANALYZE sensor_state")
        conn.execute("ANALYZE controllers")  # as autovacuum would have, after the inventory import
        conn.commit()
    return int(poles.shape[0]), rows


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
    parser.add_argument("--before", action="store_true",
                        help="also time the query the route used before the sensor inventory")
    parser.add_argument("--explain", action="store_true", help="print the route query's plan")
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
                if args.explain:
                    for (line,) in conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + LATEST, params):
                        print(line)
                if args.before:
                    skip, skipped = timed(conn, SKIP_SCAN, params, args.runs)
                    same = (conn.execute(LATEST, params).fetchall()
                            == conn.execute(SKIP_SCAN, params).fetchall())
                    print(f"before (skip scan of the readings): median {statistics.median(skip):.0f} ms"
                          f" (best {min(skip):.0f} ms), {skipped:,} rows, same answer: {same}")
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
