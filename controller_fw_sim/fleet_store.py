"""A simulated fleet's telemetry straight into the database, without a broker: benches and tests.

The rows are what ingest would store for the same messages (same tables, same columns, same
sequence numbers); a fraction of records and of whole messages can be dropped on the way, as a
lossy radio link would.
"""

from __future__ import annotations

from datetime import UTC

import numpy as np
import psycopg

from controller_fw_sim.fleet import Outbox
from controller_fw_sim.fleet_inventory import Inventory
from wire.records import HEADER_DTYPE, HEADER_SIZE, LUMINAIRE_DTYPE, SENSOR_DTYPE

_LUMINAIRE_COPY = (
    "COPY luminaire_telemetry (time, controller_key, luminaire, level, status, power_w, energy_wh,"
    " voltage_v, current_a, power_factor, driver_temp_c, ambient_lux, presence, failure, boot_id,"
    " seq) FROM STDIN"
)
_SENSOR_COPY = (
    "COPY sensor_readings (time, controller_key, sensor, quantity, value, boot_id, seq) FROM STDIN"
)
_SWITCHED = "UPDATE cabinets SET switched_supply = true WHERE id = ANY(%s)"
_KEYS = "SELECT id, key FROM controllers WHERE id = ANY(%s)"


def mark_switched(conn: psycopg.Connection, inventory: Inventory) -> int:
    """Record the inventory's switched cabinets in the database; returns how many."""
    ids = [c for c, s in zip(inventory.cabinet_ids, inventory.switched.tolist()) if s]
    return conn.execute(_SWITCHED, (ids,)).rowcount


def _split(payloads: np.ndarray, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """(headers (k,), records (k, R)) of a block of same-shaped messages."""
    k = payloads.shape[0]
    header = np.ascontiguousarray(payloads[:, :HEADER_SIZE]).view(HEADER_DTYPE).reshape(k)
    records = np.ascontiguousarray(payloads[:, HEADER_SIZE:]).view(dtype).reshape(k, -1)
    return header, records


class FleetStore:
    """Writes a fleet's outboxes into luminaire_telemetry and sensor_readings."""

    def __init__(self, conn: psycopg.Connection, inventory: Inventory, *, seed: int = 0,
                 record_loss: float = 0.0, message_loss: float = 0.0) -> None:
        rows = conn.execute(_KEYS, (list(inventory.controller_ids),)).fetchall()
        key_of = dict(rows)
        missing = [c for c in inventory.controller_ids if c not in key_of]
        if missing:
            raise ValueError(f"{len(missing)} controllers are not registered, e.g. {missing[0]}")
        self.conn = conn
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
        with self.conn.transaction():
            n = self._copy(_LUMINAIRE_COPY, lum_rows, luminaire=True)
            n += self._copy(_SENSOR_COPY, sen_rows, luminaire=False)
        return n

    def _rows(self, controllers: np.ndarray, header: np.ndarray, rec: np.ndarray) -> tuple:
        k, r = rec.shape
        keep = self._keep(k, r)
        seq = header["first_seq"][:, None].astype(np.int64) + np.arange(r)[None, :]
        boot = np.broadcast_to(header["boot_id"].astype(np.int64)[:, None], (k, r))
        key = np.broadcast_to(self.keys[controllers][:, None], (k, r))
        return rec[keep], key[keep], boot[keep], seq[keep]

    def _copy(self, sql: str, blocks: list[tuple], *, luminaire: bool) -> int:
        n = 0
        with self.conn.cursor().copy(sql + " (FORMAT BINARY)") as copy:
            copy.set_types(_LUMINAIRE_TYPES if luminaire else _SENSOR_TYPES)
            for rec, key, boot, seq in blocks:
                times = (rec["time_us"] // 1000).astype("datetime64[ms]").astype(object)
                times = [t.replace(tzinfo=UTC) for t in times]
                if luminaire:
                    cols = [times, key.tolist(), rec["luminaire"].tolist(), rec["level"].tolist(),
                            rec["status"].tolist(), rec["power_w"].tolist(),
                            rec["energy_wh"].tolist(), rec["voltage_v"].tolist(),
                            rec["current_a"].tolist(), rec["power_factor"].tolist(),
                            rec["driver_temp_c"].tolist(), rec["ambient_lux"].tolist(),
                            rec["presence"].tolist(), rec["failure"].tolist(), boot.tolist(),
                            seq.tolist()]
                else:
                    cols = [times, key.tolist(), rec["sensor"].tolist(),
                            rec["quantity"].tolist(), rec["value"].tolist(), boot.tolist(),
                            seq.tolist()]
                for row in zip(*cols):
                    copy.write_row(row)
                n += rec.shape[0]
        if luminaire:
            self.luminaire_rows += n
        else:
            self.sensor_rows += n
        return n


_LUMINAIRE_TYPES = ["timestamptz", "int4", "int2", "int2", "int2", "float4", "float8", "float4",
                    "float4", "float4", "float4", "float4", "int4", "int4", "int8", "int8"]
_SENSOR_TYPES = ["timestamptz", "int4", "int2", "int2", "float4", "int8", "int8"]
