"""A small installed base of two neighbouring municipalities, with the secrets and personal data a
real database holds (which no public route may show)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg

NOW = datetime.now(UTC).replace(microsecond=0)

# what must never appear in a public answer
SECRETS = ("admin@anderlecht.example", "argon2-hash-of-a-password", "key-hash-secret",
           "claim-code-hash-secret", "SN-SECRET-0001", "541449200000000017", "5414492000000000099",
           "fw-9.9.9-vulnerable")

A_LAMP0 = (50.836600, 4.309000)  # anderlecht, ctl-a1 luminaire 0 (lat, lon)
A_LAMP1 = (50.836700, 4.309100)  # ctl-a1 luminaire 1, about 13 m away: lamp failure open
A_POLE2 = (50.838000, 4.312000)  # ctl-a2, its luminaire has no position of its own
B_LAMP = (50.836650, 4.308800)  # ixelles' ctl-b1 luminaire 0, about 15 m from A_LAMP0: lamp failure


def seed(dsn: str) -> dict[str, int]:
    """Insert the two municipalities; returns the ids of the faults it opened."""
    with psycopg.connect(dsn, autocommit=True) as conn, conn.transaction():
        conn.execute("INSERT INTO tenants (id, name) VALUES ('anderlecht', 'Anderlecht'),"
                     " ('ixelles', 'Ixelles')")
        conn.execute("INSERT INTO users (tenant_id, email, role, password_hash) VALUES "
                     "('anderlecht', 'admin@anderlecht.example', 'admin', "
                     "'argon2-hash-of-a-password') ")
        conn.execute("INSERT INTO api_keys (user_id, prefix, key_hash) "
                     "SELECT id, 'pfx1', 'key-hash-secret' FROM users")
        conn.execute("INSERT INTO supply_points (ean, tenant_id, name, contracted_kw) VALUES "
                     "('541449200000000017', 'anderlecht', 'Rue Wayez', 12.5),"
                     "('541449200000000024', 'ixelles', 'Place Flagey', 8)")
        conn.execute(
            "INSERT INTO cabinets (id, tenant_id, supply_point_ean, name, lat, lon, switched_supply)"
            " VALUES ('cab-a1', 'anderlecht', '541449200000000017', 'Wayez', 50.8365, 4.3089, true),"
            " ('cab-a2', 'anderlecht', NULL, 'unmapped', NULL, NULL, false),"
            " ('cab-b1', 'ixelles', '541449200000000024', 'Flagey', 50.8367, 4.3087, false)")
        conn.execute(
            "INSERT INTO controllers (id, tenant_id, cabinet_id, pole_id, lat, lon, status,"
            " claim_code_hash, firmware, online) VALUES"
            " ('ctl-a1', 'anderlecht', 'cab-a1', 'AND-0001', %s, %s, 'active',"
            "  'claim-code-hash-secret', 'fw-9.9.9-vulnerable', true),"
            " ('ctl-a2', 'anderlecht', 'cab-a2', 'AND-0002', %s, %s, 'active', NULL, NULL, true),"
            " ('ctl-a3', 'anderlecht', 'cab-a1', 'AND-0003', 50.8361, 4.3091, 'retired', NULL,"
            "  NULL, false),"
            " ('ctl-a4', 'anderlecht', 'cab-a1', 'AND-0004', NULL, NULL, 'active', NULL, NULL,"
            "  false),"
            " ('ctl-b1', 'ixelles', 'cab-b1', 'IXL-0001', %s, %s, 'active', NULL, NULL, true)",
            (*A_LAMP0, *A_POLE2, *B_LAMP))
        conn.execute(
            "INSERT INTO luminaires (tenant_id, controller_id, idx, model, gtin, serial,"
            " rated_power_w, lat, lon, road_class, installed_at) VALUES"
            " ('anderlecht', 'ctl-a1', 0, 'Schréder Teceo 1', '5414492000000000099',"
            "  'SN-SECRET-0001', 36, %s, %s, 'M3', %s),"
            " ('anderlecht', 'ctl-a1', 1, 'Schréder Teceo 1', NULL, NULL, 36, %s, %s, 'P2', NULL),"
            " ('anderlecht', 'ctl-a2', 0, 'Philips Luma', NULL, NULL, 56, NULL, NULL,"
            "  'arterial', NULL),"
            " ('anderlecht', 'ctl-a3', 0, 'Old', NULL, NULL, 70, 50.8361, 4.3091, NULL, NULL),"
            " ('anderlecht', 'ctl-a4', 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),"
            " ('ixelles', 'ctl-b1', 0, 'Philips Luma', NULL, NULL, 56, %s, %s, 'M4', NULL)",
            (*A_LAMP0, NOW - timedelta(days=400), *A_LAMP1, *B_LAMP))
        conn.execute("INSERT INTO groups (tenant_id, name) VALUES ('anderlecht', 'Rue Wayez'),"
                     " ('anderlecht', 'Empty'), ('ixelles', 'Flagey')")
        conn.execute(
            "INSERT INTO group_members (group_id, luminaire_id)"
            " SELECT g.id, l.id FROM groups g JOIN luminaires l ON l.tenant_id = g.tenant_id"
            " WHERE (g.name = 'Rue Wayez' AND l.controller_id = 'ctl-a1')"
            "    OR (g.name = 'Flagey' AND l.controller_id = 'ctl-b1')")
        conn.execute(
            "INSERT INTO luminaire_state (controller_key, luminaire, time, level, status, power_w,"
            " energy_wh, voltage_v, power_factor, driver_temp_c, failure)"
            " SELECT c.key, v.idx, %s, v.level, 4, v.power, 1000, 231.5, 0.95, 40, v.failure"
            " FROM controllers c JOIN (VALUES ('ctl-a1', 0, 254, 35.5, 0),"
            "   ('ctl-a1', 1, 200, 0.4, 1), ('ctl-a2', 0, 0, 0.0, 512), ('ctl-b1', 0, 254, 0.5, 1))"
            "   AS v(ctl, idx, level, power, failure) ON v.ctl = c.id",
            (NOW - timedelta(minutes=2),))
        faults = {}
        for name, tenant, ctl, idx in (("a_lamp", "anderlecht", "ctl-a1", 1),
                                       ("b_lamp", "ixelles", "ctl-b1", 0)):
            (faults[name],) = conn.execute(
                "INSERT INTO faults (tenant_id, controller_id, luminaire_idx, kind, severity,"
                " raised_at, cause) VALUES (%s, %s, %s, 'lampFailure', 'critical', %s,"
                " 'luminaire draws 0.4 W') RETURNING id",
                (tenant, ctl, idx, NOW - timedelta(hours=1))).fetchone()
        return faults


def clear_fault(dsn: str, fault_id: int, at: datetime | None = None) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("UPDATE faults SET cleared_at = %s WHERE id = %s",
                     (at or datetime.now(UTC), fault_id))


def raise_fault(dsn: str, tenant: str, controller: str, idx: int | None, kind: str,
                at: datetime | None = None) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "INSERT INTO faults (tenant_id, controller_id, luminaire_idx, kind, severity, raised_at)"
            " VALUES (%s, %s, %s, %s, 'critical', %s) RETURNING id",
            (tenant, controller, idx, kind, at or datetime.now(UTC))).fetchone()
        assert row is not None
        return int(row[0])
