"""The broker's optional TLS listener: controllers that trust the CA connect, others do not."""

from __future__ import annotations

import ssl
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from tests.conftest import throwaway_stack
from paho.mqtt.enums import CallbackAPIVersion

from tests.mqtt_probe import Probe

pytestmark = pytest.mark.integration


@pytest.fixture
def tls_stack(tmp_path: Path):
    stack = throwaway_stack(tmp_path / "var", mqtt_tls_port=0)
    yield stack, stack.up()
    stack.down()


def test_tls_round_trip_with_the_stack_ca(tls_stack) -> None:
    _, e = tls_stack
    assert e.mqtt_tls_port and e.mqtt_ca_file
    with Probe(e.mqtt_host, e.mqtt_port, e.mqtt_username, e.mqtt_password) as plain:
        plain.subscribe("luciole/#")
        secure = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        secure.tls_set(ca_certs=e.mqtt_ca_file, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        secure.username_pw_set(e.mqtt_username, e.mqtt_password)
        secure.connect(e.mqtt_host, e.mqtt_tls_port)
        secure.loop_start()
        try:
            secure.publish("luciole/v1/t/c/event", b"over tls", qos=1).wait_for_publish(10)
        finally:
            secure.disconnect()
            secure.loop_stop()
        assert plain.expect().payload == b"over tls"


def test_a_client_that_does_not_trust_the_ca_is_refused(tls_stack) -> None:
    _, e = tls_stack
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.tls_set(tls_version=ssl.PROTOCOL_TLS_CLIENT)  # system CAs only
    with pytest.raises(ssl.SSLCertVerificationError):
        client.connect(e.mqtt_host, e.mqtt_tls_port)
