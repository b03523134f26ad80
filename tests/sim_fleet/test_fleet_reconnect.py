"""Publishers survive a broker restart: a persistent subscriber sees every sequence gap-free."""

from __future__ import annotations

import os
import signal
import threading
import time
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from controller_fw_sim.fleet import Fleet
from controller_fw_sim.fleet_inventory import build_inventory
from controller_fw_sim.fleet_publish import Backoff, MqttTarget, PublisherPool
from controller_fw_sim.fleet_runner import run_fleet
from luciole.stack import Stack, pid_alive
from wire.codec import decode_batch
from wire.records import RecordType
from wire.topics import Kind, parse_topic, subscription

pytestmark = pytest.mark.integration

EVENING = datetime(2025, 1, 14, 19, 0, tzinfo=UTC)
FAR_FUTURE_US = int(datetime(2100, 1, 1, tzinfo=UTC).timestamp() * 1e6)


class PersistentSubscriber:
    """QoS 1 subscriber with a session that outlives its connection (clean start false)."""

    def __init__(self, target: MqttTarget, client_id: str) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        self.client.username_pw_set(target.username, target.password)
        self.client.reconnect_delay_set(0.1, 1.0)
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda c, u, mid, codes, p: self.subscribed.set()
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
        self.client.connect(target.host, target.port, keepalive=5, clean_start=False, properties=props)
        self.client.subscribe(subscription(Kind.TELEMETRY), qos=1)
        self.client.loop_start()
        if not self.subscribed.wait(10):
            raise TimeoutError("subscription not acknowledged in 10 s")

    def _on_message(self, client, userdata, message) -> None:
        with self.lock:
            self.messages.append((message.topic, bytes(message.payload)))

    def snapshot(self) -> list[tuple[str, bytes]]:
        with self.lock:
            return list(self.messages)

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def wait_until(condition, timeout_s: float, what: str, interval_s: float = 0.05) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not within {timeout_s} s")
        time.sleep(interval_s)


def luminaire_seqs(messages: list[tuple[str, bytes]]) -> dict[str, set[int]]:
    batch = decode_batch([p for _, p in messages], FAR_FUTURE_US)
    assert len(batch.rejects) == 0
    out: dict[str, set[int]] = {}
    for (t, _), rtype, first in zip(
        messages, batch.msg_type.tolist(), batch.msg_first_seq.tolist(), strict=True
    ):
        if rtype == RecordType.LUMINAIRE:
            out.setdefault(parse_topic(t).controller, set()).add(first)
    return out


def test_publishers_reconnect_and_resend_after_a_broker_restart(own_stack: Stack) -> None:
    endpoints = own_stack.up()
    target = MqttTarget(endpoints.mqtt_host, endpoints.mqtt_port, endpoints.mqtt_username,
                        endpoints.mqtt_password, keepalive_s=5)
    n, m, sim_s = 60, 2, 900.0
    inv = build_inventory(n, m, seed=9)
    tenants, ids = inv.controller_tenant_ids(), list(inv.controller_ids)
    sub = PersistentSubscriber(target, "t-fleet-persistent-sub")
    fleet = Fleet(inv, start=EVENING, seed=9)
    pool = PublisherPool(target, tenants, ids, workers=2, window=50, client_prefix="t-reconnect",
                         backoff=Backoff(first_s=0.05, cap_s=1.0, give_up_s=60)).start()
    errors: list[BaseException] = []

    def runner() -> None:
        try:  # 90 sim s per wall s: 10 wall s of run, whatever the outage holds up
            run_fleet(fleet, pool, speed=90.0, duration_s=sim_s, stall_timeout_s=60)
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread below
            errors.append(exc)

    thread = threading.Thread(target=runner, daemon=True)
    thread.start()
    try:
        wait_until(lambda: fleet.t_s >= 180 and len(sub.snapshot()) > 0, 30, "first telemetry")
        pid = endpoints.mosquitto_pid
        os.kill(pid, signal.SIGTERM)  # a clean stop: mosquitto saves its persistent sessions
        wait_until(lambda: not pid_alive(pid), 15, "mosquitto exit")
        backlog = pool.backlog()
        wait_until(lambda: pool.backlog() > backlog + n // 2, 15, "messages held while the broker is down")
        restarted = own_stack.up()
        assert restarted.mqtt_port == endpoints.mqtt_port and restarted.mosquitto_pid != pid
        thread.join(120)
        assert not thread.is_alive() and not errors, errors
        pool.close(timeout_s=60)
        per_controller = int(round(sim_s / 60))

        def complete() -> bool:
            seqs = luminaire_seqs(sub.snapshot())
            return len(seqs) == n and all(len(s) == per_controller for s in seqs.values())

        wait_until(complete, 30, "every controller's telemetry at the subscriber", interval_s=0.25)
    finally:
        pool.terminate()
        sub.stop()
    seqs = luminaire_seqs(sub.snapshot())
    assert sorted(seqs) == ids
    for c, s in seqs.items():
        assert s == set(range(0, per_controller * m, m)), f"{c}: gap in {sorted(s)}"
    got = len([1 for _, p in sub.snapshot() if p[3] == RecordType.LUMINAIRE])
    assert got >= n * per_controller  # duplicates allowed, gaps not
