"""A command's round trip against the real broker: the API publishes with its own account, a
controller's own account receives it (at once, or at dusk from its persistent session when its
supply was off), its ack is stored by ingest's writer and moves the status; an expired command
is dropped by the broker."""

from __future__ import annotations

import queue
import time

import pytest
from fastapi.testclient import TestClient

from api.roles import Role
from ingest.writer import Writer
from luciole.stack import wait_for
from tests.api.api_world import World
from tests.conftest import RunningStack
from tests.devices import Device
from tests.devices import ack as _ack
from wire.messages import SetLevel, parse_command
from wire.records import TIME_MIN_US

pytestmark = pytest.mark.integration


def _linked(client: TestClient) -> None:
    wait_for(lambda: client.get("/healthz").json()["broker"], 15, "the API's broker link")


def test_group_command_round_trip(stack: RunningStack, client: TestClient, world: World,
                                  db_dsn: str) -> None:
    a = world.a
    awake = Device(stack, a.tenant, a.controllers[0])
    asleep = Device(stack, a.tenant, a.controllers[1])  # switched supply: off by day
    awake.connect(first=True)
    asleep.connect(first=True)
    asleep.disconnect()
    _linked(client)
    try:
        response = client.post("/api/v1/commands", headers=world.headers(a, Role.OPERATOR), json={
            "target": {"group": a.group}, "action": {"type": "set_level", "level": 100},
            "expires_in_s": 3600})
        assert response.status_code == 202, response.text
        issued = response.json()
        assert issued["devices"] == 2 and issued["sent"] == 2
        command = parse_command(awake.expect())
        assert isinstance(command, SetLevel) and command.level == 100 and command.target == "all"
        progress = client.get(f"/api/v1/commands/{issued['id']}", headers=world.headers(a, Role.VIEWER))
        assert progress.json()["counts"]["sent"] == 2
        # dusk: the controller boots and its persistent session delivers what waited
        asleep.connect()
        late = parse_command(asleep.expect())
        assert isinstance(late, SetLevel) and late.id != command.id

        writer = Writer(db_dsn)
        try:
            now_us = int(time.time() * 1e6)
            writer.write([_ack(a.tenant, awake.controller, 1, command.id, "accepted"),
                          _ack(a.tenant, awake.controller, 2, command.id, "done"),
                          _ack(a.tenant, asleep.controller, 1, late.id, "failed", "dali bus short")],
                         now_us=max(now_us, TIME_MIN_US))
        finally:
            writer.close()
        body = client.get(f"/api/v1/commands/{issued['id']}",
                          headers=world.headers(a, Role.VIEWER)).json()
        assert body["summary"] == "1 of 2 done, 1 failed"
        assert body["counts"] == {"created": 0, "sent": 0, "accepted": 0, "done": 1, "failed": 1,
                                  "expired": 0}
        assert [(d["controller_id"], d["reason"]) for d in body["not_done"]] == [
            (asleep.controller, "dali bus short")]
        audit = client.get("/api/v1/audit?action=command.issue",
                           headers=world.headers(a, Role.ADMIN)).json()["items"]
        assert audit[0]["target"] == issued["id"]
    finally:
        awake.disconnect()
        asleep.disconnect()  # connected again at dusk: left running, it would take a later test's session


def test_an_expired_command_never_reaches_the_controller(stack: RunningStack, client: TestClient,
                                                         world: World) -> None:
    a = world.a
    device = Device(stack, a.tenant, a.controllers[0])
    device.connect(first=True)
    device.disconnect()
    _linked(client)
    response = client.post("/api/v1/commands", headers=world.headers(a, Role.TECHNICIAN), json={
        "target": {"luminaire": a.luminaires[1]}, "action": {"type": "identify"}, "expires_in_s": 10})
    assert response.status_code == 202 and response.json()["sent"] == 1
    path = f"/api/v1/commands/{response.json()['id']}"

    def expired() -> bool:
        return client.get(path, headers=world.headers(a, Role.VIEWER)).json()["counts"]["expired"] == 1

    wait_for(expired, 30, "the command to expire", interval_s=0.5)
    device.connect()
    try:
        with pytest.raises(queue.Empty):
            device.expect(timeout_s=2.0)
    finally:
        device.disconnect()
