"""The broker's optional TLS listener: controllers that trust the CA connect, others do not."""

from __future__ import annotations

import ssl
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.conftest import throwaway_stack
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


def _listeners(port: int) -> set[str]:
    """Addresses (hex, as /proc/net/tcp has them) listening on `port`."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, hex_port = local.split(":")
        if state == "0A" and int(hex_port, 16) == port:
            found.add(address)
    return found


def test_devices_get_tls_while_plaintext_stays_on_loopback_and_mosquitto_is_not_root(
        tmp_path: Path) -> None:
    # the TLS listener on another address than the plaintext one (127.0.0.2 stands for the
    # public interface without opening a port to the network during the test)
    stack = throwaway_stack(tmp_path / "var", mqtt_tls_port=0, mqtt_tls_bind="127.0.0.2")
    try:
        e = stack.up()
        assert _listeners(e.mqtt_port) == {"0100007F"}  # 127.0.0.1 only
        assert _listeners(e.mqtt_tls_port) == {"0200007F"}  # 127.0.0.2
        status = Path(f"/proc/{e.mosquitto_pid}/status").read_text()
        uid = int(next(x for x in status.splitlines() if x.startswith("Uid:")).split()[1])
        assert uid != 0, "mosquitto runs as root"
        with pytest.raises(ConnectionRefusedError):  # no plaintext on the devices' address
            Probe("127.0.0.2", e.mqtt_port, e.mqtt_username, e.mqtt_password).__enter__()
    finally:
        stack.down()
