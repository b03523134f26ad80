"""The MQTT shell (aiomqtt, MQTT 5): connect, announce, listen, and drain the outbox in order.

Nothing is published from memory: every reading, event and ack is written to the outbox first
and removed only when ingest's receipt (on the controller's own `receipt` topic) names it as
stored or dead-lettered; a PUBACKed message with no receipt in time is sent again
(`edge_agent.confirm`). So what was accepted survives an outage, a broker crash, a SIGKILL or a
power cut. The birth message (State online, retained) is sent on each connection before the backlog;
the last will (State offline, connection_lost, retained) lets the broker mark us offline.
Both count the gear found: the first connection waits (a bounded time) for DALI discovery, and a
change of the inventory later is announced by a clean reconnect, since MQTT sets the will only
when connecting.
Reconnects wait a capped exponential backoff with jitter; the drain rate is bounded by a token
bucket so a long backlog does not flood the broker.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge_agent import metrics
from edge_agent.clock import Clock
from edge_agent.confirm import Confirmations, Released
from edge_agent.settings import AgentSettings
from edge_agent.store_forward import Outbox, OutboxFull, Pending, TokenBucket
from wire.messages import MessageError, Receipt, loads
from wire.receipts import key_of
from wire.retry import Backoff
from wire.topics import Kind, parse_topic, topic

log = logging.getLogger(__name__)

SESSION_EXPIRY_S = 7 * 86_400  # commands queued by the broker while we are away
PUBLISH_TIMEOUT_S = 10.0  # real seconds for a PUBACK before the connection counts as lost


# Failures a retry will not cure: each is logged once as an ERROR with what to check, until a
# connection succeeds; every other failure (broker down, network) is logged at INFO per retry.
_CAUSES: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("tls_trust", ("certificate_verify_failed", "certificate verify failed"),
     "the broker's certificate is not trusted or does not match its host name: check broker.tls.ca "
     "(the CA that signed the broker's certificate) and broker.host"),
    ("tls", ("ssl", "tls", "wrong version number"),
     "TLS handshake failed: check broker.port is the broker's TLS listener and broker.tls"),
    ("auth", ("not authorized", "bad user name or password", "bad username or password"),
     "the broker refused the credentials: check broker.username and broker.password"),
)


def classify(error: BaseException | None) -> tuple[str, str | None]:
    """(cause, hint) of a failed or lost connection; the hint is None for transient causes."""
    text = f"{type(error).__name__}: {error}".lower() if error is not None else ""
    for cause, needles, hint in _CAUSES:
        if any(n in text for n in needles):
            return cause, hint
    return "network", None


class _Rearm(Exception):
    """Ends a session cleanly so the next connection carries a new birth message and last will."""


def reconnect_delay(attempt: int, low: float, high: float, rng: random.Random) -> float:
    """The project's one backoff ("equal jitter") before reconnect attempt `attempt` (1..)."""
    return Backoff(initial_s=low, max_s=high).delay(max(1, attempt), rng)


class Link:
    """One controller's connection. `run()` until cancelled; `goodbye()` before a clean stop."""

    def __init__(self, settings: AgentSettings, outbox: Outbox, clock: Clock,
                 state_payload: Callable[[bool, str | None], bytes],
                 on_message: Callable[[str, bytes], None],
                 rng: random.Random | None = None,
                 ready: Callable[[], Awaitable[object]] | None = None) -> None:
        self.settings = settings
        self._ready = ready  # awaited (at most settings.discovery_wait_s) before connecting
        self.outbox = outbox
        self.clock = clock
        self._state_payload = state_payload
        self._on_message = on_message
        self._rng = rng or random.Random()
        self._wake = asyncio.Event()
        self._rearm = asyncio.Event()
        self.rearms = 0  # clean reconnects that announced a changed state
        self._client: aiomqtt.Client | None = None
        self.connected = asyncio.Event()
        self.connections = 0
        self.failures = 0  # connections that failed or ended, since start
        self.last_error: BaseException | None = None
        self._reported: str | None = None  # the cause last logged as an error
        self._closing = False  # goodbye() was said: no new connection
        self.keepalive_s = 60
        self.bucket = TokenBucket(settings.drain_rate_per_s, settings.drain_burst, clock.monotonic)
        tenant, controller = settings.tenant, settings.controller_id
        self.topics = {k: topic(tenant, controller, k) for k in Kind}
        self._label = controller
        self.confirm = Confirmations(
            Backoff(initial_s=settings.confirm_timeout_s, max_s=settings.confirm_timeout_max_s),
            settings.confirm_window, self._rng)
        self.receipts_refused = 0  # receipts ignored: malformed, or naming another controller
        self._unremoved: list[int] = []  # released by receipts, not yet removed (disk full)
        self._full_logged = False

    def wake(self) -> None:
        """Something new is in the outbox."""
        self._wake.set()

    def rearm(self) -> None:
        """What the state message says has changed (the gear found): when connected, reconnect
        cleanly (no will is sent) to publish the new birth message and arm the new last will."""
        self._rearm.set()

    async def _wait_ready(self) -> None:
        if self._ready is None:
            return
        try:
            async with asyncio.timeout(self.settings.discovery_wait_s):
                await self._ready()
        except TimeoutError:
            log.info("connecting before DALI discovery finished controller=%s waited_s=%.1f",
                     self._label, self.settings.discovery_wait_s)

    def _make_client(self) -> aiomqtt.Client:
        self._rearm.clear()  # this client's will and birth say the state as it is now
        b = self.settings.broker
        tls_params = None
        if b.tls is not None:
            tls_params = aiomqtt.TLSParameters(
                ca_certs=str(b.tls.ca) if b.tls.ca else None,
                certfile=str(b.tls.cert) if b.tls.cert else None,
                keyfile=str(b.tls.key) if b.tls.key else None)
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = SESSION_EXPIRY_S
        will = aiomqtt.Will(self.topics[Kind.STATE], self._state_payload(False, "connection_lost"),
                            qos=1, retain=True)
        return aiomqtt.Client(
            b.host, b.port, username=b.username, password=b.password,
            identifier=self.settings.controller_id, protocol=aiomqtt.ProtocolVersion.V5,
            will=will, clean_start=False, properties=props, keepalive=self.keepalive_s,
            timeout=PUBLISH_TIMEOUT_S, tls_params=tls_params,
            tls_insecure=b.tls.insecure if b.tls else None,
            max_inflight_messages=self.settings.inflight)

    async def run(self) -> None:
        await self._wait_ready()
        attempt = 0
        while True:
            lost: BaseException | None = None
            rearmed = False
            try:
                async with self._make_client() as client:
                    attempt = 0
                    await self._session(client)
            except* _Rearm:
                rearmed = True
            except* (aiomqtt.MqttError, OSError) as group:
                lost = group.exceptions[0]
            finally:
                self._client = None
                self.confirm.connection_lost()
                self.connected.clear()
                metrics.CONNECTED.labels(self._label).set(0)
            if self._closing:
                # cancelled after goodbye(), but the disconnect raised MqttError in place of the
                # CancelledError, or an aiomqtt request swallowed it: stop, do not reconnect
                return
            if rearmed and lost is None:
                self.rearms += 1
                log.info("mqtt reconnecting to announce a new state controller=%s", self._label)
                continue
            attempt += 1
            self.failures += 1
            self.last_error = lost
            metrics.RECONNECTS.labels(self._label).inc()
            delay = reconnect_delay(attempt, self.settings.reconnect_min_s,
                                    self.settings.reconnect_max_s, self._rng)
            self._log_failure(lost, delay)
            await self.clock.sleep(delay)

    def _log_failure(self, error: BaseException | None, delay: float) -> None:
        cause, hint = classify(error)
        metrics.LINK_FAILURES.labels(self._label, cause).inc()
        b = self.settings.broker
        if hint is not None and cause != self._reported:
            self._reported = cause
            log.error("mqtt link failed controller=%s host=%s port=%d tls=%s cause=%s error=%s; %s; "
                      "buffering in the outbox and retrying", self._label, b.host, b.port,
                      b.tls is not None, cause, error, hint)
            return
        log.info("mqtt link down controller=%s cause=%s error=%s retry_in_s=%.1f", self._label,
                 cause, error, delay)

    async def _session(self, client: aiomqtt.Client) -> None:
        self._client = client
        self.connections += 1
        self._reported = None
        await client.publish(self.topics[Kind.STATE], self._state_payload(True, None), qos=1,
                             retain=True)
        granted = await client.subscribe([(self.topics[Kind.CMD], 1), (self.topics[Kind.CONFIG], 1),
                                          (self.topics[Kind.RECEIPT], 1)])
        self._receipts_granted(granted)
        if self._closing:
            return  # goodbye() was said while connecting; an aiomqtt request swallowed the cancel
        self.connected.set()
        metrics.CONNECTED.labels(self._label).set(1)
        log.info("mqtt connected controller=%s host=%s port=%d", self._label,
                 self.settings.broker.host, self.settings.broker.port)
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._receive(client))
            tg.create_task(self._drain(client))
            tg.create_task(self._await_rearm())

    async def _await_rearm(self) -> None:
        await self._rearm.wait()
        raise _Rearm

    def _receipts_granted(self, granted: object) -> None:
        """A broker whose ACL predates receipts refuses that subscription: then no receipt can
        come, and a PUBACK releases a message as before (broker-durable only), said loudly."""
        codes = list(granted) if isinstance(granted, list | tuple) else []
        code = codes[2] if len(codes) > 2 else 0
        value = code.value if hasattr(code, "value") else int(code)
        refused = value >= 0x80
        if refused and self.confirm.end_to_end:
            log.error("receipt subscription refused controller=%s topic=%s reason=%s; readings leave "
                      "the outbox on the broker's PUBACK, not on ingest's confirmation: give the "
                      "controller's broker role read access to its receipt topic", self._label,
                      self.topics[Kind.RECEIPT], code)
        self.confirm.end_to_end = not refused

    async def _receive(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            payload = message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
            name = str(message.topic)
            if name == self.topics[Kind.RECEIPT]:
                self.on_receipt(payload)
            else:
                self._on_message(name, payload)

    def on_receipt(self, payload: bytes) -> Released:
        """A receipt on our own topic: release what it names. One that does not parse, or names
        another controller, releases nothing."""
        try:
            receipt: Receipt = loads(Receipt, payload)
        except MessageError as exc:
            self._refuse_receipt(f"invalid: {exc}"[:200])
            return Released()
        if receipt.controller != self.settings.controller_id:
            self._refuse_receipt(f"names controller {receipt.controller!r}")
            return Released()
        released = self.confirm.receipt(receipt)
        self._release(released)
        return released

    def _remove_released(self) -> None:
        """Remove what receipts released; with the disk full they wait for the next try."""
        if not self._unremoved:
            return
        try:
            self.outbox.remove(self._unremoved)
        except OutboxFull as exc:
            if not self._full_logged:
                self._full_logged = True
                log.warning("outbox disk full controller=%s: %d confirmed messages not removed yet "
                            "(%s)", self._label, len(self._unremoved), exc)
            return
        self._unremoved, self._full_logged = [], False

    def _refuse_receipt(self, why: str) -> None:
        self.receipts_refused += 1
        metrics.RECEIPTS_REFUSED.labels(self._label).inc()
        log.warning("receipt ignored controller=%s: %s", self._label, why)

    def _release(self, released: Released) -> None:
        if not released.ids:
            return
        self._unremoved += released.ids
        self._remove_released()
        if released.stored:
            metrics.CONFIRMED.labels(self._label, "stored").inc(released.stored)
        for reason, n in released.rejected.items():
            metrics.CONFIRMED.labels(self._label, reason).inc(n)
            log.warning("centre dead-lettered messages controller=%s reason=%s count=%d",
                        self._label, reason, n)
        self._wake.set()  # the window has room again

    async def _drain(self, client: aiomqtt.Client) -> None:
        """Publish the outbox oldest first, a window of QoS 1 messages at a time: first what is
        due again (no receipt in time, or cut off by a lost connection), then new messages, at
        most `confirm_window` unconfirmed at once."""
        loop = asyncio.get_running_loop()
        while True:
            self._wake.clear()
            self._remove_released()
            self.confirm.expire(loop.time())
            again, fresh = self.confirm.to_send(self.settings.inflight)
            batch = self.outbox.get(again)
            if len(batch) < len(again):  # dropped meanwhile by the outbox's size or age bound
                present = {m.id for m in batch}
                self.confirm.forget([i for i in again if i not in present])
            if fresh:
                batch += self.outbox.peek(fresh, after_id=self.confirm.cursor)
            if not batch:
                self._update_gauges()
                due = self.confirm.next_due()
                timeout = None if due is None else max(0.0, due - loop.time())
                try:
                    async with asyncio.timeout(timeout):
                        await self._wake.wait()
                except TimeoutError:
                    pass
                continue
            granted = self.bucket.take(len(batch))
            if granted < len(batch):
                self.confirm.requeue([m.id for m in batch[granted:]])
                batch = batch[:granted]
            if not batch:
                await self.clock.sleep(self.bucket.wait_s(1))
                continue
            for m in batch:
                self.confirm.published(m.id, key_of(parse_topic(m.topic).kind, m.payload))
            # the publish calls reach the socket in this order (tasks start in creation order)
            results = await asyncio.gather(*(self._publish(client, m) for m in batch),
                                           return_exceptions=True)
            now = loop.time()
            acked = 0
            for m, r in zip(batch, results, strict=True):
                if r is None:
                    acked += 1
                    self._release(self.confirm.puback(m.id, now))
            metrics.PUBLISHED.labels(self._label).inc(acked)
            for result in results:
                if isinstance(result, BaseException):
                    raise result

    async def _publish(self, client: aiomqtt.Client, message: Pending) -> None:
        await client.publish(message.topic, message.payload, qos=message.qos, retain=message.retain)

    def _update_gauges(self) -> None:
        s = self.outbox.stats()
        metrics.BUFFERED.labels(self._label).set(s.messages)
        metrics.BUFFER_BYTES.labels(self._label).set(s.bytes)
        metrics.DROPPED.labels(self._label).set(s.dropped_total)
        metrics.UNCONFIRMED.labels(self._label).set(self.confirm.awaiting())

    async def goodbye(self, reason: str, timeout_s: float = 2.0) -> None:
        """Publish the offline state (retained) if connected: a clean stop is not a lost link.
        From then on the link does not reconnect."""
        self._closing = True
        client = self._client
        if client is None:
            return
        try:
            async with asyncio.timeout(timeout_s):
                await client.publish(self.topics[Kind.STATE], self._state_payload(False, reason),
                                     qos=1, retain=True)
        except (aiomqtt.MqttError, TimeoutError) as exc:
            log.info("offline state not delivered controller=%s error=%s", self._label, exc)
