"""A small simulated district written straight into a test database, and the job run over it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import psycopg

from analytics.fault_job import FaultDetectionJob
from analytics.metrics import JobMetrics
from analytics.runner import Scheduled, run_once
from controller_fw_sim.faults import Scenario, parse_scenario
from controller_fw_sim.fleet import DEFAULT_START, Fleet, Outbox, SensorRows
from controller_fw_sim.fleet_inventory import TENANTS, Inventory, build_inventory
from controller_fw_sim.fleet_store import FleetStore, mark_switched
from ingest.copy_binary import write
from ingest.writer import LUMINAIRE_ROWS, SENSOR_ROWS
from luciole.seed import seed_inventory

#: the COPY layouts ingest writes with, built from wire.records.RECORD_COLUMNS
LAYOUTS = {layout.table: layout for layout in (LUMINAIRE_ROWS, SENSOR_ROWS)}
START = DEFAULT_START  # 2025-01-14 15:55 UTC, ten minutes before sunset
INTERVAL_S = 300.0


def copy_columns(cur: psycopg.Cursor, table: str, columns: dict[str, np.ndarray]) -> int:
    return write(cur, LAYOUTS[table], columns)


def district(switched_fraction: float = 0.5, seed: int = 3) -> Inventory:
    """24 controllers x 4 luminaires in two municipalities (a cabinet each)."""
    return build_inventory(24, 4, seed=seed, tenants=TENANTS[:2],
                           switched_fraction=switched_fraction)


def scenario(faults: list[dict[str, object]], start: datetime = START) -> Scenario:
    return parse_scenario({"start": start.isoformat(), "faults": faults})


@dataclass(frozen=True)
class Outage:
    """A controller's link down from hour `start_h` to `end_h`: its agent keeps the readings in
    its outbox and they are stored when the link is back (store and forward), hours late."""

    controller: str
    start_h: float
    end_h: float


def _split(box: Outbox, held: np.ndarray) -> tuple[Outbox, Outbox]:
    """(what is stored now, what waits in the outbox) of one tick's telemetry."""
    def part(keep: np.ndarray) -> Outbox:
        sensors = tuple(SensorRows(s.controllers[~held[s.controllers] == keep],
                                   s.payloads[~held[s.controllers] == keep])
                        for s in box.sensors)
        mask = ~held[box.controllers] == keep
        return Outbox(box.time, box.controllers[mask], box.payloads[mask], sensors)
    return part(True), part(False)


def simulate(dsn: str, inventory: Inventory, faults: Scenario, hours: float, *,
             job_per_pass: bool = False, loss: float = 0.0,
             outages: tuple[Outage, ...] = (), metrics: JobMetrics | None = None,
             start: datetime = START) -> list[tuple]:
    """Simulate `hours` into the database, running the fault job after each hour; returns the
    faults table as (kind, cabinet, controller, luminaire, raised_at, cleared_at, cause).
    During an outage a controller's telemetry is held back, then stored at the outage's end."""
    seed_inventory(dsn, inventory)
    fleet = Fleet(inventory, start=start, interval_s=INTERVAL_S, scenario=faults, seed=1)
    job = FaultDetectionJob(silence_s=3 * INTERVAL_S)
    with psycopg.connect(dsn, autocommit=True) as conn:
        mark_switched(conn, inventory)
        store = FleetStore(conn, inventory, copy_columns, seed=1, record_loss=loss)
        per_hour = int(3600 / INTERVAL_S)
        waiting: dict[Outage, list[Outbox]] = {o: [] for o in outages}
        for h in range(int(hours)):
            boxes = [fleet.advance((h * per_hour + k + 1) * INTERVAL_S) for k in range(per_hour)]
            for o in outages:
                held = np.zeros(inventory.n_controllers, dtype=bool)
                if o.start_h <= h < o.end_h:
                    held[inventory.controller_ids.index(o.controller)] = True
                now, later = zip(*(_split(b, held) for b in boxes), strict=True)
                boxes = list(now)
                waiting[o] += later
                if h + 1 == o.end_h:  # the link is back: the outbox drains, oldest first
                    boxes = waiting[o] + boxes
            store.write(boxes)
            while True:
                item = Scheduled(FaultDetectionJob(silence_s=3 * INTERVAL_S) if job_per_pass
                                 else job, every_s=0.0, settle_s=0.0, max_window_s=1800.0)
                if run_once(conn, item, metrics, ignore_schedule=True) is None:
                    break
        return conn.execute(
            "SELECT kind, cabinet_id, controller_id, luminaire_idx, raised_at, cleared_at, cause"
            " FROM faults ORDER BY raised_at, kind, controller_id").fetchall()


def at(hours: float) -> datetime:
    return START + timedelta(hours=hours)
