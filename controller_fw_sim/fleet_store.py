"""A simulated fleet's telemetry straight into the database, without a broker: benches and tests.

The rows are what ingest would store for the same messages (same tables, same columns, same
sequence numbers); a fraction of records and of whole messages can be dropped on the way, as a
lossy radio link would.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import psycopg

from controller_fw_sim.fleet import Outbox
from controller_fw_sim.fleet_inventory import Inventory
from wire.records import HEADER_DTYPE, HEADER_SIZE, LUMINAIRE_DTYPE, SENSOR_DTYPE

#: column name -> record field (or key, boot_id, seq), per table
LUMINAIRE_COLUMNS = ("time", "controller_key", "luminaire", "level", "status", "power_w",
                     "energy_wh", "voltage_v", "current_a", "power_factor", "driver_temp_c",
                     "ambient_lux", "presence", "failure", "boot_id", "seq")
SENSOR_COLUMNS = ("time", "controller_key", "sensor", "quantity", "value", "boot_id", "seq")
#: writes columns (name -> array; time as int64 µs since the epoch) into a table, returns rows
Copier = Callable[[psycopg.Cursor[Any], str, dict[str, np.ndarray]], int]
_SWITCHED = "UPDATE cabinets SET switched_supply = true WHERE id = ANY(%s)"
_KEYS = "SELECT id, key FROM controllers WHERE id = ANY(%s)"


def mark_switched(conn: psycopg.Connection, inventory: Inventory) -> int:
    """Record the inventory's switched cabinets in the database; returns how many."""
    ids = [c for c, s in zip(inventory.cabinet_ids, inventory.switched.tolist(), strict=True) if s]
    return conn.execute(_SWITCHED, (ids,)).rowcount


def _split(payloads: np.ndarray, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """(headers (k,), records (k, R)) of a block of same-shaped messages."""
    k = payloads.shape[0]
    header = np.ascontiguousarray(payloads[:, :HEADER_SIZE]).view(HEADER_DTYPE).reshape(k)
    records = np.ascontiguousarray(payloads[:, HEADER_SIZE:]).view(dtype).reshape(k, -1)
    return header, records


class FleetStore:
    """Writes a fleet's outboxes into luminaire_telemetry and sensor_readings."""

    def __init__(self, conn: psycopg.Connection, inventory: Inventory, copier: Copier, *,
                 seed: int = 0, record_loss: float = 0.0, message_loss: float = 0.0) -> None:
        rows = conn.execute(_KEYS, (list(inventory.controller_ids),)).fetchall()
        key_of: dict[str, int] = dict(rows)
        missing = [c for c in inventory.controller_ids if c not in key_of]
        if missing:
            raise ValueError(f"{len(missing)} controllers are not registered, e.g. {missing[0]}")
        self.conn = conn
        self.copier = copier
        self.keys = np.array([key_of[c] for c in inventory.controller_ids], dtype=np.int64)
        self.rng = np.random.default_rng([seed, 0x10557])
        self.record_loss = record_loss
        self.message_loss = message_loss
        self.luminaire_rows = 0
        self.sensor_rows = 0

    def _keep(self, k: int, r: int) -> np.ndarray:
        keep = self.rng.random((k, r)) >= self.record_loss
        keep &= (self.rng.random(k) >= self.message_loss)[:, None]
        return keep

    def write(self, outboxes: list[Outbox]) -> int:
        """Store the records of these outboxes (in one transaction); returns rows written."""
        lum_rows: list[tuple] = []
        sen_rows: list[tuple] = []
        for box in outboxes:
            if len(box):
                header, rec = _split(box.payloads, LUMINAIRE_DTYPE)
                lum_rows.append(self._rows(box.controllers, header, rec))
            for sensors in box.sensors:
                if sensors.controllers.shape[0]:
                    header, rec = _split(sensors.payloads, SENSOR_DTYPE)
                    sen_rows.append(self._rows(sensors.controllers, header, rec))
        with self.conn.transaction(), self.conn.cursor() as cur:
            n = self.copier(cur, "luminaire_telemetry", _columns(lum_rows, True))
            self.luminaire_rows += n
            m = self.copier(cur, "sensor_readings", _columns(sen_rows, False))
            self.sensor_rows += m
        return n + m

    def _rows(self, controllers: np.ndarray, header: np.ndarray, rec: np.ndarray) -> tuple:
        k, r = rec.shape
        keep = self._keep(k, r)
        seq = header["first_seq"][:, None].astype(np.int64) + np.arange(r)[None, :]
        boot = np.broadcast_to(header["boot_id"].astype(np.int64)[:, None], (k, r))
        key = np.broadcast_to(self.keys[controllers][:, None], (k, r))
        return rec[keep], key[keep], boot[keep], seq[keep]


def _columns(blocks: list[tuple], luminaire: bool) -> dict[str, np.ndarray]:
    names = LUMINAIRE_COLUMNS if luminaire else SENSOR_COLUMNS
    if not blocks:
        return {n: np.zeros(0) for n in names}
    rec = np.concatenate([b[0] for b in blocks])
    out = {n: rec[n] for n in names[2:-2]}
    out["time"] = rec["time_us"]
    out["controller_key"] = np.concatenate([b[1] for b in blocks])
    out["boot_id"] = np.concatenate([b[2] for b in blocks])
    out["seq"] = np.concatenate([b[3] for b in blocks])
    return out
