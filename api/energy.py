"""Energy reports per luminaire, group, municipality and supply point, read from the energy
job's rollups (energy_interval, energy_supply_interval, energy_tenant_interval, energy_day),
each bucket against the baseline (full power from dusk to dawn, or the municipality's previous
regime as a share of it) with euros and CO2 from the tenant's factors; the grid operator's view of
every supply point and its settlement day."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from psycopg.rows import dict_row

from api import energy_report as rep
from api.deps import Conn, GridScope, TenantScope
from api.problems import not_found
from api.settlement import day_bounds, settlement_rows

# Sub-day buckets of luminaires (one or a group): their 15-minute intervals, summed per interval
# first, then into buckets of the tenant's time zone (one time zone conversion per interval, not
# per row).
LUMINAIRE_BUCKETS = """
WITH q AS (
    SELECT e.bucket, sum(e.energy_wh) AS e, sum(e.measured_wh) AS m, sum(e.estimated_wh) AS x,
           sum(e.default_wh) AS d, count(*) FILTER (WHERE e.source = 0) AS mc,
           count(*) FILTER (WHERE e.source > 0) AS ec
    FROM energy_interval e
    JOIN controllers c ON c.key = e.controller_key
    JOIN luminaires l ON l.controller_id = c.id AND l.idx = e.luminaire
    WHERE c.tenant_id = %(tenant)s AND e.bucket >= %(start)s AND e.bucket < %(end)s AND {which}
    GROUP BY e.bucket
)
SELECT time_bucket(%(width)s::interval, bucket, %(tz)s) AS start, sum(e)::float8, sum(m)::float8,
       sum(x)::float8, sum(d)::float8, sum(mc), sum(ec), max(bucket) + interval '15 minutes'
FROM q GROUP BY 1 ORDER BY 1
"""

# Sub-day buckets of a municipality: the energy job's tenant intervals (every luminaire of the
# tenant, migration 0025), one row per 15 minutes.
TENANT_BUCKETS = """
SELECT time_bucket(%(width)s::interval, bucket, %(tz)s) AS start, sum(energy_wh)::float8,
       sum(measured_wh)::float8, sum(estimated_wh)::float8, sum(default_wh)::float8,
       sum(measured_cells), sum(estimated_cells), max(bucket) + interval '15 minutes'
FROM energy_tenant_interval
WHERE tenant_id = %(tenant)s AND bucket >= %(start)s AND bucket < %(end)s
GROUP BY 1 ORDER BY 1
"""

# Sub-day buckets of a supply point: its 15-minute intervals, the same way; counts only where
# every interval has them (rows from before migration 0018 do not).
SUPPLY_BUCKETS = """
WITH q AS (
    SELECT s.bucket, sum(s.energy_wh) AS e, sum(s.measured_wh) AS m, sum(s.estimated_wh) AS x,
           sum(s.default_wh) AS d, sum(s.measured_cells) AS mc, sum(s.estimated_cells) AS ec,
           count(s.measured_cells) = count(*) AND count(s.estimated_cells) = count(*) AS known
    FROM energy_supply_interval s JOIN supply_points p ON p.ean = s.ean
    WHERE p.tenant_id = %(tenant)s AND {which} AND s.bucket >= %(start)s AND s.bucket < %(end)s
    GROUP BY s.bucket
)
SELECT time_bucket(%(width)s::interval, bucket, %(tz)s) AS start, sum(e)::float8, sum(m)::float8,
       sum(x)::float8, sum(d)::float8, CASE WHEN bool_and(known) THEN sum(mc) END,
       CASE WHEN bool_and(known) THEN sum(ec) END, max(bucket) + interval '15 minutes'
FROM q GROUP BY 1 ORDER BY 1
"""

# Day and month buckets of a group, tenant or supply point: the local days the job keeps, with
# their baseline and the factors it used.
DAY_BUCKETS = """
SELECT CASE WHEN %(month)s THEN date_trunc('month', day)::date ELSE day END AS d,
       sum(energy_wh)::float8, sum(measured_wh)::float8, sum(estimated_wh)::float8,
       sum(default_wh)::float8,
       CASE WHEN count(measured_cells) = count(*) THEN sum(measured_cells) END,
       CASE WHEN count(estimated_cells) = count(*) THEN sum(estimated_cells) END,
       sum(baseline_wh)::float8,
       CASE WHEN count(tariff_eur_kwh) = count(*) THEN sum(energy_wh * tariff_eur_kwh) / 1e3 END,
       CASE WHEN count(emission_g_kwh) = count(*) THEN sum(energy_wh * emission_g_kwh) / 1e6 END,
       CASE WHEN count(savings_eur) = count(*) THEN sum(savings_eur) END,
       CASE WHEN count(savings_co2_kg) = count(*) THEN sum(savings_co2_kg) END
FROM energy_day
WHERE tenant_id = %(tenant)s AND scope = %(scope)s AND key = %(key)s
  AND day >= %(first)s AND day <= %(last)s
GROUP BY 1 ORDER BY 1
"""

# The luminaires a baseline covers: their full-level input power and where they stand.
FLEET = """
SELECT sum(CASE WHEN l.rated_power_w > 0 THEN l.rated_power_w / %(eff)s + %(standby)s ELSE 0 END)::float8,
       avg(coalesce(l.lat, c.lat))::float8, avg(coalesce(l.lon, c.lon))::float8
FROM luminaires l JOIN controllers c ON c.id = l.controller_id
LEFT JOIN cabinets cab ON cab.id = c.cabinet_id
WHERE l.tenant_id = %(tenant)s AND {which}
"""

FACTORS = """
SELECT kind, valid_from, value, basis, year, source FROM energy_factors
WHERE tenant_id = %s ORDER BY kind, valid_from
"""
BASELINE = "SELECT regime, share FROM energy_baselines WHERE tenant_id = %s"
ENERGY_CURSOR = "SELECT position FROM job_cursors WHERE job = 'energy'"  # booked up to here
TIMEZONE = "SELECT timezone FROM tenants WHERE id = %s"


async def _rows(conn: Conn, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    return await (await conn.execute(sql, params)).fetchall()


async def _timezone(conn: Conn, tenant: str) -> str:
    row = await (await conn.execute(TIMEZONE, (tenant,))).fetchone()
    return str(row[0]) if row is not None else "UTC"


@dataclass(frozen=True)
class Scope:
    """What a report sums: its luminaires (for the baseline), the query of its sub-day buckets
    and its energy_day scope."""

    tenant: str
    lum_which: str  # on luminaires l, controllers c, cabinets cab
    sub_day: str  # the query of 15-minute and hourly buckets
    day_scope: tuple[str, str] | None  # (scope, key) in energy_day; None: sum intervals
    params: dict[str, Any]


async def _report(conn: Conn, s: Scope, start: datetime, end: datetime,
                  bucket: rep.BucketName | None) -> dict[str, Any]:
    tz = await _timezone(conn, s.tenant)
    p = rep.period(start, end, tz, bucket)
    factors: dict[str, list[rep.Factor]] = {"tariff": [], "emission": []}
    for kind, since, value, basis, year, source in await (
            await conn.execute(FACTORS, (s.tenant,))).fetchall():
        factors[kind].append(rep.Factor(since, float(value), basis, int(year), source))
    found = await (await conn.execute(BASELINE, (s.tenant,))).fetchone()
    regime, share = (str(found[0]), float(found[1])) if found else ("full_dusk_to_dawn", 1.0)
    params = {**s.params, "tenant": s.tenant, "tz": tz, "start": p.start, "end": p.end}
    zone = ZoneInfo(tz)
    rows: list[dict[str, Any]] = []
    if p.bucket in ("day", "month") and s.day_scope is not None:
        first, last = p.days
        for (d, energy, meas, est, dflt, n_meas, n_est, base, cost, co2, s_eur,
             s_co2) in await _rows(conn, DAY_BUCKETS, {
                **params, "month": p.bucket == "month", "scope": s.day_scope[0],
                "key": s.day_scope[1], "first": first, "last": last}):
            at = max(datetime.combine(d, time(0), zone).astimezone(UTC), p.start)
            row = rep.bucket_row(at, rep.bucket_end(p, at), energy, meas, est, dflt,
                                 _int(n_meas), _int(n_est), base, None, None)
            row.update(cost_eur=cost, co2_kg=co2, savings_eur=s_eur, savings_co2_kg=s_co2)
            rows.append(row)
    else:
        width = {"15min": "15 minutes", "hour": "1 hour", "day": "1 day", "month": "1 month"}[p.bucket]
        found_rows = await _rows(conn, s.sub_day, {**params, "width": width})
        fleet = await (await conn.execute(FLEET.format(which=s.lum_which), {
            **params, "eff": rep.DRIVER_EFFICIENCY, "standby": rep.STANDBY_W})).fetchone()
        starts = [r[0] for r in found_rows]
        ends = [rep.bucket_end(p, max(t, p.start)) for t in starts]
        baselines: list[float | None] = [None] * len(starts)
        if fleet is not None and fleet[1] is not None and fleet[2] is not None and starts:
            lo = np.array([max(t, p.start).timestamp() for t in starts])
            newest_end = max(r[7] for r in found_rows)
            cursor = await (await conn.execute(ENERGY_CURSOR)).fetchone()
            hi = rep.baseline_until(ends, rep.booked_until(
                newest_end, None if cursor is None else cursor[0]))
            baselines = [float(x) for x in rep.night_baseline_wh(
                lo, hi, float(fleet[0] or 0.0), float(fleet[1]), float(fleet[2]), share)]
        for (t, energy, meas, est, dflt, n_meas, n_est, _), e, base in zip(
                found_rows, ends, baselines, strict=True):
            day = t.astimezone(zone).date()
            tariff = rep.in_force(factors["tariff"], day)
            emission = rep.in_force(factors["emission"], day)
            rows.append(rep.bucket_row(max(t, p.start), e, energy, meas, est, dflt, _int(n_meas),
                                       _int(n_est), base, None if tariff is None else tariff.value,
                                       None if emission is None else emission.value))
    last_day = p.days[1]
    return rep.report(p, rows, regime, rep.in_force(factors["tariff"], last_day),
                      rep.in_force(factors["emission"], last_day))


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


async def _exists(conn: Conn, sql: str, params: tuple[Any, ...], what: str) -> None:
    if await (await conn.execute(sql, params)).fetchone() is None:
        raise not_found(what)


async def for_luminaire(conn: Conn, scope: TenantScope, luminaire_id: int, start: datetime,
                        end: datetime, bucket: rep.BucketName | None) -> dict[str, Any]:
    await _exists(conn, "SELECT 1 FROM luminaires WHERE tenant_id = %s AND id = %s",
                  (scope.tenant, luminaire_id), "luminaire")
    which = "l.id = %(id)s"
    return await _report(conn, Scope(scope.tenant, which, LUMINAIRE_BUCKETS.format(which=which),
                                     None, {"id": luminaire_id}), start, end, bucket)


async def for_group(conn: Conn, scope: TenantScope, group_id: int, start: datetime, end: datetime,
                    bucket: rep.BucketName | None) -> dict[str, Any]:
    await _exists(conn, "SELECT 1 FROM groups WHERE tenant_id = %s AND id = %s",
                  (scope.tenant, group_id), "group")
    which = "l.id IN (SELECT luminaire_id FROM group_members WHERE group_id = %(id)s)"
    return await _report(conn, Scope(scope.tenant, which, LUMINAIRE_BUCKETS.format(which=which),
                                     ("group", str(group_id)), {"id": group_id}), start, end, bucket)


async def for_municipality(conn: Conn, scope: TenantScope, start: datetime, end: datetime,
                           bucket: rep.BucketName | None) -> dict[str, Any]:
    """Every luminaire of the tenant: sub-day buckets from the job's tenant intervals, day and
    month buckets from its municipality days."""
    return await _report(conn, Scope(scope.tenant, "true", TENANT_BUCKETS,
                                     ("tenant", scope.tenant), {}), start, end, bucket)


def _supply_scope(tenant: str, ean: str) -> Scope:
    return Scope(tenant, "cab.supply_point_ean = %(ean)s",
                 SUPPLY_BUCKETS.format(which="s.ean = %(ean)s"), ("supply_point", ean),
                 {"ean": ean})


async def for_supply_point(conn: Conn, scope: TenantScope, ean: str, start: datetime,
                           end: datetime, bucket: rep.BucketName | None) -> dict[str, Any]:
    await _exists(conn, "SELECT 1 FROM supply_points WHERE tenant_id = %s AND ean = %s",
                  (scope.tenant, ean), "supply point")
    return {"ean": ean, **await _report(conn, _supply_scope(scope.tenant, ean), start, end, bucket)}


# ----------------------------------------------------------------- the grid operator

async def grid_supply_points(conn: Conn, grid: GridScope, after: str | None,
                             limit: int) -> list[dict[str, Any]]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT p.ean, p.tenant_id AS tenant, p.name, p.contracted_kw FROM"
                          " supply_points p WHERE (%s::text IS NULL OR p.ean > %s) ORDER BY p.ean"
                          " LIMIT %s", (after, after, limit))
        return await cur.fetchall()


async def _supply_tz(conn: Conn, ean: str) -> str:
    row = await (await conn.execute("SELECT t.timezone FROM supply_points p JOIN tenants t ON"
                                    " t.id = p.tenant_id WHERE p.ean = %s", (ean,))).fetchone()
    if row is None:
        raise not_found("supply point")
    return str(row[0])


async def grid_energy(conn: Conn, grid: GridScope, ean: str, start: datetime, end: datetime,
                      bucket: rep.BucketName | None) -> dict[str, Any]:
    """A supply point's report for the grid operator, in its tenant's time zone and factors."""
    row = await (await conn.execute("SELECT tenant_id FROM supply_points WHERE ean = %s",
                                    (ean,))).fetchone()
    if row is None:
        raise not_found("supply point")
    return {"ean": ean, **await _report(conn, _supply_scope(str(row[0]), ean), start, end, bucket)}


async def settlement(conn: Conn, grid: GridScope, ean: str, day: date) -> dict[str, Any]:
    """One local day of one supply point in 15-minute intervals (92, 96 or 100), each measured,
    estimated or missing: the body of the daily settlement file."""
    tz = await _supply_tz(conn, ean)
    start, end = day_bounds(day, tz)
    rows = await (await conn.execute(
        "SELECT bucket, energy_wh, estimated_wh + default_wh > 0 FROM energy_supply_interval"
        " WHERE ean = %s AND bucket >= %s AND bucket < %s", (ean, start, end))).fetchall()
    intervals = settlement_rows(day, tz, {r[0]: (float(r[1]), bool(r[2])) for r in rows})
    measured = sum(1 for i in intervals if i["quality"] == "measured")
    return {"ean": ean, "day": day, "timezone": tz, "version": 1, "intervals": intervals,
            "energy_wh": sum(float(str(i["energy_wh"])) for i in intervals if i["energy_wh"] is not None),
            "complete": measured == len(intervals)}
