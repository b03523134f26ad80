"""A small synchronous paho-mqtt 2 client for tests: connect, publish, collect what arrives."""

from __future__ import annotations

import queue
import threading
import time
import uuid
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions


@dataclass
class Probe:
    host: str
    port: int
    username: str
    password: str
    client_id: str = field(default_factory=lambda: f"probe-{uuid.uuid4().hex[:8]}")
    received: queue.Queue[mqtt.MQTTMessage] = field(default_factory=queue.Queue)

    def __post_init__(self) -> None:
        self._connected = threading.Event()
        self._subacks: queue.Queue[list] = queue.Queue()
        self.connect_reason: object = None
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id,
                                  protocol=mqtt.MQTTv5)
        self.client.username_pw_set(self.username, self.password)
        self.client.on_connect = self._on_connect
        self.client.on_message = lambda c, u, m: self.received.put(m)
        self.client.on_subscribe = lambda c, u, mid, codes, p: self._subacks.put(codes)

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        self.connect_reason = reason_code
        self._connected.set()

    def __enter__(self) -> Probe:
        self.client.connect(self.host, self.port, keepalive=30)
        self.client.loop_start()
        if not self._connected.wait(10):
            raise TimeoutError("no CONNACK in 10 s")
        return self

    def __exit__(self, *exc) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    @property
    def accepted(self) -> bool:
        return not getattr(self.connect_reason, "is_failure", True)

    def subscribe(self, topic: str, qos: int = 1, retained: bool = True) -> list:
        """Subscribe and wait for the SUBACK; retained=False skips messages retained earlier
        (MQTT 5 retain handling 2), so other tests' birth messages do not arrive."""
        self.client.subscribe(topic, options=SubscribeOptions(qos=qos, retainHandling=0 if retained else 2))
        return self._subacks.get(timeout=10)

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False):
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        info.wait_for_publish(timeout=10)
        return info

    def expect(self, timeout_s: float = 10.0) -> mqtt.MQTTMessage:
        return self.received.get(timeout=timeout_s)

    def drain(self, count: int, timeout_s: float = 10.0) -> list[mqtt.MQTTMessage]:
        deadline = time.monotonic() + timeout_s
        got = []
        while len(got) < count:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"received {len(got)} of {count} messages")
            got.append(self.received.get(timeout=left))
        return got


__all__ = ["Probe", "Properties", "PacketTypes"]
