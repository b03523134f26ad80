"""A night of readings for tenant A of the API tests' world, accounted by the real energy and
settlement jobs run as the jobs role: D4i counters every five minutes from 16:00 to 07:00 UTC
(full until 23:00, half until 05:00, full until dawn), one controller silent for 90 minutes
(estimated intervals), the tenant's tariff and emission factor set before the jobs run."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import psycopg
from psycopg.conninfo import conninfo_to_dict

from analytics.energy_job import EnergyJob
from analytics.runner import Scheduled, run_once
from analytics.settlement_job import SettlementJob
from luciole.db_roles import DbService
from tests.api.api_world import TenantAssets

NIGHT = datetime(2026, 11, 20, 16, 0, tzinfo=UTC)  # local day 2026-11-20 in Europe/Brussels
DAY = date(2026, 11, 20)
HOURS = 15
SILENT = (NIGHT + timedelta(hours=6), NIGHT + timedelta(hours=7, minutes=30))  # 22:00-23:30
TARIFF = 0.31  # EUR/kWh, set for the test
EMISSION = 167.49  # g CO2e/kWh: AIB European Residual Mixes 2023, Belgium


def power_at(t: datetime) -> tuple[int, float]:
    """(level, input power W) of every luminaire of the night at t."""
    hour = (t - NIGHT).total_seconds() / 3600.0
    if 7.0 <= hour < 13.0:  # 23:00-05:00 UTC: half level
        return 127, 22.0
    return 254, 43.9


@dataclass(frozen=True)
class EnergyNight:
    ean: str
    day: date
    jobs_dsn: str


def seed_night(owner_dsn: str, assets: TenantAssets) -> int:
    """Write the night's readings of A's luminaires and its factors; the number of readings."""
    rows = []
    with psycopg.connect(owner_dsn, autocommit=True) as conn:
        keys = dict(conn.execute("SELECT id, key FROM controllers WHERE id = ANY(%s)",
                                 (assets.controllers,)).fetchall())
        for n, ctl in enumerate(assets.controllers):
            for idx in range(2):
                energy = 1000.0
                t = NIGHT
                seq = 0
                while t <= NIGHT + timedelta(hours=HOURS):
                    level, power = power_at(t)
                    silent = n == 1 and SILENT[0] < t < SILENT[1]
                    if not silent:
                        rows.append((t, keys[ctl], idx, level, 4, power, energy, 231.0, 0.19, 0.95,
                                     35.0, 0.0, 0, 0, 1, seq))
                    seq += 1
                    energy += power * 5.0 / 60.0
                    t += timedelta(minutes=5)
        with conn.cursor().copy(
                "COPY luminaire_telemetry (time, controller_key, luminaire, level, status, power_w,"
                " energy_wh, voltage_v, current_a, power_factor, driver_temp_c, ambient_lux,"
                " presence, failure, boot_id, seq) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        conn.execute("INSERT INTO energy_factors (tenant_id, kind, valid_from, value, unit, basis,"
                     " year, source) VALUES (%s, 'tariff', '2026-01-01', %s, 'EUR/kWh',"
                     " 'contract', 2026, 'test contract'), (%s, 'emission', '2024-01-01', %s,"
                     " 'g CO2e/kWh', 'residual mix', 2023, 'AIB European Residual Mixes 2023')",
                     (assets.tenant, TARIFF, assets.tenant, EMISSION))
    return len(rows)


def run_jobs(jobs_dsn: str) -> None:
    """The energy job, then the settlement job, until each has nothing left to do."""
    with psycopg.connect(jobs_dsn, autocommit=True) as conn:
        for job, window in ((EnergyJob(), 6 * 3600.0), (SettlementJob(), 40 * 86400.0)):
            item = Scheduled(job, every_s=0.0, settle_s=0.0, max_window_s=window)
            while run_once(conn, item, ignore_schedule=True) is not None:
                pass


def jobs_dsn_of(stack: object, owner_dsn: str) -> str:
    dbname = conninfo_to_dict(owner_dsn)["dbname"]
    return stack.endpoints.service_dsn(DbService.JOBS, str(dbname))  # type: ignore[attr-defined]


def energy_night(stack: object, owner_dsn: str, assets: TenantAssets) -> EnergyNight:
    seed_night(owner_dsn, assets)
    dsn = jobs_dsn_of(stack, owner_dsn)
    run_jobs(dsn)
    return EnergyNight(assets.ean, DAY, dsn)
