"""Commands to a list of luminaires (a map selection): one batch fanned out per controller, the
same per-device status and progress as a group command, against the real broker; every hostile
list refused with a problem document and nothing sent."""

from __future__ import annotations

import time
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.commands import MAX_LIST
from api.roles import TENANT_ROLES, Role
from ingest.writer import Writer
from luciole.stack import wait_for
from tests.api.api_world import World
from tests.api.test_api_isolation import snapshot
from tests.conftest import RunningStack
from tests.devices import Device
from tests.devices import ack as _ack
from wire.messages import LuminaireTarget, SetLevel, parse_command
from wire.records import TIME_MIN_US

pytestmark = pytest.mark.integration


def _batches(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT (SELECT count(*) FROM command_batches)"
                           " + (SELECT count(*) FROM commands)").fetchone()
    assert row is not None
    return int(row[0])


def _send(client: TestClient, world: World, target: Any, role: Role = Role.OPERATOR) -> Any:
    return client.post("/api/v1/commands", headers=world.headers(world.a, role), json={
        "target": target, "action": {"type": "set_level", "level": 90}, "expires_in_s": 600})


def test_a_list_command_round_trip(stack: RunningStack, client: TestClient, world: World,
                                   db_dsn: str) -> None:
    """Three of A's four luminaires: both of controller 0's (one command for the controller) and
    the first of controller 1's (a command for that luminaire); both ack, the batch is done."""
    a = world.a
    devices = [Device(stack, a.tenant, controller) for controller in a.controllers]
    for device in devices:
        device.connect(first=True)
    wait_for(lambda: client.get("/healthz").json()["broker"], 15, "the API's broker link")
    try:
        chosen = [a.luminaires[2], a.luminaires[0], a.luminaires[1]]
        response = _send(client, world, {"luminaires": chosen})
        assert response.status_code == 202, response.text
        issued = response.json()
        assert issued["devices"] == 2 and issued["sent"] == 2
        whole, single = (parse_command(device.expect()) for device in devices)
        assert isinstance(whole, SetLevel) and whole.target == "all" and whole.level == 90
        assert isinstance(single, SetLevel) and single.target == LuminaireTarget(luminaire=0)

        path = f"/api/v1/commands/{issued['id']}"
        body = client.get(path, headers=world.headers(a, Role.VIEWER)).json()
        assert body["target"] == {"list": {"count": 3, "first": chosen}}
        assert body["counts"]["sent"] == 2
        assert [(d["controller_id"], d["luminaire_id"]) for d in body["devices"]] == [
            (a.controllers[0], None), (a.controllers[1], a.luminaires[2])]

        writer = Writer(db_dsn)
        try:
            now_us = max(int(time.time() * 1e6), TIME_MIN_US)
            writer.write([_ack(a.tenant, device.controller, seq, command.id, status)
                          for device, command in zip(devices, (whole, single), strict=True)
                          for seq, status in ((1, "accepted"), (2, "done"))], now_us=now_us)
        finally:
            writer.close()
        body = client.get(path, headers=world.headers(a, Role.VIEWER)).json()
        assert body["summary"] == "2 of 2 done, 0 failed"
        assert body["counts"]["done"] == 2
        listed = client.get("/api/v1/commands", headers=world.headers(a, Role.VIEWER)).json()
        assert listed["items"][0]["id"] == issued["id"] and listed["items"][0]["devices"] == 2
        audit = client.get("/api/v1/audit?action=command.issue",
                           headers=world.headers(a, Role.ADMIN)).json()["items"]
        assert audit[0]["target"] == issued["id"]
    finally:
        for device in devices:
            device.disconnect()


HOSTILE: list[tuple[str, Any, int, str]] = [
    ("empty", {"luminaires": []}, 422, "at least 1"),
    ("too many", {"luminaires": list(range(1, MAX_LIST + 2))}, 422, "at most 10000"),
    ("zero", {"luminaires": [0]}, 422, "greater than or equal to 1"),
    ("negative", {"luminaires": [-5]}, 422, "greater than or equal to 1"),
    ("past bigint", {"luminaires": [1 << 63]}, 422, "less than"),
    ("a string", {"luminaires": "1,2"}, 422, "valid list"),
    ("strings of digits", {"luminaires": ["1"]}, 422, "valid integer"),
    ("a float", {"luminaires": [1.5]}, 422, "valid integer"),
    ("a boolean", {"luminaires": [True]}, 422, "valid integer"),
    ("null", {"luminaires": None}, 422, "valid list"),
    ("nested", {"luminaires": [[1]]}, 422, "valid integer"),
    ("two targets at once", {"luminaires": [1], "group": 1}, 422, "Extra inputs"),
]


def test_every_bad_list_is_refused_in_words_and_nothing_is_sent(client: TestClient, world: World,
                                                                 db_dsn: str) -> None:
    """Hostile lists (one table), repeated ids, unknown and foreign ids, a full list of unknown
    ids, every role of A over B's luminaires, a viewer over A's own: each refused with a problem
    document, and no batch or command written in either tenant."""
    a, b = world.a, world.b
    before = _batches(db_dsn), snapshot(db_dsn, b.tenant)
    failures = []
    for name, target, status, words in HOSTILE:
        response = _send(client, world, target)
        if (response.status_code, response.headers["content-type"]) != (
                status, "application/problem+json") or words not in response.text:
            failures.append(f"{name}: {response.status_code} {response.text[:300]}")
    assert failures == []

    repeated = _send(client, world, {"luminaires": [a.luminaires[0], a.luminaires[1], a.luminaires[0]]})
    assert repeated.status_code == 422
    assert f"each luminaire once: {a.luminaires[0]} repeated" in repeated.json()["detail"]

    unknown = 9_000_000_000
    response = _send(client, world, {"luminaires": [a.luminaires[0], b.luminaires[1], unknown,
                                                    a.luminaires[3], b.luminaires[0]]})
    assert response.status_code == 404, response.text
    body = response.json()
    assert body["unknown_luminaires"] == [b.luminaires[1], unknown, b.luminaires[0]]
    assert str(unknown) in body["detail"] and "nothing was sent" in body["detail"]
    assert b.tenant not in response.text and not any(c in response.text for c in b.controllers)
    # a foreign id reads exactly as an unknown one: the answer tells nothing of tenant B
    alone = _send(client, world, {"luminaires": [b.luminaires[2]]}).json()
    never = _send(client, world, {"luminaires": [unknown]}).json()
    assert alone["detail"].replace(str(b.luminaires[2]), "ID") == never["detail"].replace(str(unknown), "ID")

    ids = list(range(8_000_000_000, 8_000_000_000 + MAX_LIST))  # the most a list may hold
    full = _send(client, world, {"luminaires": ids})
    assert full.status_code == 404
    assert len(full.json()["unknown_luminaires"]) == MAX_LIST
    assert full.json()["detail"].endswith(f"and {MAX_LIST - 20} more; nothing was sent")

    # the list target walked with every role of A over B's luminaires: 403 for the roles that may
    # not command, 404 for those that may; and a viewer may not command A's own
    answers = {role: _send(client, world, {"luminaires": b.luminaires}, role).status_code
               for role in sorted(TENANT_ROLES)}
    assert answers == {role: 404 if role in (Role.ADMIN, Role.OPERATOR, Role.TECHNICIAN) else 403
                       for role in sorted(TENANT_ROLES)}
    assert _send(client, world, {"luminaires": a.luminaires}, Role.VIEWER).status_code == 403
    assert (_batches(db_dsn), snapshot(db_dsn, b.tenant)) == before
