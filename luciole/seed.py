"""Registers a simulated region's installed base in the database (tenants to luminaires)."""

from __future__ import annotations

import logging

import psycopg

from controller_fw_sim.fleet_inventory import Inventory
from controller_fw_sim.sensors import RoadClass

log = logging.getLogger(__name__)

# Temporary tables are filled with COPY, then merged: a second seed of the same region adds
# nothing and fails on nothing.
_MERGES = (
    ("tenants", "id text, name text",
     "INSERT INTO tenants (id, name) SELECT id, name FROM s ON CONFLICT DO NOTHING"),
    ("supply_points", "ean text, tenant_id text, name text",
     "INSERT INTO supply_points (ean, tenant_id, name) SELECT ean, tenant_id, name FROM s"
     " ON CONFLICT DO NOTHING"),
    ("cabinets", "id text, tenant_id text, ean text, lat float8, lon float8",
     "INSERT INTO cabinets (id, tenant_id, supply_point_ean, name, lat, lon)"
     " SELECT id, tenant_id, ean, id, lat, lon FROM s ON CONFLICT DO NOTHING"),
    ("controllers", "id text, tenant_id text, cabinet_id text, lat float8, lon float8",
     "INSERT INTO controllers (id, tenant_id, cabinet_id, pole_id, lat, lon, status)"
     " SELECT id, tenant_id, cabinet_id, id, lat, lon, 'active' FROM s ON CONFLICT DO NOTHING"),
    ("luminaires",
     "tenant_id text, controller_id text, idx int2, model text, rated_power_w float4,"
     " lat float8, lon float8, road_class text",
     "INSERT INTO luminaires (tenant_id, controller_id, idx, model, rated_power_w, lat, lon,"
     " road_class) SELECT * FROM s ON CONFLICT DO NOTHING"),
)


def _rows(inv: Inventory) -> dict[str, list[tuple]]:
    tenant = [t.id for t in inv.tenants]
    road = {int(r): r.name.lower() for r in RoadClass}
    cabinets = [
        (cid, tenant[inv.cabinet_tenant[i]], inv.cabinet_ean[i], float(inv.cabinet_lat[i]),
         float(inv.cabinet_lon[i]))
        for i, cid in enumerate(inv.cabinet_ids)
    ]
    controllers = [
        (cid, tenant[inv.controller_tenant[i]], inv.cabinet_ids[inv.controller_cabinet[i]],
         float(inv.controller_lat[i]), float(inv.controller_lon[i]))
        for i, cid in enumerate(inv.controller_ids)
    ]
    ctl = inv.luminaire_controller
    luminaires = [
        (tenant[inv.controller_tenant[c]], inv.controller_ids[c], int(inv.luminaire_index[k]),
         inv.models[inv.luminaire_model[k]].name, float(inv.luminaire_rated_w[k]),
         float(inv.luminaire_lat[k]), float(inv.luminaire_lon[k]),
         road[int(inv.controller_road_class[c])])
        for k, c in enumerate(ctl.tolist())
    ]
    return {
        "tenants": [(t.id, t.name) for t in inv.tenants],
        "supply_points": [
            (ean, cab[1], f"supply of {cab[0]}") for ean, cab in zip(inv.cabinet_ean, cabinets, strict=True)
        ],
        "cabinets": cabinets,
        "controllers": controllers,
        "luminaires": luminaires,
    }


def seed_inventory(dsn: str, inventory: Inventory) -> dict[str, int]:
    """Insert what is missing of `inventory`; returns how many rows each table gained."""
    rows = _rows(inventory)
    added: dict[str, int] = {}
    with psycopg.connect(dsn) as conn:
        for table, columns, merge in _MERGES:
            conn.execute(f"CREATE TEMP TABLE s ({columns}) ON COMMIT DROP")
            with conn.cursor().copy("COPY s FROM STDIN") as copy:
                for row in rows[table]:
                    copy.write_row(row)
            added[table] = conn.execute(merge).rowcount
            conn.execute("DROP TABLE s")
        conn.commit()
    log.info("seeded %s", added)
    return added
