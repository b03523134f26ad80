"""Seeding a simulated region: every controller and luminaire registered once, idempotently."""

from __future__ import annotations

import psycopg
import pytest

from controller_fw_sim.fleet_inventory import build_inventory
from luciole.seed import seed_inventory

pytestmark = pytest.mark.integration


def test_seed_registers_the_region_once(db_dsn: str) -> None:
    inventory = build_inventory(120, 4, seed=3)
    first = seed_inventory(db_dsn, inventory)
    assert first["controllers"] == 120
    assert first["luminaires"] == 480
    assert first["tenants"] == len(inventory.tenants)
    assert seed_inventory(db_dsn, inventory) == dict.fromkeys(first, 0)
    with psycopg.connect(db_dsn) as conn:
        orphans = conn.execute(
            "SELECT count(*) FROM luminaires l JOIN controllers c ON c.id = l.controller_id"
            " WHERE l.tenant_id <> c.tenant_id"
        ).fetchone()[0]
        per_supply = conn.execute(
            "SELECT count(DISTINCT sp.ean) FROM controllers c JOIN cabinets k ON k.id = c.cabinet_id"
            " JOIN supply_points sp ON sp.ean = k.supply_point_ean"
        ).fetchone()[0]
    assert orphans == 0
    assert per_supply == len(inventory.cabinet_ids)
