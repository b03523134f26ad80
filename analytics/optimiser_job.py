"""The optimiser on the job runner: once a local day, a proposed calendar for the coming nights of
every group the energy manager has described (`group_lighting`), with its traffic learned from the
presence readings of the group's controllers; proposals go to `schedule_proposals`."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import psycopg

from analytics.fault_job import PassResult
from analytics.optimiser import Constraints, Group, PresenceRule, Proposal, propose
from analytics.photometry import Photometry
from analytics.traffic import learn_profile, local_hour_and_daytype
from wire.records import Quantity

log = logging.getLogger(__name__)

_GROUPS_SELECT = """
SELECT g.id, g.tenant_id, t.timezone, gl.rated_class, gl.design_at_full, gl.maintenance_factor,
       gl.lm_per_w, gl.clo, gl.max_steps, gl.min_step_min, gl.presence_hold_s,
       gl.presence_adaptive, count(l.id), coalesce(avg(l.rated_power_w), 0),
       avg(coalesce(l.lat, c.lat)), avg(coalesce(l.lon, c.lon)), array_agg(DISTINCT c.key)
FROM group_lighting gl
JOIN groups g ON g.id = gl.group_id
JOIN tenants t ON t.id = g.tenant_id
JOIN group_members m ON m.group_id = g.id
JOIN luminaires l ON l.id = m.luminaire_id
JOIN controllers c ON c.id = l.controller_id
WHERE c.status <> 'retired'
"""
_GROUPS = _GROUPS_SELECT + """GROUP BY g.id, t.timezone, gl.group_id
ORDER BY g.id
"""
GROUP_BY_ID = _GROUPS_SELECT + """AND g.tenant_id = %s AND g.id = %s
GROUP BY g.id, t.timezone, gl.group_id
"""
"""One described group of a tenant with its luminaires in service (no row: not described, or no
luminaire in service); parameters (tenant, group id)."""
PRESENCE = """
SELECT controller_key, sensor, extract(epoch FROM time)::float8, value
FROM sensor_readings
WHERE quantity = %s AND controller_key = ANY(%s) AND time > %s AND time <= %s
ORDER BY controller_key, sensor, time
"""
_DONE = "SELECT 1 FROM schedule_proposals WHERE group_id = %s AND first_night = %s"
_INSERT = """
INSERT INTO schedule_proposals (tenant_id, group_id, first_night, last_night, calendar,
    predicted_kwh, baseline_kwh, nights, inputs, created_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, coalesce(%s, now()))
ON CONFLICT (group_id, first_night) DO NOTHING
"""
DEFAULT_RATED_W = 60.0


@dataclass(frozen=True)
class GroupRow:
    group: Group
    tenant: str
    controllers: list[int]
    constraints: Constraints


def presence_rates(rows: list[tuple]) -> tuple[np.ndarray, np.ndarray]:
    """Epoch seconds and detections per hour of presence readings sorted by (controller, sensor,
    time): each count over the time since that sensor's previous reading (its first reading is
    used only as a start)."""
    if not rows:
        return np.zeros(0), np.zeros(0)
    a = np.array(rows, dtype=np.float64)
    same = (a[1:, 0] == a[:-1, 0]) & (a[1:, 1] == a[:-1, 1])
    gap = np.diff(a[:, 2])
    ok = same & (gap > 0) & (gap <= 3600)
    t = a[1:, 2][ok]
    return t, a[1:, 3][ok] / gap[ok] * 3600.0


def presence_params(row: tuple, end: datetime, history_days: int) -> tuple:
    """Parameters of PRESENCE for a row of GROUP_BY_ID (or the job's query): the group's
    controllers' presence counts over `history_days` before `end`."""
    return (int(Quantity.PRESENCE_COUNT), list(row[16]), end - timedelta(days=history_days), end)


def group_row(row: tuple, readings: list[tuple]) -> tuple[GroupRow, int]:
    """A described group as the optimiser sees it, from its row and its presence readings (pure:
    the job and the API's on-demand proposal both build groups here); with the readings used."""
    (gid, tenant, tz, klass, design, mf, lmw, clo, max_steps, min_step, hold, adaptive,
     count, rated_w, lat, lon, keys) = row
    t, rate = presence_rates(readings)
    if t.size:
        hour, daytype = local_hour_and_daytype(t, tz)
        profile = learn_profile(hour, daytype, rate, 3600.0)
        share, peak = profile.share, profile.peak_per_h
    else:  # nothing learned: traffic at its peak all night, the rated class throughout
        share, peak = np.ones((2, 24)), 0.0
    photometry = Photometry(rated_w=float(rated_w) or DEFAULT_RATED_W,
                            lm_per_w=float(lmw), design_at_full=float(design),
                            maintenance_factor=float(mf), clo=bool(clo))
    group = Group(id=str(gid), luminaires=int(count), rated_class=klass,
                  photometry=photometry, traffic=share, peak_per_h=peak,
                  presence=(PresenceRule(int(hold), bool(adaptive))
                            if hold is not None else None),
                  lat=float(lat) if lat is not None else 50.85,
                  lon=float(lon) if lon is not None else 4.35, timezone=tz)
    constraints = Constraints(max_steps=int(max_steps), min_step_min=int(min_step))
    return GroupRow(group, tenant, list(keys), constraints), int(t.size)


def first_night(end: datetime, timezone: str) -> date:
    """The first night a pass ending at `end` plans: the local date of `end`."""
    return end.astimezone(ZoneInfo(timezone)).date()


def proposal_inputs(row: GroupRow, readings: int) -> dict[str, object]:
    """What a proposal was computed from (stored beside it, served with it)."""
    g = row.group
    return {
        "rated_class": g.rated_class, "luminaires": g.luminaires,
        "presence_readings": readings, "traffic_share": np.round(g.traffic, 3).tolist(),
        "peak_detections_per_h": round(g.peak_per_h, 2),
        "photometry": {"rated_w": g.photometry.rated_w,
                       "design_at_full": g.photometry.design_at_full,
                       "maintenance_factor": g.photometry.maintenance_factor,
                       "lm_per_w": g.photometry.lm_per_w, "clo": g.photometry.clo},
        "max_steps": row.constraints.max_steps,
        "min_step_min": row.constraints.min_step_min,
    }


_ANY_GROUP = "SELECT EXISTS (SELECT 1 FROM group_lighting)"


class OptimiserJob:
    """Proposes, per described group, a calendar for `nights` evenings from the local date the
    pass ends on, from `history_days` of presence readings.

    `clock`: now, when not the database's (a demo's simulated clock, so that the nights planned
    are those its fleet and agents run). Until a group is described there is nothing to plan: the
    job neither starts its cursor nor advances it, so the first pass after the first description
    plans at once, not at the next hour."""

    name = "optimiser"

    def __init__(self, nights: int = 7, history_days: int = 28,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.nights = nights
        self.history_days = history_days
        self.clock = clock

    def _hour(self, conn: psycopg.Connection) -> datetime | None:
        if not conn.execute(_ANY_GROUP).fetchone()[0]:  # type: ignore[index]
            return None
        if self.clock is not None:
            return self.clock().replace(minute=0, second=0, microsecond=0)
        return conn.execute("SELECT date_trunc('hour', now())").fetchone()[0]  # type: ignore[index]

    def newest(self, conn: psycopg.Connection) -> datetime | None:
        """The start of the current hour: a pass per hour at most, and `--once` ends."""
        return self._hour(conn)

    def oldest(self, conn: psycopg.Connection) -> datetime | None:
        hour = self._hour(conn)
        return None if hour is None else hour - timedelta(days=1)

    def _groups(self, conn: psycopg.Connection, end: datetime) -> list[tuple[GroupRow, int]]:
        out = []
        for row in conn.execute(_GROUPS).fetchall():
            readings = conn.execute(PRESENCE, presence_params(row, end, self.history_days)
                                    ).fetchall()
            out.append(group_row(row, readings))
        return out

    def run_pass(self, conn: psycopg.Connection, start: datetime, end: datetime) -> PassResult:
        """Propose for the nights from the local date of `end`, for each group not yet proposed
        for that first night; the caller owns the transaction."""
        began = time.perf_counter()
        written = 0
        rows = self._groups(conn, end)
        for i, (row, readings) in enumerate(rows, 1):
            first = first_night(end, row.group.timezone)
            if conn.execute(_DONE, (int(row.group.id), first)).fetchone():
                continue
            proposal = propose([row.group], first, self.nights, row.constraints)[0][0]
            written += self._write(conn, row, proposal, first, readings)
            if i % 100 == 0:
                rate = i / max(time.perf_counter() - began, 1e-9)
                log.info("job=optimiser groups=%d/%d rate=%.1f/s eta_s=%.0f", i, len(rows), rate,
                         (len(rows) - i) / rate)
        log.info("job=optimiser groups=%d proposals=%d duration_s=%.2f", len(rows), written,
                 time.perf_counter() - began)
        return PassResult(records=written, raised=0, cleared=0)

    def _write(self, conn: psycopg.Connection, row: GroupRow, proposal: Proposal, first: date,
               readings: int) -> int:
        g = row.group
        inputs = proposal_inputs(row, readings)
        cur = conn.execute(_INSERT, (
            row.tenant, int(g.id), first, first + timedelta(days=self.nights - 1),
            proposal.calendar.model_dump_json(), proposal.energy_kwh, proposal.baseline_kwh,
            json.dumps(proposal.explanations()), json.dumps(inputs),
            None if self.clock is None else self.clock()))  # stamped on the job's clock
        return cur.rowcount
