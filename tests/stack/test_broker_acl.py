"""Per-device credentials and ACLs on the real broker: a controller reaches only its own topics."""

from __future__ import annotations

import pytest

from luciole.broker_config import BrokerAccount, Role
from tests.mqtt_probe import Probe
from wire.topics import Kind, topic

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def devices(stack):
    for name in ("ctl-a", "ctl-b"):
        stack.stack.add_broker_account(BrokerAccount(name, Role.DEVICE, "ixelles", name), f"pw-{name}")
    return stack.endpoints


def _probe(endpoints, username, password) -> Probe:
    return Probe(endpoints.mqtt_host, endpoints.mqtt_port, username, password)


def test_wrong_password_is_refused(devices) -> None:
    with _probe(devices, "ctl-a", "wrong") as probe:
        assert not probe.accepted


def test_device_cannot_publish_to_another_controllers_topics(devices) -> None:
    e = devices
    with _probe(e, e.mqtt_username, e.mqtt_password) as watcher, _probe(e, "ctl-a", "pw-ctl-a") as a:
        assert a.accepted
        watcher.subscribe("luciole/#", retained=False)
        a.publish(topic("ixelles", "ctl-b", Kind.TELEMETRY), b"forged")
        a.publish(topic("otherten", "ctl-a", Kind.TELEMETRY), b"wrong tenant")
        a.publish(topic("ixelles", "ctl-a", Kind.CMD), b"own cmd topic is read-only")
        a.publish(topic("ixelles", "ctl-a", Kind.TELEMETRY), b"genuine")
        # one client's messages arrive in order: anything forged would have come first
        first = watcher.expect()
        assert (first.topic, first.payload) == (topic("ixelles", "ctl-a", Kind.TELEMETRY), b"genuine")
        assert watcher.received.empty()


def test_device_cannot_subscribe_to_another_controllers_commands(devices) -> None:
    e = devices
    with _probe(e, e.mqtt_username, e.mqtt_password) as service, _probe(e, "ctl-a", "pw-ctl-a") as a:
        granted_other = a.subscribe(topic("ixelles", "ctl-b", Kind.CMD))
        granted_own = a.subscribe(topic("ixelles", "ctl-a", Kind.CMD))
        service.publish(topic("ixelles", "ctl-b", Kind.CMD), b"for b")
        service.publish(topic("ixelles", "ctl-a", Kind.CMD), b"for a")
        got = a.expect()
        assert got.payload == b"for a"
        assert a.received.empty()
        assert not getattr(granted_own[0], "is_failure", False)
        # mosquitto grants the subscription but its ACL delivers nothing of ctl-b's
        assert granted_other is not None
