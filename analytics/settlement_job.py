"""The settlement export: reads one supply point's local day from the database, builds its four
files (analytics.settlement) and stores each as a new version when its content changed; the job
does so for every day whose energy was (re)computed since its files were last made."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import psycopg

from analytics import settlement as st
from analytics.energy_days import local_day
from analytics.energy_intervals import CELL_EQUIVALENT, SOURCE_NAMES
from analytics.fault_job import PassResult
from analytics.kernels import STANDBY_W

log = logging.getLogger(__name__)

_TZ = """
SELECT t.timezone FROM supply_points sp JOIN tenants t ON t.id = sp.tenant_id WHERE sp.ean = %s
"""
_PROFILE = """
SELECT bucket, energy_wh, measured_wh, estimated_wh, default_wh, uncertainty_wh,
       luminaires_expected, luminaires_reporting, burning_s, mean_level, flags, meter_wh,
       difference_wh
FROM energy_supply_interval WHERE ean = %s AND bucket >= %s AND bucket < %s ORDER BY bucket
"""
_INVENTORY = f"""
SELECT c.id || '/' || l.idx, c.id, l.idx, l.gtin, l.serial, l.model, l.rated_power_w,
       {STANDBY_W}::float8, cab.id, cab.switched_supply, coalesce(l.lat, c.lat),
       coalesce(l.lon, c.lon), coalesce(l.installed_at, c.created_at),
       CASE WHEN c.status = 'retired' THEN c.last_seen END,
       sum(e.energy_wh), sum(e.samples), bit_or(e.flags), max(e.source)
FROM luminaires l JOIN controllers c ON c.id = l.controller_id
JOIN cabinets cab ON cab.id = c.cabinet_id
LEFT JOIN energy_interval e ON e.controller_key = c.key AND e.luminaire = l.idx
 AND e.bucket >= %(lo)s AND e.bucket < %(hi)s
WHERE cab.supply_point_ean = %(ean)s
GROUP BY c.id, l.idx, l.gtin, l.serial, l.model, l.rated_power_w, cab.id, cab.switched_supply,
         l.lat, c.lat, l.lon, c.lon, l.installed_at, c.created_at, c.status, c.last_seen
ORDER BY c.id, l.idx
"""
# Level changes of the supply point's luminaires, with whether a command to the controller was
# acknowledged within 10 minutes before, and whether most of the cabinet changed to the same
# level within 5 minutes (the schedule).
_LEVELS = """
WITH r AS (
    SELECT t.time, c.id AS controller_id, c.key, cab.id AS cabinet, t.luminaire, t.level,
           lag(t.level) OVER (PARTITION BY t.controller_key, t.luminaire ORDER BY t.time, t.seq)
               AS before
    FROM luminaire_telemetry t JOIN controllers c ON c.key = t.controller_key
    JOIN cabinets cab ON cab.id = c.cabinet_id
    WHERE cab.supply_point_ean = %(ean)s AND t.time >= %(lo)s - interval '1 hour'
      AND t.time < %(hi)s
), ch AS (
    SELECT * FROM r WHERE before IS NOT NULL AND before <> level AND time >= %(lo)s
), size AS (
    SELECT cab.id AS cabinet, count(*) AS n FROM luminaires l
    JOIN controllers c ON c.id = l.controller_id JOIN cabinets cab ON cab.id = c.cabinet_id
    WHERE cab.supply_point_ean = %(ean)s GROUP BY 1
)
SELECT ch.time, ch.controller_id, ch.luminaire, ch.before, ch.level,
       EXISTS (SELECT 1 FROM commands cm JOIN command_acks a ON a.command_id = cm.id
               WHERE cm.controller_id = ch.controller_id AND a.status IN ('accepted', 'done')
                 AND a.time BETWEEN ch.time - interval '10 minutes' AND ch.time),
       (SELECT count(*) FROM ch o WHERE o.cabinet = ch.cabinet AND o.level = ch.level
          AND o.time BETWEEN ch.time - interval '5 minutes' AND ch.time + interval '5 minutes')
           * 2 > size.n
FROM ch JOIN size USING (cabinet)
ORDER BY ch.time, ch.controller_id, ch.luminaire
"""
_STATES = """
SELECT s.time, c.id, s.online, s.reason FROM controller_states s
JOIN controllers c ON c.key = s.controller_key JOIN cabinets cab ON cab.id = c.cabinet_id
WHERE cab.supply_point_ean = %(ean)s AND s.time >= %(lo)s AND s.time < %(hi)s
ORDER BY s.time, c.id
"""
_AGENT_EVENTS = """
SELECT e.time, c.id, e.luminaire, e.kind, e.severity FROM events e
JOIN controllers c ON c.key = e.controller_key JOIN cabinets cab ON cab.id = c.cabinet_id
WHERE cab.supply_point_ean = %(ean)s AND e.time >= %(lo)s AND e.time < %(hi)s
ORDER BY e.time, c.id
"""
# Faults of the supply point's devices open during the day, with the energy of their luminaires
# during the fault (within the day) and what their cabinet peers drew per rated watt.
_FAULTS = """
WITH f AS (
    SELECT f.*, coalesce(f.cabinet_id, c.cabinet_id) AS cab,
           greatest(f.raised_at, %(lo)s) AS a, least(coalesce(f.cleared_at, %(hi)s), %(hi)s) AS b
    FROM faults f LEFT JOIN controllers c ON c.id = f.controller_id
    JOIN cabinets cab ON cab.id = coalesce(f.cabinet_id, c.cabinet_id)
    WHERE cab.supply_point_ean = %(ean)s AND f.raised_at < %(hi)s
      AND (f.cleared_at IS NULL OR f.cleared_at >= %(lo)s)
), lum AS (  -- the luminaires a fault is about
    SELECT f.id, c.key, l.idx, coalesce(l.rated_power_w, 0) AS rated
    FROM f JOIN controllers c ON (c.id = f.controller_id OR (f.controller_id IS NULL AND
                                  c.cabinet_id = f.cabinet_id))
    JOIN luminaires l ON l.controller_id = c.id
    WHERE f.luminaire_idx IS NULL OR l.idx = f.luminaire_idx
)
SELECT f.id, f.kind, f.severity, f.controller_id, f.luminaire_idx, f.cab, f.raised_at,
       f.cleared_at, f.cause,
       (SELECT sum(e.energy_wh) FROM lum JOIN energy_interval e ON e.controller_key = lum.key
          AND e.luminaire = lum.idx AND e.bucket >= time_bucket('15 minutes', f.a)
          AND e.bucket < f.b WHERE lum.id = f.id),
       (SELECT sum(e.estimated_wh + e.default_wh) FROM lum JOIN energy_interval e
          ON e.controller_key = lum.key AND e.luminaire = lum.idx
          AND e.bucket >= time_bucket('15 minutes', f.a) AND e.bucket < f.b WHERE lum.id = f.id),
       (SELECT sum(rated) FROM lum WHERE lum.id = f.id)
         * (SELECT sum(e.energy_wh) / nullif(sum(l.rated_power_w), 0) * count(DISTINCT e.bucket)
                   / nullif(count(*), 0)
            FROM controllers c JOIN luminaires l ON l.controller_id = c.id
            JOIN energy_interval e ON e.controller_key = c.key AND e.luminaire = l.idx
            WHERE c.cabinet_id = f.cab AND e.bucket >= time_bucket('15 minutes', f.a)
              AND e.bucket < f.b
              AND NOT EXISTS (SELECT 1 FROM lum WHERE lum.id = f.id AND lum.key = c.key
                              AND lum.idx = l.idx))
FROM f ORDER BY f.raised_at, f.id
"""
_CURRENT = """
SELECT version, sha256 FROM settlement_files
WHERE ean = %s AND day = %s AND kind = %s AND superseded_at IS NULL
"""
_SUPERSEDE = """
UPDATE settlement_files SET superseded_at = now()
WHERE ean = %s AND day = %s AND kind = %s AND superseded_at IS NULL
"""
_STORE = """
INSERT INTO settlement_files (ean, day, kind, version, schema_id, rows, sha256, content)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
"""
_LATEST = """
SELECT kind, version, content FROM settlement_files
WHERE ean = %s AND day = %s AND superseded_at IS NULL ORDER BY kind
"""
# (ean, local day) whose supply intervals were computed after its files were last made, for
# days that have ended by `until` (data time).
_DUE = """
SELECT DISTINCT s.ean, (s.bucket AT TIME ZONE t.timezone)::date AS day, t.timezone
FROM energy_supply_interval s JOIN supply_points sp ON sp.ean = s.ean
JOIN tenants t ON t.id = sp.tenant_id
WHERE s.bucket > %(since)s AND s.bucket <= %(until)s
  AND s.computed_at > coalesce((SELECT max(f.created_at) FROM settlement_files f
                                WHERE f.ean = s.ean
                                  AND f.day = (s.bucket AT TIME ZONE t.timezone)::date),
                               '-infinity')
ORDER BY 2, 1
"""


@dataclass(frozen=True)
class Exported:
    """The files of one supply point and day after an export: kind -> (version, stored now)."""

    ean: str
    day: date
    versions: dict[str, tuple[int, bool]]


def build_files(conn: psycopg.Connection, ean: str, day: date) -> dict[str, str]:
    """The four CSV files of a supply point and local day, from what is stored now."""
    row = conn.execute(_TZ, (ean,)).fetchone()
    if row is None:
        raise ValueError(f"no supply point {ean}")
    tz = row[0]
    lo, hi, _ = local_day(day, tz)
    p = {"ean": ean, "lo": lo, "hi": hi}
    d = day.isoformat()
    intervals = [st.SupplyInterval(*r) for r in conn.execute(_PROFILE, (ean, lo, hi)).fetchall()]
    profile = st.profile_rows(ean, day, tz, intervals)

    inventory = []
    for (ref, ctl, idx, gtin, serial, model, rated, standby, cab, switched, lat, lon, since,
         until, kwh, samples, flags, source) in conn.execute(_INVENTORY, p).fetchall():
        reported = bool(samples)
        equivalent = bool(flags and flags & CELL_EQUIVALENT)
        inventory.append({
            "ean": ean, "day": d, "luminaire_ref": ref, "controller_id": ctl, "luminaire_idx": idx,
            "gtin": gtin, "serial": serial, "model": model, "rated_power_w": rated,
            "standby_power_w": standby,
            "control_type": ("dali_level_only" if equivalent else "dali_d4i_metered")
            if reported else "unknown",
            "switch_regime": (998 if equivalent else 999) if reported else None,
            "cabinet_id": cab, "switched_supply": bool(switched), "lat": lat, "lon": lon,
            "valid_from": since, "valid_to": until,
            "kwh_day": None if kwh is None else kwh / 1000.0,
            "data": "missing" if source is None else SOURCE_NAMES[int(source)],
        })

    events: list[dict[str, object]] = []
    for t, ctl, lum, before, level, commanded, scheduled in conn.execute(_LEVELS, p).fetchall():
        for ev in st.level_events([t, t], [before, level], [False, commanded],
                                  [False, scheduled]):
            events.append({"ean": ean, "day": d, "controller_id": ctl, "luminaire_idx": lum, **ev})
    for t, ctl, online, reason in conn.execute(_STATES, p).fetchall():
        events.append({"ean": ean, "day": d, "time_utc": t, "controller_id": ctl,
                       "event": "comm_restored" if online else "comm_lost",
                       "cause": "connection" if online or reason == "connection_lost"
                       else "supply" if reason in ("power_off", "supply_off") else "unknown",
                       "source": "controller_state", "detail": reason})
    for t, ctl, lum, kind, severity in conn.execute(_AGENT_EVENTS, p).fetchall():
        events.append({"ean": ean, "day": d, "time_utc": t, "controller_id": ctl,
                       "luminaire_idx": lum, "event": "controller_event", "cause": "unknown",
                       "source": "controller_event", "detail": f"{kind} ({severity})"})

    faults = []
    for (fid, kind, severity, ctl, lum, cab, raised, cleared, cause, during, est,
         expected) in conn.execute(_FAULTS, p).fetchall():
        faults.append({
            "ean": ean, "day": d, "fault_id": fid, "kind": kind, "severity": severity,
            "controller_id": ctl, "luminaire_idx": lum, "cabinet_id": cab, "raised_utc": raised,
            "cleared_utc": cleared, "cause": cause,
            "kwh_during": None if during is None else during / 1000.0,
            "kwh_expected": None if expected is None else expected / 1000.0,
            "kwh_impact": None if during is None or expected is None
            else (during - expected) / 1000.0,
            "estimated_share": None if not during else est / during,
        })
        events.append({"ean": ean, "day": d, "time_utc": raised, "controller_id": ctl or "",
                       "luminaire_idx": lum, "event": "fault_raised", "cause": "fault",
                       "source": "fault", "detail": kind})
        if cleared is not None and cleared < hi:
            events.append({"ean": ean, "day": d, "time_utc": cleared, "controller_id": ctl or "",
                           "luminaire_idx": lum, "event": "fault_cleared", "cause": "fault",
                           "source": "fault", "detail": kind})
    events = [e for e in events if lo <= e["time_utc"] < hi]  # type: ignore[operator]
    events.sort(key=lambda e: (e["time_utc"], str(e["controller_id"]),
                               -1 if e.get("luminaire_idx") is None else e["luminaire_idx"]))
    return {"inventory": st.to_csv("inventory", inventory), "events": st.to_csv("events", events),
            "profile": st.to_csv("profile", profile), "faults": st.to_csv("faults", faults)}


def export(conn: psycopg.Connection, ean: str, day: date) -> Exported:
    """Build the day's files and store each whose content changed as a new version (in one
    transaction), the earlier one kept and marked superseded."""
    files = build_files(conn, ean, day)
    versions: dict[str, tuple[int, bool]] = {}
    with conn.transaction():
        for kind, text in files.items():
            sha = st.digest(text)
            row = conn.execute(_CURRENT, (ean, day, kind)).fetchone()
            v = st.next_version(None if row is None else (row[0], row[1]), sha)
            if v.store:
                conn.execute(_SUPERSEDE, (ean, day, kind))
                conn.execute(_STORE, (ean, day, kind, v.version, st.schema(kind)["$id"],
                                      text.count("\r\n") - 1, sha, text))
            versions[kind] = (v.version, v.store)
    return Exported(ean, day, versions)


def latest_files(conn: psycopg.Connection, ean: str, day: date) -> list[tuple[str, int, str]]:
    """(kind, version, content) of the current version of each file."""
    return [(k, v, c) for k, v, c in conn.execute(_LATEST, (ean, day)).fetchall()]


class SettlementJob:
    """Exports each supply point's day once the data has passed its end by `settle_s` (its last
    intervals closed by the readings after them), and again after its energy changed."""

    name = "settlement"

    def __init__(self, settle_s: float = 3600.0) -> None:
        self.settle = timedelta(seconds=settle_s)

    def newest(self, conn: psycopg.Connection) -> datetime | None:
        return conn.execute("SELECT max(bucket) FROM energy_supply_interval").fetchone()[0]  # type: ignore[index]

    def oldest(self, conn: psycopg.Connection) -> datetime | None:
        return conn.execute("SELECT min(bucket) FROM energy_supply_interval").fetchone()[0]  # type: ignore[index]

    def run_pass(self, conn: psycopg.Connection, start: datetime, end: datetime) -> PassResult:
        """Export the days due whose end is `settle` before `end` (data time)."""
        since = start - timedelta(days=40)  # late data is recomputed at most this far back
        stored = 0
        days = 0
        for ean, day, tz in conn.execute(_DUE, {"since": since, "until": end}).fetchall():
            if local_day(day, tz)[1] + self.settle > end:
                continue  # the day has not ended yet, or its last intervals are still open
            out = export(conn, ean, day)
            days += 1
            stored += sum(1 for _, new in out.versions.values() if new)
        if days:
            log.info("job=settlement days=%d files_stored=%d until=%s", days, stored,
                     end.astimezone(UTC).isoformat())
        return PassResult(days, 0, 0)
