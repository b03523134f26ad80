"""The API's MQTT link: publishes commands at QoS 1 with an MQTT 5 message expiry, and says which
ones the broker took (PUBACK). Retries reconnecting through wire.retry."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from api.clock import ApiClock
from wire.retry import Backoff

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outgoing:
    topic: str
    payload: bytes
    expires_at: datetime  # the broker drops it (queued for a sleeping controller) by then


class CommandLink:
    """One paho client on its own network thread; `publish` waits for the PUBACKs off the loop."""

    def __init__(self, host: str, port: int, username: str, password: str,
                 backoff: Backoff = Backoff(initial_s=0.5, max_s=10.0),
                 puback_timeout_s: float = 10.0, clock: ApiClock | None = None) -> None:
        self.host, self.port = host, port
        self.clock = clock if clock is not None else ApiClock()  # expiries are on this clock
        self.puback_timeout_s = puback_timeout_s
        self.connected = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=username,
                                  protocol=mqtt.MQTTv5)
        self.client.username_pw_set(username, password)
        self.client.reconnect_delay_set(min_delay=max(1, int(backoff.initial_s)),
                                        max_delay=max(1, int(backoff.max_s)))
        self.client.max_queued_messages_set(0)
        self.client.on_connect = lambda c, u, f, reason, p: (
            self.connected.set() if not reason.is_failure else log.warning(
                "broker refused the api account reason=%s", reason))
        self.client.on_disconnect = lambda c, u, f, reason, p: self.connected.clear()

    def start(self) -> None:
        self.client.connect_async(self.host, self.port, keepalive=30)
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _publish_all(self, messages: list[Outgoing]) -> list[bool]:
        infos = []
        for message in messages:
            props = Properties(PacketTypes.PUBLISH)
            props.MessageExpiryInterval = self.clock.expiry_interval_s(message.expires_at)
            infos.append(self.client.publish(message.topic, message.payload, qos=1, properties=props))
        deadline = time.monotonic() + self.puback_timeout_s
        taken = []
        for info in infos:
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                taken.append(False)
                continue
            try:
                info.wait_for_publish(max(0.0, deadline - time.monotonic()))
            except (RuntimeError, ValueError):
                taken.append(False)
                continue
            taken.append(info.is_published())
        return taken

    async def publish(self, messages: list[Outgoing]) -> list[bool]:
        """Publish; True for each message the broker acknowledged in time."""
        if not messages:
            return []
        if not self.connected.is_set():
            return [False] * len(messages)
        return await asyncio.to_thread(self._publish_all, messages)
