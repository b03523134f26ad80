"""Live state, telemetry series, sensor readings and the CSV export of a tenant's luminaires."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from api.deps import Conn, TenantScope
from api.problems import not_found
from api.timeseries import TimeRange

LIVE = """
SELECT l.id, l.controller_id, l.idx, c.online, c.last_seen, s.time, s.level, s.status, s.power_w,
       s.energy_wh, s.voltage_v, s.power_factor, s.driver_temp_c, s.failure
FROM luminaires l JOIN controllers c ON c.id = l.controller_id
LEFT JOIN luminaire_state s ON s.controller_key = c.key AND s.luminaire = l.idx
WHERE l.tenant_id = %s
"""


async def _rows(conn: Conn, sql: str, params: tuple[Any, ...] | dict[str, Any]) -> list[dict[str, Any]]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(sql, params)
        return await cur.fetchall()


async def live_one(conn: Conn, scope: TenantScope, luminaire_id: int) -> dict[str, Any]:
    rows = await _rows(conn, LIVE + " AND l.id = %s", (scope.tenant, luminaire_id))
    if not rows:
        raise not_found("luminaire")
    return rows[0]


async def live_page(conn: Conn, scope: TenantScope, after: int | None, limit: int,
                    online: bool | None, failing: bool | None,
                    controller: str | None) -> list[dict[str, Any]]:
    return await _rows(
        conn, LIVE + " AND (%s::bigint IS NULL OR l.id > %s) AND (%s::bool IS NULL OR c.online = %s)"
        " AND (%s::bool IS NULL OR (coalesce(s.failure, 0) <> 0) = %s)"
        " AND (%s::text IS NULL OR l.controller_id = %s) ORDER BY l.id LIMIT %s",
        (scope.tenant, after, after, online, online, failing, failing, controller, controller, limit))


CHANGED = """
SELECT l.id, l.controller_id, l.idx, c.online, c.last_seen, s.time, s.level, s.status, s.power_w,
       s.energy_wh, s.voltage_v, s.power_factor, s.driver_temp_c, s.failure
FROM luminaires l JOIN controllers c ON c.id = l.controller_id
LEFT JOIN luminaire_state s ON s.controller_key = c.key AND s.luminaire = l.idx
WHERE l.tenant_id = %(tenant)s AND (s.changed_at > %(since)s OR c.online_changed_at > %(since)s)
  AND (%(after)s::bigint IS NULL OR l.id > %(after)s)
ORDER BY l.id LIMIT %(limit)s
"""

CHANGE_OVERLAP = timedelta(seconds=5)
"""A change is stamped when written, seen when committed: the next cursor starts this far back
so a transaction committing late is still read (a state read twice is harmless)."""


async def changed_page(conn: Conn, scope: TenantScope, since: datetime, after: int | None,
                       limit: int) -> tuple[list[dict[str, Any]], datetime]:
    """The luminaires whose state or controller link changed after `since`, and the
    `changed_since` of the next sweep (taken before reading, less the overlap)."""
    row = await (await conn.execute("SELECT clock_timestamp()")).fetchone()
    assert row is not None
    items = await _rows(conn, CHANGED, {"tenant": scope.tenant, "since": since, "after": after,
                                        "limit": limit})
    return items, row[0] - CHANGE_OVERLAP


async def _luminaire_key(conn: Conn, scope: TenantScope, luminaire_id: int) -> tuple[int, int]:
    row = await (await conn.execute(
        "SELECT c.key, l.idx FROM luminaires l JOIN controllers c ON c.id = l.controller_id"
        " WHERE l.tenant_id = %s AND l.id = %s", (scope.tenant, luminaire_id))).fetchone()
    if row is None:
        raise not_found("luminaire")
    return int(row[0]), int(row[1])


SERIES = """
SELECT time_bucket(%s, time) AS bucket, avg(level)::float8 AS level, avg(power_w)::float8 AS power_w,
       max(power_w)::float8 AS power_max_w, (max(energy_wh) - min(energy_wh))::float8 AS energy_wh,
       avg(voltage_v)::float8 AS voltage_v, avg(driver_temp_c)::float8 AS driver_temp_c,
       bit_or(failure) AS failure, count(*)::int AS samples
FROM luminaire_telemetry
WHERE controller_key = %s AND luminaire = %s AND time >= %s AND time < %s
GROUP BY bucket ORDER BY bucket
"""


# The points as one JSON array built by PostgreSQL (a week is ~700 buckets: decoding them into
# Python rows and encoding them again cost the API worker ~10 ms of CPU a request). Buckets are
# whole seconds in UTC, written as a pydantic response_model writes them ("...T10:15:00Z").
SERIES_JSON = """
SELECT coalesce(json_agg(json_build_object(
           'bucket', to_char(p.bucket AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
           'level', p.level, 'power_w', p.power_w, 'power_max_w', p.power_max_w,
           'energy_wh', p.energy_wh, 'voltage_v', p.voltage_v, 'driver_temp_c', p.driver_temp_c,
           'failure', p.failure, 'samples', p.samples) ORDER BY p.bucket), '[]')::text
FROM (""" + SERIES + """) p
"""


async def series_json(conn: Conn, scope: TenantScope, luminaire_id: int, span: TimeRange) -> str:
    """The series' points as a JSON array (SeriesPoint's shape)."""
    key, idx = await _luminaire_key(conn, scope, luminaire_id)
    row = await (await conn.execute(SERIES_JSON, (span.bucket, key, idx, span.start, span.end))
                 ).fetchone()
    assert row is not None
    return str(row[0])


SENSORS = """
SELECT time_bucket(%s, time) AS bucket, sensor, quantity, avg(value)::float8 AS mean,
       min(value)::float8 AS min, max(value)::float8 AS max, count(*)::int AS samples
FROM sensor_readings
WHERE controller_key = %s AND time >= %s AND time < %s AND (%s::int2 IS NULL OR quantity = %s)
GROUP BY bucket, sensor, quantity ORDER BY bucket, sensor, quantity
"""


async def sensor_series(conn: Conn, scope: TenantScope, controller_id: str, span: TimeRange,
                        quantity: int | None) -> list[dict[str, Any]]:
    row = await (await conn.execute("SELECT key FROM controllers WHERE tenant_id = %s AND id = %s",
                                    (scope.tenant, controller_id))).fetchone()
    if row is None:
        raise not_found("controller")
    return await _rows(conn, SENSORS, (span.bucket, row[0], span.start, span.end, quantity, quantity))


EXPORT = """
COPY (
    SELECT t.time, c.id AS controller_id, t.luminaire, t.level, t.status, t.power_w, t.energy_wh,
           t.voltage_v, t.current_a, t.power_factor, t.driver_temp_c, t.ambient_lux, t.presence,
           t.failure
    FROM luminaire_telemetry t JOIN controllers c ON c.key = t.controller_key
    WHERE c.tenant_id = {tenant} AND ({controller}::text IS NULL OR c.id = {controller})
      AND t.time >= {start} AND t.time < {end}
    ORDER BY t.time, c.id, t.luminaire
) TO STDOUT WITH (FORMAT csv, HEADER)
"""


async def export_csv(pool: AsyncConnectionPool[Conn], tenant: str, controller: str | None,
                     start: datetime, end: datetime) -> AsyncIterator[bytes]:
    """Every reading of the range as CSV, streamed from COPY: no cap, constant memory."""
    from psycopg import sql

    statement = sql.SQL(EXPORT).format(tenant=sql.Literal(tenant), controller=sql.Literal(controller),
                                       start=sql.Literal(start), end=sql.Literal(end))
    async with pool.connection() as conn, conn.cursor() as cur:
        async with cur.copy(statement) as copy:
            async for chunk in copy:
                yield bytes(chunk)
