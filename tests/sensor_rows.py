"""Sensor readings written as ingest stores them, for tests that set up a scene without a broker:
the rows in sensor_readings and their series in the sensor inventory, in one transaction
(ingest.sensor_state.merge, the writer's own step)."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import psycopg

from ingest import sensor_state

Reading = tuple[str, int, int, float, datetime]
"""(controller id, sensor index, quantity code, value, time)."""


def store_readings(dsn: str, rows: list[Reading], boot_id: int = 1) -> None:
    """Store `rows` (sequence numbers in list order) in sensor_readings and sensor_state."""
    with psycopg.connect(dsn) as conn:
        keys = dict(conn.execute("SELECT id, key FROM controllers").fetchall())
        conn.execute(sensor_state.TEMP_TABLE)
        controller = np.array([keys[r[0]] for r in rows], np.int32)
        time_us = np.array([round(r[4].timestamp() * 1_000_000) for r in rows], np.int64)
        with conn.cursor() as cur:
            for seq, (key, (_, sensor, quantity, value, at)) in enumerate(zip(controller.tolist(), rows,
                                                                               strict=True)):
                cur.execute("INSERT INTO sensor_readings (time, controller_key, sensor, quantity,"
                            " value, boot_id, seq) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                            (at, key, sensor, quantity, value, boot_id, seq))
            sensor_state.merge(cur, controller, np.array([r[1] for r in rows], np.int16),
                               np.array([r[2] for r in rows], np.int16), time_us,
                               np.full(len(rows), boot_id, np.int64),
                               np.arange(len(rows), dtype=np.int64),
                               np.array([r[3] for r in rows], np.float32))
