"""The fault lifecycle in the `faults` table: raised, acknowledged by a person, cleared."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg

from analytics.fault_types import FaultType

# one open fault per cause: a raise while the same cause is open adds nothing
_RAISE = """
INSERT INTO faults (tenant_id, cabinet_id, controller_id, luminaire_idx, sensor, quantity, kind,
                    severity, raised_at, last_evidence_at, cause, detail)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT DO NOTHING
"""
# the same cause cleared within the kind's hold-off before this raise: reopen it (when nothing of
# that cause is open); its raise time stays, `reopened` counts the comebacks
_REOPEN = """
UPDATE faults SET cleared_at = NULL, last_evidence_at = %(at)s, reopened = reopened + 1
WHERE id = (
    SELECT id FROM faults
    WHERE kind = %(kind)s AND cleared_at IS NOT NULL
      AND cleared_at BETWEEN %(at)s - make_interval(secs => %(hold)s) AND %(at)s
      AND cabinet_id IS NOT DISTINCT FROM %(cabinet)s
      AND controller_id IS NOT DISTINCT FROM %(controller)s
      AND luminaire_idx IS NOT DISTINCT FROM %(luminaire)s
      AND sensor IS NOT DISTINCT FROM %(sensor)s AND quantity IS NOT DISTINCT FROM %(quantity)s
    ORDER BY cleared_at DESC LIMIT 1)
AND NOT EXISTS (
    SELECT 1 FROM faults
    WHERE kind = %(kind)s AND cleared_at IS NULL
      AND cabinet_id IS NOT DISTINCT FROM %(cabinet)s
      AND controller_id IS NOT DISTINCT FROM %(controller)s
      AND luminaire_idx IS NOT DISTINCT FROM %(luminaire)s
      AND sensor IS NOT DISTINCT FROM %(sensor)s AND quantity IS NOT DISTINCT FROM %(quantity)s)
"""
_CLEAR = """
UPDATE faults SET cleared_at = greatest(%s, raised_at), last_evidence_at = %s
WHERE cleared_at IS NULL AND kind = %s
  AND cabinet_id IS NOT DISTINCT FROM %s AND controller_id IS NOT DISTINCT FROM %s
  AND luminaire_idx IS NOT DISTINCT FROM %s AND sensor IS NOT DISTINCT FROM %s
  AND quantity IS NOT DISTINCT FROM %s
"""
_ACKNOWLEDGE = """
UPDATE faults SET acknowledged_at = %s, acknowledged_by = %s
WHERE id = %s AND acknowledged_at IS NULL
"""


@dataclass(frozen=True)
class FaultEvent:
    """A fault raised or cleared at a data time, on one device."""

    kind: FaultType
    raised: bool  # False: cleared
    at: float  # epoch s of the reading that decided it
    tenant_id: str
    cabinet_id: str | None = None
    controller_id: str | None = None
    luminaire_idx: int | None = None
    sensor: int | None = None
    quantity: int | None = None
    cause: str = ""
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def device(self) -> tuple[str | None, str | None, int | None, int | None, int | None]:
        return (self.cabinet_id, self.controller_id, self.luminaire_idx, self.sensor,
                self.quantity)


def _when(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def apply_events(conn: psycopg.Connection, events: list[FaultEvent]) -> tuple[int, int]:
    """Write raises and clears in time order; returns (faults raised, faults cleared). A raise of
    a cause cleared within its kind's hold-off reopens that fault instead (counted in neither)."""
    raised = cleared = 0
    with conn.cursor() as cur:
        for e in sorted(events, key=lambda e: (e.at, not e.raised)):
            if e.raised and e.kind.reopen_within_s > 0:
                cabinet, controller, luminaire, sensor, quantity = e.device
                cur.execute(_REOPEN, {
                    "at": _when(e.at), "kind": e.kind.name, "hold": e.kind.reopen_within_s,
                    "cabinet": cabinet, "controller": controller, "luminaire": luminaire,
                    "sensor": sensor, "quantity": quantity})
                if cur.rowcount:
                    continue  # the same fault again: not a new one
            if e.raised:
                cur.execute(_RAISE, (e.tenant_id, *e.device[:2], e.luminaire_idx, e.sensor,
                                     e.quantity, e.kind.name, e.kind.severity, _when(e.at),
                                     _when(e.at), e.cause, json.dumps(e.detail)))
            else:
                cur.execute(_CLEAR, (_when(e.at), _when(e.at), e.kind.name, *e.device))
            if e.raised:
                raised += cur.rowcount
            else:
                cleared += cur.rowcount
    return raised, cleared


def acknowledge(conn: psycopg.Connection, fault_id: int, user_id: int | None,
                at: datetime | None = None) -> bool:
    """A person has seen the fault; False when it was already acknowledged or is unknown."""
    cur = conn.execute(_ACKNOWLEDGE, (at or datetime.now(UTC), user_id, fault_id))
    return cur.rowcount == 1
