"""Two tenants with every kind of asset, users of every role and a grid operator, written as the
owner; tokens issued with the app's own signing secret."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache

import psycopg
from psycopg.types.json import Jsonb

from api.credentials import hash_password, issue_token
from api.roles import TENANT_ROLES, Principal, Role

SECRET = "test-signing-secret-of-at-least-32-chars"
PASSWORD = "correct horse battery staple"
NOW = datetime.now(UTC).replace(second=0, microsecond=0)


@cache
def password_hash() -> str:
    """PASSWORD's argon2 hash, computed once per session: a real hash (the login path verifies
    it), and at the library's cost of about a second a hash on a loaded machine, not one per user
    of every test's world."""
    return hash_password(PASSWORD)


@dataclass
class TenantAssets:
    tenant: str
    ean: str
    cabinet: str
    controllers: list[str]
    luminaires: list[int]
    group: int
    schedule: int
    fault: int
    batch: str
    users: dict[Role, int] = field(default_factory=dict)
    key_id: int = 0


def _tenant(conn: psycopg.Connection, tenant: str, digit: str) -> TenantAssets:
    ean = digit * 18
    conn.execute("INSERT INTO tenants (id, name) VALUES (%s, %s)", (tenant, tenant.title()))
    conn.execute("INSERT INTO supply_points (ean, tenant_id, name) VALUES (%s, %s, 'main')",
                 (ean, tenant))
    cabinet = f"cab-{tenant}"
    conn.execute("INSERT INTO cabinets (id, tenant_id, supply_point_ean, name, switched_supply)"
                 " VALUES (%s, %s, %s, 'c', true)", (cabinet, tenant, ean))
    controllers = [f"ctl-{tenant}-{i}" for i in range(2)]
    luminaires = []
    for i, ctl in enumerate(controllers):
        conn.execute("INSERT INTO controllers (id, tenant_id, cabinet_id, pole_id, lat, lon, status,"
                     " online, last_seen) VALUES (%s, %s, %s, %s, 50.8, 4.3, 'active', true, %s)",
                     (ctl, tenant, cabinet, f"P-{tenant}-{i}", NOW))
        for idx in range(2):
            row = conn.execute("INSERT INTO luminaires (tenant_id, controller_id, idx, model,"
                               " rated_power_w, lat, lon) VALUES (%s, %s, %s, 'LX', 40, 50.8, 4.3)"
                               " RETURNING id", (tenant, ctl, idx)).fetchone()
            assert row is not None
            luminaires.append(int(row[0]))
    group = conn.execute("INSERT INTO groups (tenant_id, name) VALUES (%s, 'main') RETURNING id",
                         (tenant,)).fetchone()
    assert group is not None
    conn.execute("INSERT INTO group_members SELECT %s, unnest(%s::bigint[])", (group[0], luminaires))
    conn.execute("INSERT INTO group_lighting (group_id, rated_class, design_at_full) VALUES"
                 " (%s, 'M4', 1.1)", (group[0],))
    schedule = conn.execute(
        "INSERT INTO schedules (tenant_id, name, version, body) VALUES (%s, 'night', 1, %s)"
        " RETURNING id", (tenant, Jsonb({"steps": [{"anchor": "sunset", "level": 254}]}))).fetchone()
    assert schedule is not None
    conn.execute("INSERT INTO group_schedules (group_id, schedule_id) VALUES (%s, %s)",
                 (group[0], schedule[0]))
    fault = conn.execute(
        "INSERT INTO faults (tenant_id, controller_id, luminaire_idx, kind, severity, raised_at,"
        " cause) VALUES (%s, %s, 0, 'lampFailure', 'critical', %s, 'lamp out') RETURNING id",
        (tenant, controllers[0], NOW - timedelta(hours=1))).fetchone()
    assert fault is not None
    batch = f"{tenant:0<8}".replace("-", "0")[:8].encode().hex().ljust(32, "0")[:32]
    conn.execute("INSERT INTO command_batches (id, tenant_id, target, body, issued_at, expires_at,"
                 " devices) VALUES (%s, %s, '{}', '{}', %s, %s, 1)",
                 (batch, tenant, NOW, NOW + timedelta(hours=1)))
    conn.execute("INSERT INTO commands (id, tenant_id, controller_id, type, body, issued_at,"
                 " expires_at, batch_id) VALUES (%s, %s, %s, 'identify', '{}', %s, %s, %s)",
                 (f"cmd-{tenant}", tenant, controllers[0], NOW, NOW + timedelta(hours=1), batch))
    csv = "ean,day\r\n" + f"{ean},2026-01-01\r\n"  # a settlement file, as the job stores them
    conn.execute("INSERT INTO settlement_files (ean, day, kind, version, schema_id, rows, sha256,"
                 " content) VALUES (%s, '2026-01-01', 'profile', 1, 'test', 1, %s, %s)",
                 (ean, hashlib.sha256(csv.encode()).hexdigest(), csv))
    assets = TenantAssets(tenant, ean, cabinet, controllers, luminaires, int(group[0]),
                          int(schedule[0]), int(fault[0]), batch)
    for role in sorted(TENANT_ROLES):
        row = conn.execute("INSERT INTO users (tenant_id, email, role, password_hash) VALUES"
                           " (%s, %s, %s, %s) RETURNING id",
                           (tenant, f"{role.value}@{tenant}.example", role.value, password_hash())
                           ).fetchone()
        assert row is not None
        assets.users[role] = int(row[0])
    key = conn.execute("INSERT INTO api_keys (user_id, prefix, key_hash, role) VALUES (%s, %s,"
                       " 'x', 'viewer') RETURNING id",
                       (assets.users[Role.ADMIN], f"{digit * 12}")).fetchone()
    assert key is not None
    assets.key_id = int(key[0])
    return assets


@dataclass
class World:
    a: TenantAssets
    b: TenantAssets
    grid_user: int

    def token(self, assets: TenantAssets | None, role: Role) -> str:
        if assets is None:
            principal = Principal(self.grid_user, None, Role.GRID_OPERATOR)
        else:
            principal = Principal(assets.users[role], assets.tenant, role)
        return issue_token(principal, SECRET, timedelta(minutes=15), datetime.now(UTC))

    def headers(self, assets: TenantAssets | None, role: Role) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(assets, role)}"}


def build_world(owner_dsn: str) -> World:
    with psycopg.connect(owner_dsn, autocommit=True) as conn:
        a = _tenant(conn, "town-a", "1")
        b = _tenant(conn, "town-b", "2")
        row = conn.execute("INSERT INTO users (tenant_id, email, role, password_hash) VALUES"
                           " (NULL, 'grid@dso.example', 'grid_operator', %s) RETURNING id",
                           (password_hash(),)).fetchone()
        assert row is not None
        return World(a, b, int(row[0]))
