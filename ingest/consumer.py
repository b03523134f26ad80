"""The MQTT shell of a worker: paho-mqtt 2 (MQTT 5, persistent session, manual acks, shared
subscription). The network thread only appends messages to a bounded deque; the batcher thread
closes batches, has the Writer commit them, and only then acknowledges their message ids. Which
ids, and when to stop reading, is decided by `ingest.deliveries.Deliveries` (sans-I/O); this module
only moves messages, acknowledgements and receipts.

Memory is bounded by the broker's flow control: with Receive Maximum R the broker sends at most R
unacknowledged QoS 1 messages, so while the database is down the worker simply stops
acknowledging, holds at most R messages, and retries with backoff.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from ingest import metrics, rollup
from ingest.batching import BatchPolicy, estimated_records
from ingest.deliveries import Deliveries, Delivery
from ingest.failures import Failure
from ingest.isolation import BatchStore, Outcome
from ingest.settings import IngestSettings
from ingest.writer import Writer
from wire.retry import Attempts, Backoff
from wire.topics import UPWARD_KINDS, shared_subscription

log = logging.getLogger(__name__)

_POLL_S = 0.002  # batcher's wait step while a batch fills
_UNREADABLE_TOPIC = "(topic not UTF-8)"


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    username: str | None
    password: str | None


@dataclass
class Totals:
    messages: int = 0
    records: int = 0
    duplicates: int = 0
    rejects: int = 0
    batches: int = 0
    db_errors: int = 0
    internal_errors: int = 0


class Consumer:
    """One ingest worker: `run()` blocks until `stop()`."""

    def __init__(self, settings: IngestSettings, broker: Endpoint, dsn: str) -> None:
        self.settings = settings
        self.policy = BatchPolicy(settings.batch_max_messages, settings.batch_max_records,
                                  settings.batch_max_wait_s)
        self.writer = Writer(dsn, settings.registry_refresh_min_s, receipts=settings.receipts,
                             sim_clock=settings.sim_clock)
        self._dsn = dsn
        self.store = BatchStore(self.writer,
                                Backoff(initial_s=settings.retry_initial_s, max_s=settings.retry_max_s),
                                self._stopping_wait, on_failure=self._count_failure)
        self.totals = Totals()
        self._broker = broker
        self._inbox: deque[Delivery] = deque()
        self.deliveries = Deliveries(settings.receive_maximum)
        self._subscribed = threading.Event()
        self._stopping = threading.Event()
        self._paused_logged_at = float("-inf")
        self._last_received = time.monotonic()
        metrics.INFLIGHT.set_function(self.unacked)
        self.client = self._client()

    def unacked(self) -> int:
        """Messages received and neither acknowledged nor dropped."""
        return self.deliveries.unacked()

    @property
    def peak_unacked(self) -> int:
        return self.deliveries.peak_unacked

    # ------------------------------------------------------------------ MQTT
    def _client(self) -> mqtt.Client:
        s = self.settings
        client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=s.client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        if self._broker.username:
            client.username_pw_set(self._broker.username, self._broker.password)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        client.reconnect_delay_set(1, 10)
        return client

    def _connect_properties(self) -> Properties:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.settings.session_expiry_s
        props.ReceiveMaximum = self.settings.receive_maximum
        return props

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any,
                    properties: Any) -> None:
        if reason_code.is_failure:
            log.warning("mqtt connect refused reason=%s", reason_code)
            return
        self.deliveries.connected()
        # retained births and last wills come with a new subscription only, not on every
        # reconnection of the persistent session (the ledger would drop them, but a fleet's worth)
        options = SubscribeOptions(qos=1, retainHandling=SubscribeOptions.RETAIN_SEND_IF_NEW_SUB)
        client.subscribe([(shared_subscription(kind, self.settings.share_group), options)
                          for kind in UPWARD_KINDS])
        log.info("mqtt connected client_id=%s session_present=%s generation=%d",
                 self.settings.client_id, flags.session_present, self.deliveries.generation)

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reason_codes: Any,
                      properties: Any) -> None:
        failed = [rc for rc in reason_codes if rc.is_failure]
        if failed:
            log.error("mqtt subscription refused reasons=%s", failed)
            return
        self._subscribed.set()
        metrics.CONNECTED.set(1)
        log.info("mqtt subscribed group=%s", self.settings.share_group)

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any,
                       properties: Any) -> None:
        self.deliveries.disconnected()  # unacked messages come again on the next connection
        self._subscribed.clear()
        metrics.CONNECTED.set(0)
        if not self._stopping.is_set():
            log.warning("mqtt disconnected reason=%s; the broker redelivers unacked messages", reason_code)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        # Receive Maximum should stop the broker at `limit` unacknowledged messages, but
        # Mosquitto 2.0.11 overruns it once acknowledgements flow; so the bound is enforced here
        # too: this (network) thread stops reading, TCP backpressure holds the rest in the broker.
        deliveries = self.deliveries
        if deliveries.must_pause():
            now = time.monotonic()
            if now - self._paused_logged_at >= 30.0:
                self._paused_logged_at = now
                log.warning("%d messages unacknowledged (the broker overran Receive Maximum): "
                            "pausing reads until a batch commits", deliveries.limit)
            while deliveries.must_pause() and not self._stopping.is_set():
                time.sleep(0.002)
        mid = message.mid if message.qos == 1 else 0  # 0: nothing to acknowledge
        try:
            topic = message.topic
        except UnicodeDecodeError:  # brokers refuse such topics; if one came, it is a bad topic
            topic = _UNREADABLE_TOPIC
        self._inbox.append(deliveries.received_message(mid, topic, bytes(message.payload)))
        self._last_received = time.monotonic()

    def wait_subscribed(self, timeout_s: float) -> bool:
        return self._subscribed.wait(timeout_s)

    # ------------------------------------------------------------------ lifecycle
    def start_network(self) -> None:
        b = self._broker
        self.client.connect(b.host, b.port, keepalive=self.settings.keepalive_s, clean_start=False,
                            properties=self._connect_properties())
        self.client.loop_start()

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> None:
        """Connect, then batch, write and acknowledge until stop(); disconnects at the end."""
        self.start_network()
        fold = threading.Thread(target=self._fold_loop, name="ingest-fold")
        fold.start()
        try:
            while not self._stopping.is_set():
                batch = self._collect()
                if batch:
                    self._commit_and_ack(batch)
                self._maybe_reconnect_idle()
        finally:
            self._stopping.set()
            self.client.disconnect()
            self.client.loop_stop()
            self.writer.close()
            fold.join()

    def _maybe_reconnect_idle(self) -> None:
        """Mosquitto 2.0.11 can stop sending to a client whose Receive Maximum it mis-counted
        (it overruns it, then stalls with the session's queue full). A fresh connection resets
        the count; done only with nothing unacknowledged, so nothing is redelivered."""
        if not self._idle_reconnect_due():
            return
        log.info("nothing received for %.0fs: reconnecting to reset the broker's flow control",
                 self.settings.idle_reconnect_s)
        self._last_received = time.monotonic()
        self.client.disconnect()
        self.client.loop_stop()
        self.client = self._client()
        self.start_network()

    def _idle_reconnect_due(self) -> bool:
        idle_s = self.settings.idle_reconnect_s
        return bool(idle_s) and time.monotonic() - self._last_received >= idle_s and not self.unacked()

    # ------------------------------------------------------------------ batching
    def _collect(self) -> list[Delivery]:
        batch: list[Delivery] = []
        records = 0
        opened = 0.0
        inbox = self._inbox
        take = self.deliveries.take
        while not self._stopping.is_set():
            while inbox and not self.policy.full(len(batch), records):
                item = inbox.popleft()
                if not take(item):
                    continue  # from a closed connection: it will be redelivered
                if not batch:
                    opened = time.monotonic()
                batch.append(item)
                records += estimated_records(len(item.payload))
            age = time.monotonic() - opened if batch else 0.0
            if self.policy.due(len(batch), records, age):
                break
            if not batch and self._idle_reconnect_due():
                break
            time.sleep(min(_POLL_S, self.policy.wait_s(len(batch), age)) or _POLL_S)
        return batch

    def _stopping_wait(self, delay_s: float) -> bool:
        return self._stopping.wait(delay_s)

    def _count_failure(self, _failure: Failure) -> None:
        self.totals.db_errors += 1

    def _commit_and_ack(self, batch: list[Delivery]) -> None:
        """Store the batch (its bad messages dead-lettered, see ingest.isolation), then
        acknowledge every message of it received on the current connection."""
        outcome = self.store.write([(d.topic, d.payload) for d in batch])
        if outcome is None:
            return  # stopping: not acknowledged, the broker redelivers to the next session
        self._send_receipts(outcome.result.receipts)
        for mid in self.deliveries.committed(batch):
            self.client.ack(mid, 1)
        self._account(outcome, len(batch))

    def _send_receipts(self, receipts: list[tuple[str, bytes]]) -> None:
        """Tell each controller what this batch stored or dead-lettered (QoS 0: a lost receipt
        costs a resend, which the ledger drops and confirms again). Only after the commit."""
        for name, payload in receipts:
            self.client.publish(name, payload, qos=0)
        metrics.RECEIPTS.inc(len(receipts))

    def _account(self, outcome: Outcome, n: int) -> None:
        result = outcome.result
        t = self.totals
        t.internal_errors += outcome.internal_errors
        t.batches += 1
        t.messages += n
        t.records += result.records
        t.duplicates += result.duplicates
        t.rejects += sum(result.rejects.values())
        metrics.MESSAGES.labels("all").inc(n)
        if result.luminaire_records:
            metrics.RECORDS.labels("luminaire").inc(result.luminaire_records)
        if result.sensor_records:
            metrics.RECORDS.labels("sensor").inc(result.sensor_records)
        if result.events:
            metrics.RECORDS.labels("event").inc(result.events)
        if result.acks:
            metrics.RECORDS.labels("ack").inc(result.acks)
        if result.states:
            metrics.RECORDS.labels("state").inc(result.states)
        if result.duplicates:
            metrics.DUPLICATES.inc(result.duplicates)
        for reason, count in result.rejects.items():
            metrics.REJECTS.labels(reason).inc(count)
        metrics.BATCH_MESSAGES.observe(n)
        metrics.BATCH_RECORDS.observe(result.records)
        metrics.COMMIT_SECONDS.observe(result.commit_s)
        if result.lag_s.shape[0]:
            metrics.LAG_SECONDS.observe(float(np.median(result.lag_s)))
            metrics.LAG_MAX_SECONDS.set(float(result.lag_s.max()))

    # ------------------------------------------------------------------ the fold
    def _fold_loop(self) -> None:
        """Fold what was committed into the live state and the energy rollups, every
        rollup_interval_s, in this thread with a connection of its own: the pass runs in the
        database while the batcher goes on committing (one worker folds at a time, under the
        fold's advisory lock). A failed pass leaves its rows for the next one."""
        interval = max(self.settings.rollup_interval_s, 0.05)
        failures = Attempts(Backoff(initial_s=self.settings.retry_initial_s,
                                    max_s=self.settings.retry_max_s))
        conn: psycopg.Connection | None = None
        wait = interval
        while not self._stopping.wait(wait):
            started = time.perf_counter()
            try:
                if conn is None or conn.closed or conn.broken:
                    conn = psycopg.connect(self._dsn, autocommit=False, connect_timeout=5)
                done = rollup.refresh(conn)
            except Exception as exc:  # a failed pass (psycopg.Error) or a bug: rows stay queued
                metrics.DB_ERRORS.labels(type(exc).__name__).inc()
                log.warning("fold pass failed error=%s; its rows stay for the next pass",
                            type(exc).__name__, exc_info=not isinstance(exc, psycopg.Error))
                if conn is not None:
                    conn.close()
                conn = None
                wait = failures.failed()
                continue
            failures.succeeded()
            elapsed = time.perf_counter() - started
            if done is not None and done.luminaires:
                metrics.ROLLUP_SECONDS.observe(elapsed)
            wait = max(0.0, interval - elapsed)
        if conn is not None:
            conn.close()
