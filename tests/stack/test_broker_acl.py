"""A hostile controller against the real broker (dynamic-security plugin): it cannot divert what
ingest receives, take another client's id, or reach another controller's topics; the ingest
account cannot command; a controller cannot manage accounts."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from luciole.broker_config import CONTROL_TOPIC, BrokerAccount, Role, new_secret
from luciole.compose import ingest_account
from tests.conftest import RunningStack
from tests.mqtt_probe import Probe
from wire.topics import INGEST_SHARE_GROUP, Kind, shared_subscription, topic

pytestmark = pytest.mark.integration

TENANT_A, TENANT_B = "ixelles", "uccle"


@dataclass
class Accounts:
    stack: RunningStack
    a: str  # controller A (tenant ixelles), the attacker
    b: str  # controller B (tenant uccle), the victim
    passwords: dict[str, str]

    def probe(self, username: str, client_id: str | None = None,
              password: str | None = None) -> Probe:
        e = self.stack.endpoints
        return Probe(e.mqtt_host, e.mqtt_port, username,
                     password if password is not None else self.passwords[username],
                     client_id=client_id or username)

    def controller(self, name: str) -> Probe:
        return self.probe(name)


@pytest.fixture(scope="module")
def accounts(stack: RunningStack) -> Accounts:
    suffix = uuid.uuid4().hex[:6]
    a, b = f"ctl-a-{suffix}", f"ctl-b-{suffix}"
    passwords = {}
    for name, tenant in ((a, TENANT_A), (b, TENANT_B)):
        passwords[name] = new_secret()
        account = BrokerAccount(name, Role.DEVICE, tenant, name)
        stack.stack.add_broker_account(account, passwords[name])
    for service, role in ((ingest_account(1), Role.INGEST), ("api", Role.API)):
        passwords[service] = stack.stack.service_account(service, role)[1]
    return Accounts(stack, a, b, passwords)


@pytest.fixture
def ingest(accounts: Accounts) -> Iterator[Probe]:
    """Ingest worker 1's account in ingest's shared group, as the real worker subscribes."""
    with accounts.probe(ingest_account(1)) as probe:
        codes = probe.subscribe(shared_subscription(Kind.TELEMETRY, INGEST_SHARE_GROUP),
                                retained=False)
        assert not codes[0].is_failure, codes
        yield probe


def _failed(codes: list) -> bool:
    return all(code.is_failure for code in codes)


def test_wrong_password_is_refused(accounts: Accounts) -> None:
    with accounts.probe(accounts.a, password="wrong") as probe:
        assert not probe.accepted


HOSTILE_SUBSCRIPTIONS = [
    shared_subscription(Kind.TELEMETRY, INGEST_SHARE_GROUP),  # join ingest's group
    f"$share/{INGEST_SHARE_GROUP}/luciole/#",
    f"$share/{INGEST_SHARE_GROUP}/#",
    "$share/attacker/luciole/v1/+/+/telemetry",
    "luciole/v1/+/+/telemetry",
    "luciole/#",
    "#",
    "+/#",
    "$SYS/#",
    "$CONTROL/#",
]


def test_no_subscription_of_a_controller_reduces_what_ingest_receives(
        accounts: Accounts, ingest: Probe) -> None:
    b_telemetry = topic(TENANT_B, accounts.b, Kind.TELEMETRY)
    # were any granted, the broker would deliver half of the group's messages to the attacker
    # (and keep queueing them while it is offline on a persistent session)
    with accounts.probe(accounts.a) as attacker:
        for hostile in HOSTILE_SUBSCRIPTIONS:
            assert _failed(attacker.subscribe(hostile, retained=False)), hostile
    with accounts.controller(accounts.b) as victim:
        for i in range(100):
            victim.publish(b_telemetry, f"reading {i}".encode())
    got = [m for m in ingest.drain(100, timeout_s=20) if m.topic == b_telemetry]
    assert [m.payload for m in got] == [f"reading {i}".encode() for i in range(100)]


def test_a_controller_cannot_take_another_clients_id(accounts: Accounts) -> None:
    cmd_b = topic(TENANT_B, accounts.b, Kind.CMD)
    with accounts.controller(accounts.b) as victim:
        assert not _failed(victim.subscribe(cmd_b, retained=False))
        for stolen in (accounts.b, ingest_account(1), "api", "fleet-1", "luciole-admin"):
            with accounts.probe(accounts.a, client_id=stolen) as thief:
                assert not thief.accepted, stolen
        # the victim's connection and session survived: a command still reaches it
        with accounts.probe("api") as api:
            api.publish(cmd_b, b"still here")
        assert victim.expect().payload == b"still here"


def test_a_controller_cannot_publish_or_read_another_controllers_topics(
        accounts: Accounts, ingest: Probe) -> None:
    own = topic(TENANT_A, accounts.a, Kind.TELEMETRY)
    with accounts.controller(accounts.a) as attacker:
        for kind in (Kind.CMD, Kind.CONFIG, Kind.TELEMETRY, Kind.STATE, Kind.ACK):
            assert _failed(attacker.subscribe(topic(TENANT_B, accounts.b, kind), retained=False))
        attacker.publish(topic(TENANT_B, accounts.b, Kind.TELEMETRY), b"forged")
        attacker.publish(topic(TENANT_A, accounts.b, Kind.TELEMETRY), b"forged tenant")
        attacker.publish(topic(TENANT_B, accounts.a, Kind.TELEMETRY), b"wrong tenant")
        attacker.publish(topic(TENANT_A, accounts.a, Kind.CMD), b"own cmd is read-only")
        attacker.publish(own, b"genuine")
        # one client's messages are handled in order: anything forged would have come first
        first = ingest.expect()
        while accounts.a not in first.topic and accounts.b not in first.topic:
            first = ingest.expect()  # another test's telemetry, queued before this one
        assert (first.topic, first.payload) == (own, b"genuine")


def test_the_ingest_account_cannot_command_and_the_api_can(accounts: Accounts) -> None:
    cmd_b = topic(TENANT_B, accounts.b, Kind.CMD)
    with accounts.controller(accounts.b) as victim:
        assert not _failed(victim.subscribe(cmd_b, retained=False))
        with accounts.probe(ingest_account(1)) as ingest_client:
            ingest_client.publish(cmd_b, b'{"type": "set_level", "level": 0}')
            assert _failed(ingest_client.subscribe("luciole/v1/+/+/cmd", retained=False))
        with accounts.probe("api") as api:
            api.publish(cmd_b, b"from the api")
        assert victim.expect().payload == b"from the api"


def test_a_controller_cannot_manage_accounts(accounts: Accounts) -> None:
    sneaky, password = f"sneaky-{uuid.uuid4().hex[:6]}", new_secret()
    create = {"commands": [{"command": "createClient", "username": sneaky, "password": password,
                            "roles": [{"rolename": "admin"}]}]}
    with accounts.controller(accounts.a) as attacker:
        attacker.publish(CONTROL_TOPIC, json.dumps(create).encode())
    with accounts.probe(sneaky, client_id=sneaky, password=password) as probe:
        assert not probe.accepted


def test_only_ingest_publishes_receipts_and_a_controller_reads_only_its_own(
        accounts: Accounts) -> None:
    """A receipt releases readings from a controller's outbox: no controller may publish one
    (a forged receipt would make its victim drop readings the centre never stored), nor read
    another's."""
    b_receipt = topic(TENANT_B, accounts.b, Kind.RECEIPT)
    a_receipt = topic(TENANT_A, accounts.a, Kind.RECEIPT)
    with accounts.controller(accounts.b) as victim, accounts.controller(accounts.a) as attacker:
        assert not _failed(victim.subscribe(b_receipt, retained=False))
        assert not _failed(attacker.subscribe(a_receipt, retained=False))
        for hostile in (b_receipt, "luciole/v1/+/+/receipt", f"luciole/v1/{TENANT_B}/+/receipt",
                        f"$share/x/{b_receipt}"):
            assert _failed(attacker.subscribe(hostile, retained=False)), hostile
        attacker.publish(b_receipt, b"forged")  # PUBACKed (MQTT 5 may not say no), not delivered
        attacker.publish(a_receipt, b"forged for itself")
        with accounts.probe(ingest_account(1)) as ingest_client:
            ingest_client.publish(b_receipt, b"from ingest")
            ingest_client.publish(a_receipt, b"from ingest to a")
        # the forged ones were handled before ingest's (each publish waited for its PUBACK)
        assert victim.expect().payload == b"from ingest"
        assert attacker.expect().payload == b"from ingest to a"
        assert victim.received.empty() and attacker.received.empty()
    with accounts.probe("api") as api:  # nor may the API
        with accounts.controller(accounts.b) as victim:
            assert not _failed(victim.subscribe(b_receipt, retained=False))
            api.publish(b_receipt, b"from the api")
            with accounts.probe(ingest_account(1)) as ingest_client:
                ingest_client.publish(b_receipt, b"marker")
            assert victim.expect().payload == b"marker"
