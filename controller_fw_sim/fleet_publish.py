"""Fleet MQTT shell: publisher processes (paho-mqtt 2, MQTT 5, QoS 1) and the command link.

paho is pure Python and holds the GIL, so telemetry goes out through several worker
processes, each with its own connection and a bounded window of in-flight QoS 1 messages
(paho's queue handling grows costly past a few hundred in flight). Controller c is published
by worker ``c % workers``; topic strings are built once per worker. The parent hands work
over a pipe as numpy rows and reads back acknowledged counts from shared memory, which is
its back-pressure. `CommandLink` subscribes to every controller's `cmd` topic and only
enqueues what arrives; `Fleet.handle_command` does the work.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import queue
import random
import resource
import select
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

import numpy as np
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from controller_fw_sim.publish_window import PublishError, PublisherWindow, Reconnect, Work
from wire.topics import Kind, TopicError, parse_topic, subscription, topic

log = logging.getLogger(__name__)

KINDS = (Kind.TELEMETRY, Kind.STATE, Kind.ACK, Kind.EVENT)
_KIND_CODE = {k: i for i, k in enumerate(KINDS)}
# shared counters per worker
_SUBMITTED, _ACKED, _MAXRSS_KB, _FAILED, _FIELDS = 0, 1, 2, 3, 4
SESSION_EXPIRY_S = 3600  # the broker keeps a publisher's session across a short outage


@dataclass(frozen=True)
class MqttTarget:
    host: str
    port: int
    username: str
    password: str
    keepalive_s: int = 60
    client_id: str | None = None  # the id the broker binds to this account, if it binds one


def make_client(target: MqttTarget, client_id: str) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.username_pw_set(target.username, target.password)
    return client


def connect_manual(client: mqtt.Client, target: MqttTarget, timeout_s: float = 10.0,
                   properties: Properties | None = None) -> None:
    """Connect and wait for CONNACK by driving the client's loop in this thread."""
    result: list = []
    client.on_connect = lambda c, u, flags, reason, props: result.append(reason)
    client.connect(target.host, target.port, keepalive=target.keepalive_s, properties=properties)
    deadline = time.monotonic() + timeout_s
    while not result:
        if time.monotonic() > deadline:
            raise PublishError(f"no CONNACK from {target.host}:{target.port} in {timeout_s} s")
        if client.loop(timeout=0.1) != mqtt.MQTT_ERR_SUCCESS and not result:
            raise PublishError(f"connection to {target.host}:{target.port} failed")
    if result[0].is_failure:
        raise PublishError(f"broker refused the connection: {result[0]}")


def _topics_of(kind: Kind, tenants: Sequence[str], controllers: Sequence[str]) -> list[str]:
    return [topic(t, c, kind) for t, c in zip(tenants, controllers, strict=True)]


def _connect_properties(session_expiry_s: int) -> Properties:
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = session_expiry_s
    return props


def _worker(w: int, workers: int, conn, target: MqttTarget, tenants: list[str], controllers: list[str],
            counters, window: int, client_id: str, backoff: Reconnect) -> None:
    """One publisher process: publish what arrives on `conn` at QoS 1 until it sends None.

    The I/O only: paho's socket, the parent's pipe and select. What to publish, when to reconnect
    and when the work is done is `PublisherWindow`'s (controller_fw_sim.publish_window). A lost
    connection is retried; paho keeps every unacknowledged message and sends it again (DUP) once
    the broker accepts the reconnection (clean start false), so nothing handed to the worker is
    lost, at the cost of possible duplicates.
    """
    mine = slice(w, None, workers)
    topics = [_topics_of(k, tenants[mine], controllers[mine]) for k in KINDS]
    base = w * _FIELDS
    connack: list = []  # reason codes of CONNACKs not yet handled
    client = make_client(target, client_id)
    client.max_inflight_messages_set(window)
    try:
        connect_manual(client, target, properties=_connect_properties(SESSION_EXPIRY_S))
    except (PublishError, OSError) as exc:
        conn.send(("error", str(exc)))
        return
    state = PublisherWindow(window, backoff, random.Random(client_id), time.monotonic())
    client.on_publish = lambda c, u, mid, reason, props: state.puback(reason.is_failure)
    client.on_connect = lambda c, u, flags, reason, props: connack.append(reason)
    conn.send(("ready", None))
    sock = client.socket()
    publish = client.publish

    def lose(why: str) -> None:
        nonlocal sock
        if state.lost(time.monotonic()):
            log.warning("publisher=%d connection lost (%s); %d messages unacknowledged",
                        w, why, state.in_flight())
        sock = None

    try:
        while True:
            if state.reconnect_due(time.monotonic()):
                try:
                    client.reconnect()  # clean start false: paho resends what was in flight
                    sock = client.socket()
                    state.socket_opened()
                except OSError as exc:
                    lose(f"reconnect: {exc}")
            while connack:
                reason = connack.pop(0)
                if state.connack(not reason.is_failure, time.monotonic()):
                    log.info("publisher=%d reconnected after %.1f s", w, time.monotonic() - state.lost_at)
                else:
                    client.disconnect()
                    lose(f"refused: {reason}")
            for chunk in state.take():
                item = chunk.work
                tlist, retain, ctl, rows = item.topics, item.retain, item.ctl, item.rows
                for i in range(chunk.start, chunk.end):
                    row = rows[i]
                    publish(tlist[ctl[i]], row if isinstance(row, bytes) else row.tobytes(), 1, retain)
            counters[base + _ACKED] = state.acked
            counters[base + _FAILED] = state.failed
            if state.done():
                break
            read_pipe = state.wants_work()
            rlist = [conn] if read_pipe else []
            if sock is not None:
                rlist.append(sock)
            wlist = [sock] if sock is not None and client.want_write() else []
            readable, _, _ = select.select(rlist, wlist, [], state.wait_s(time.monotonic()))
            if sock is not None and (sock in readable or wlist):
                rc = client.loop_read(max(window, 1))
                if rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_AGAIN):
                    lose(f"read: {mqtt.error_string(rc)}")
                elif client.want_write() and client.loop_write() not in (mqtt.MQTT_ERR_SUCCESS,
                                                                          mqtt.MQTT_ERR_AGAIN):
                    lose("write failed")
            if state.misc_due(time.monotonic()) and client.loop_misc() != mqtt.MQTT_ERR_SUCCESS:
                lose("keepalive")
            while read_pipe and conn.poll():
                msg = conn.recv()
                if msg is None:
                    state.close()
                    break
                code, retain, ctl, rows = msg
                state.submitted(Work(topics[code], retain, ctl // workers, rows))
    except PublishError as exc:
        conn.send(("error", str(exc)))
        return
    finally:
        counters[base + _ACKED] = state.acked
        counters[base + _FAILED] = state.failed
        counters[base + _MAXRSS_KB] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    client.disconnect()
    client.loop_write()
    conn.send(("done", state.acked))


class PublisherPool:
    """`workers` publisher processes for the messages of the fleet's controllers."""

    def __init__(self, target: MqttTarget | Sequence[MqttTarget], tenants: Sequence[str],
                 controllers: Sequence[str], *, workers: int = 2, window: int = 200,
                 client_prefix: str = "fleet", backoff: Reconnect | None = None) -> None:
        if len(tenants) != len(controllers):
            raise ValueError("one tenant per controller")
        # one account per publisher process where the broker binds client ids to accounts
        self.targets = [target] if isinstance(target, MqttTarget) else list(target)
        self.target = self.targets[0]
        self.workers = workers
        self.window = window
        self.backoff = backoff or Reconnect()
        self._tenants = list(tenants)
        self._controllers = list(controllers)
        self._prefix = f"{client_prefix}-{uuid.uuid4().hex[:6]}"
        ctx = mp.get_context("spawn")  # clean children: no inherited threads, honest RSS
        self._counters = ctx.Array("q", workers * _FIELDS, lock=False)
        self._conns: list[Connection] = []
        self._procs: list[BaseProcess] = []
        self._ctx = ctx
        self.submitted = np.zeros(workers, dtype=np.int64)

    def start(self, timeout_s: float = 60.0) -> PublisherPool:
        for w in range(self.workers):
            parent, child = self._ctx.Pipe()
            proc = self._ctx.Process(
                target=_worker, name=f"fleet-publisher-{w}", daemon=True,
                args=(w, self.workers, child, self.targets[w % len(self.targets)], self._tenants,
                      self._controllers, self._counters, self.window,
                      self.targets[w % len(self.targets)].client_id or f"{self._prefix}-{w}",
                      self.backoff))
            proc.start()
            child.close()
            self._conns.append(parent)
            self._procs.append(proc)
        deadline = time.monotonic() + timeout_s
        for w, conn in enumerate(self._conns):
            if not conn.poll(max(0.0, deadline - time.monotonic())):
                self.terminate()
                raise PublishError(f"publisher {w} did not start in {timeout_s} s")
            status, detail = conn.recv()
            if status != "ready":
                self.terminate()
                raise PublishError(f"publisher {w}: {detail}")
        return self

    def __enter__(self) -> PublisherPool:
        return self.start()

    def __exit__(self, *exc) -> None:
        if exc[0] is None:
            self.close()
        else:
            self.terminate()

    def submit(self, kind: Kind, controllers: np.ndarray, payloads: np.ndarray | Sequence[bytes],
               retain: bool = False) -> None:
        """Queue one message per controller: row/item i is the payload of controllers[i]."""
        controllers = np.asarray(controllers, dtype=np.int64)
        if controllers.shape[0] == 0:
            return
        code = _KIND_CODE[Kind(kind)]
        owner = controllers % self.workers
        for w in range(self.workers):
            sel = np.flatnonzero(owner == w)
            if sel.shape[0] == 0:
                continue
            part: np.ndarray | list[bytes]
            if isinstance(payloads, np.ndarray):
                part = payloads[sel]
            else:
                part = [payloads[i] for i in sel.tolist()]
            self._check(w)
            self._conns[w].send((code, retain, controllers[sel], part))
            self.submitted[w] += sel.shape[0]

    def _check(self, w: int) -> None:
        conn = self._conns[w]
        if conn.poll():
            status, detail = conn.recv()
            if status == "error":
                raise PublishError(f"publisher {w}: {detail}")
        if not self._procs[w].is_alive():
            raise PublishError(f"publisher {w} exited with code {self._procs[w].exitcode}")

    @property
    def acked(self) -> int:
        return int(sum(self._counters[w * _FIELDS + _ACKED] for w in range(self.workers)))

    @property
    def failed(self) -> int:
        return int(sum(self._counters[w * _FIELDS + _FAILED] for w in range(self.workers)))

    def backlog(self) -> int:
        """Messages handed to the workers and not yet acknowledged by the broker."""
        return int(self.submitted.sum()) - self.acked

    def wait_backlog(self, at_most: int, timeout_s: float) -> None:
        """Wait until the backlog is at most `at_most`, raising PublishError on a dead worker."""
        deadline = time.monotonic() + timeout_s
        while self.backlog() > at_most:
            for w in range(self.workers):
                self._check(w)
            if time.monotonic() > deadline:
                raise PublishError(f"backlog {self.backlog()} still above {at_most} after {timeout_s} s")
            time.sleep(0.002)

    def close(self, timeout_s: float = 120.0) -> None:
        """Send what is queued, wait for every acknowledgement, stop the workers."""
        deadline = time.monotonic() + timeout_s
        for conn in self._conns:
            conn.send(None)
        errors = []
        for w, (conn, proc) in enumerate(zip(self._conns, self._procs, strict=True)):
            while proc.is_alive() or conn.poll():
                left = deadline - time.monotonic()
                if left <= 0 or not conn.poll(min(left, 1.0)):
                    if left <= 0:
                        break
                    continue
                try:
                    status, detail = conn.recv()
                except EOFError:
                    break
                if status == "error":
                    errors.append(f"publisher {w}: {detail}")
                if status in ("done", "error"):
                    break
            proc.join(max(0.0, deadline - time.monotonic()))
        self.terminate()
        if errors:
            raise PublishError("; ".join(errors))

    def terminate(self) -> None:
        for proc in self._procs:
            if proc.is_alive():
                proc.terminate()
                proc.join(5)

    def workers_peak_rss_kib(self) -> int:
        """Sum of the workers' peak resident set sizes (KiB), known once they have stopped."""
        return int(sum(self._counters[w * _FIELDS + _MAXRSS_KB] for w in range(self.workers)))


class CommandLink:
    """Subscribes to `luciole/v1/+/+/cmd` and queues (controller index, payload) pairs."""

    def __init__(self, target: MqttTarget, tenants: Sequence[str], controllers: Sequence[str],
                 client_id: str | None = None) -> None:
        self._index = {(t, c): i for i, (t, c) in enumerate(zip(tenants, controllers, strict=True))}
        self.queue: queue.SimpleQueue[tuple[int, bytes]] = queue.SimpleQueue()
        self.ignored = 0
        self._subscribed = threading.Event()
        self.client = make_client(
            target, client_id or target.client_id or f"fleet-cmd-{uuid.uuid4().hex[:6]}")
        self.client.on_message = self._on_message
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda c, u, mid, codes, p: self._subscribed.set()
        self.client.reconnect_delay_set(1, 30)  # loop_start reconnects; _on_connect resubscribes
        self.target = target

    def _on_connect(self, client, userdata, flags, reason, props) -> None:
        if not reason.is_failure:
            client.subscribe(subscription(Kind.CMD), qos=1)

    def _on_message(self, client, userdata, message) -> None:
        try:
            parts = parse_topic(message.topic)
        except TopicError:
            self.ignored += 1
            return
        index = self._index.get((parts.tenant, parts.controller))
        if index is None:
            self.ignored += 1
            return
        self.queue.put((index, bytes(message.payload)))

    def start(self, timeout_s: float = 10.0) -> CommandLink:
        self.client.connect(self.target.host, self.target.port, keepalive=self.target.keepalive_s)
        self.client.loop_start()
        if not self._subscribed.wait(timeout_s):
            self.stop()
            raise PublishError(f"command subscription not acknowledged in {timeout_s} s")
        return self

    def drain(self, limit: int = 10_000) -> list[tuple[int, bytes]]:
        out: list[tuple[int, bytes]] = []
        while len(out) < limit:
            try:
                out.append(self.queue.get_nowait())
            except queue.Empty:
                break
        return out

    def wait(self, timeout_s: float) -> list[tuple[int, bytes]]:
        """Commands that arrive within timeout_s (returns as soon as one arrives)."""
        try:
            first = self.queue.get(timeout=max(0.0, timeout_s))
        except queue.Empty:
            return []
        return [first, *self.drain()]

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
