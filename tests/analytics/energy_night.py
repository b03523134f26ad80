"""A simulated district's night, day and night written into a test database hour by hour, with the
energy and settlement jobs run after each hour as the jobs role, and the simulator's exact energy
per interval kept as the truth.

What happens to it: one controller's readings of three evening hours arrive late (at hour 10,
the following local day, with their ledger rows as ingest writes them); six controllers of one
cabinet lose their link for three hours in the night and those readings never arrive (a control
failure across many units, with the deaths and births ingest stores); the fourth luminaire of
every controller on the other cabinet is DALI DT6 gear that meters no energy.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import psycopg
from psycopg.conninfo import conninfo_to_dict

from analytics.energy_job import EnergyJob
from analytics.runner import Scheduled, run_once
from analytics.settlement_job import SettlementJob
from controller_fw_sim.fleet import DEFAULT_START
from controller_fw_sim.fleet import Fleet as SimFleet
from controller_fw_sim.fleet_inventory import Inventory
from controller_fw_sim.fleet_store import FleetStore, mark_switched
from luciole.db_roles import DbService
from luciole.seed import seed_inventory
from tests.analytics.district import copy_columns
from tests.analytics.energy_sim import BUCKET, TICK_S, district
from wire.records import LuminaireFailure

HOURS = 32
HELD_CTL = 2  # its readings from hour 4 to 7 arrive at hour 10
HELD_FROM, HELD_UNTIL, HELD_ARRIVE = 4, 7, 10
OUTAGE_FROM, OUTAGE_UNTIL = 8, 11  # hours of the control failure
NAME = "t_energy_night"


@dataclass
class Night:
    dsn: str
    inventory: Inventory
    truth: np.ndarray  # (controllers x 4, buckets)
    b0: int
    keys: np.ndarray  # controller key of each simulated controller
    rated_input_w: np.ndarray
    level_only: np.ndarray  # bool per luminaire: gear without metering
    outage: np.ndarray  # controllers silent OUTAGE_FROM..OUTAGE_UNTIL
    before_late: list[tuple]  # the held controller's intervals before its readings came
    tenant_before_late: list[tuple]  # the tenant's intervals (energy_tenant_interval) then
    settlement_before_late: list[tuple]  # (ean, day, kind, version) before they came

    def at(self, hours: float) -> datetime:
        return datetime.fromtimestamp(DEFAULT_START.timestamp() + hours * 3600, UTC)


def _passes(conn: psycopg.Connection) -> None:
    for job, window in ((EnergyJob(), 3600.0), (SettlementJob(), 40 * 86400.0)):
        item = Scheduled(job, every_s=0.0, settle_s=0.0, max_window_s=window)
        while run_once(conn, item, ignore_schedule=True) is not None:
            pass


def build(stack) -> Iterator[Night]:  # type: ignore[no-untyped-def]
    with stack.admin() as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {NAME} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {NAME} TEMPLATE luciole_template")
    dsn = stack.endpoints.dsn(NAME)
    jobs_dsn = stack.endpoints.service_dsn(DbService.JOBS, conninfo_to_dict(dsn)["dbname"])
    try:
        yield _simulate(dsn, jobs_dsn)
    finally:
        with stack.admin() as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {NAME} WITH (FORCE)")


def _simulate(dsn: str, jobs_dsn: str) -> Night:
    inv = district()
    seed_inventory(dsn, inv)
    fleet = SimFleet(inv, start=DEFAULT_START, interval_s=300.0, seed=2)
    n = inv.n_luminaires
    cab = inv.controller_cabinet.astype(np.int64)
    other = int(cab[HELD_CTL] == 0)  # the cabinet without the held controller
    level_only = (cab[inv.luminaire_controller] == other) & (inv.luminaire_index == 3)
    fleet.absent[level_only] |= np.uint16(LuminaireFailure.ABSENT_POWER)
    same = np.flatnonzero((cab == cab[HELD_CTL]) & (np.arange(inv.n_controllers) != HELD_CTL))
    outage = same[:6]
    t0 = DEFAULT_START.timestamp()
    b0 = int(np.ceil(t0 / BUCKET))
    bounds = []
    before_late: list[tuple] = []
    tenant_before_late: list[tuple] = []
    settled: list[tuple] = []
    with psycopg.connect(dsn, autocommit=True) as own, \
            psycopg.connect(jobs_dsn, autocommit=True) as conn:
        mark_switched(own, inv)
        store = FleetStore(own, inv, copy_columns, seed=1)
        keys = store.keys
        tenant = inv.tenants[0].id
        own.execute("INSERT INTO energy_factors VALUES (%s, 'emission', '2023-01-01', 167.49,"
                    " 'g CO2e/kWh', 'residual mix', 2023, 'AIB European Residual Mixes 2023'),"
                    " (%s, 'tariff', '2023-01-01', 0.25, 'EUR/kWh', 'all-in public lighting',"
                    " 2025, 'municipal contract')", (tenant, tenant))
        own.execute("CREATE TEMP TABLE held_back AS SELECT * FROM luminaire_telemetry LIMIT 0")
        ticks_per_hour = int(3600 / TICK_S)
        for h in range(HOURS):
            boxes = []
            for k in range(ticks_per_hour):
                tick = h * ticks_per_hour + k + 1
                boxes.append(fleet.advance(tick * TICK_S))
                now = t0 + tick * TICK_S
                if now % BUCKET == 0 and now >= b0 * BUCKET:
                    bounds.append(fleet.luminaire_energy_wh(np.arange(n)).copy())
            store.write(boxes)
            hour_start = datetime.fromtimestamp(t0 + h * 3600, UTC)
            if HELD_FROM <= h < HELD_UNTIL:  # not arrived yet
                own.execute("INSERT INTO held_back SELECT * FROM luminaire_telemetry"
                            " WHERE controller_key = %s AND time > %s",
                            (int(keys[HELD_CTL]), hour_start))
                own.execute("DELETE FROM luminaire_telemetry WHERE controller_key = %s"
                            " AND time > %s", (int(keys[HELD_CTL]), hour_start))
            if OUTAGE_FROM <= h < OUTAGE_UNTIL:  # lost for good
                own.execute("DELETE FROM luminaire_telemetry WHERE controller_key = ANY(%s)"
                            " AND time > %s", (keys[outage].tolist(), hour_start))
            if h in (OUTAGE_FROM, OUTAGE_UNTIL):
                for c in outage.tolist():
                    own.execute(
                        "INSERT INTO controller_states (time, controller_key, online, reason,"
                        " firmware, luminaires, boot_id, seq, message_id)"
                        " VALUES (%s, %s, %s, %s, 'sim', 4, 1, %s, %s)",
                        (hour_start, int(keys[c]), h == OUTAGE_UNTIL,
                         None if h == OUTAGE_UNTIL else "connection_lost", h, f"m-{c}-{h}"))
            if h == HELD_ARRIVE:
                before_late = conn.execute(
                    "SELECT bucket, luminaire, energy_wh, source FROM energy_interval"
                    " WHERE controller_key = %s ORDER BY luminaire, bucket",
                    (int(keys[HELD_CTL]),)).fetchall()
                tenant_before_late = conn.execute(
                    "SELECT tenant_id, bucket, energy_wh, measured_cells, estimated_cells"
                    " FROM energy_tenant_interval ORDER BY 1, 2").fetchall()
                settled = conn.execute("SELECT ean, day, kind, version FROM settlement_files"
                                       " ORDER BY 1, 2, 3, 4").fetchall()
                own.execute("INSERT INTO luminaire_telemetry SELECT * FROM held_back")
                own.execute("INSERT INTO message_ledger (controller_key, boot_id, first_seq,"
                            " record_count, kind) SELECT controller_key, boot_id, seq, 1, 1"
                            " FROM held_back")
            _passes(conn)
    truth = np.diff(np.stack(bounds, axis=1), axis=1)
    return Night(dsn, inv, truth, b0, keys, inv.luminaire_rated_w / 0.92 + 0.5, level_only,
                 outage, before_late, tenant_before_late, settled)
