"""A simulated controller's MQTT session for the command tests: persistent (clean start on the
first connection only, a day's session expiry), as the edge agent's.

Every connected device is tracked: a device left connected after its test keeps its network
thread reconnecting under the controller's client id for the rest of the session, and takes the
session over from a later test's device of the same id (the broker closes the older connection
each time; the later device loses its subscription and never sees its command). `leaked()` names
them so the `devices_closed` fixture can fail the test that forgot one."""

from __future__ import annotations

import json
import queue
import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING, ClassVar

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from luciole.broker_config import BrokerAccount
from luciole.broker_config import Role as BrokerRole
from wire.topics import Kind, topic

if TYPE_CHECKING:
    from tests.conftest import RunningStack

PASSWORD = "device-secret-device-secret-device-secret"


class Device:
    """A controller's MQTT session. Disconnect it (in a `finally`) before the test ends."""

    connected: ClassVar[set[Device]] = set()

    def __init__(self, stack: RunningStack, tenant: str, controller: str) -> None:
        self.endpoints = stack.endpoints
        self.topic = topic(tenant, controller, Kind.CMD)
        stack.stack.add_broker_account(BrokerAccount(controller, BrokerRole.DEVICE, tenant, controller),
                                       PASSWORD)
        self.received: queue.Queue[bytes] = queue.Queue()
        self.controller = controller
        self.client: mqtt.Client | None = None
        self.dropped = threading.Event()  # by the broker: Mosquitto closes the older connection
        self.closing = False  # of a client id taken by a newer one, with no reason sent

    def connect(self, first: bool = False) -> None:
        subscribed = threading.Event()
        granted: list[int] = []
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.controller,
                             protocol=mqtt.MQTTv5)
        client.username_pw_set(self.controller, PASSWORD)
        client.on_message = lambda c, u, m: self.received.put(bytes(m.payload))

        def on_subscribe(c: mqtt.Client, u: object, mid: int, codes: list[mqtt.ReasonCode],
                         p: object) -> None:
            granted.extend(code.value for code in codes)
            subscribed.set()

        def on_disconnect(c: mqtt.Client, u: object, f: object, reason: mqtt.ReasonCode,
                          p: object) -> None:
            if not self.closing:
                self.dropped.set()

        client.on_subscribe = on_subscribe
        client.on_disconnect = on_disconnect
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 86_400
        # a reconnection by paho's loop resumes the session; only the very first one starts clean
        client.connect(self.endpoints.mqtt_host, self.endpoints.mqtt_port,
                       clean_start=mqtt.MQTT_CLEAN_START_FIRST_ONLY if first else False,
                       properties=props)
        self.closing = False
        client.loop_start()
        self.client = client
        Device.connected.add(self)
        if first:
            client.subscribe(self.topic, qos=1)
            assert subscribed.wait(10), f"no SUBACK for {self.controller}"
            assert granted == [1], f"{self.controller}'s subscription refused: {granted}"

    def disconnect(self) -> None:
        assert self.client is not None
        self.closing = True
        self.client.disconnect()
        self.client.loop_stop()
        Device.connected.discard(self)

    def expect(self, timeout_s: float = 15.0) -> bytes:
        try:
            return self.received.get(timeout=timeout_s)
        except queue.Empty:
            if self.dropped.is_set():
                raise AssertionError(f"{self.controller}'s connection was dropped by the broker (its "
                                     "session taken over by another client with its id?)") from None
            raise

    @staticmethod
    def leaked() -> list[str]:
        """Disconnect the devices still connected; their controller ids."""
        names = sorted(device.controller for device in Device.connected)
        for device in list(Device.connected):
            device.disconnect()
        return names


def ack(tenant: str, controller: str, seq: int, command_id: str, status: str,
        reason: str | None = None) -> tuple[str, bytes]:
    """A controller's ack of a command, as ingest's writer takes it (topic, payload)."""
    doc = {"v": 1, "id": f"a{seq}", "controller": controller, "boot_id": 7, "seq": seq,
           "command_id": command_id, "status": status,
           "time": datetime.now(UTC).isoformat().replace("+00:00", "Z")}
    if reason is not None:
        doc["reason"] = reason
    return topic(tenant, controller, Kind.ACK), json.dumps(doc).encode()
