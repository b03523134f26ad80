"""Which broker deliveries a worker acknowledges, and when: a sans-I/O bookkeeping of message ids.

Events in (connected, disconnected, a message received, a message taken into a batch, a batch
committed), answers out (the message ids to acknowledge, whether to pause reading). No paho, no
threads, no clock: the MQTT shell (`ingest.consumer`) feeds it and does what it says.

The rules:
- each (re)connection opens a new generation; a message id means something only on the connection
  that delivered it, so a message of an older generation is never acknowledged (the broker
  redelivers it on the new connection, and the ledger drops the copy);
- a message is acknowledged only once its batch has committed, and at most once;
- at most `limit` messages are held unacknowledged (received and neither acknowledged nor dropped):
  past it the shell stops reading and TCP holds the rest in the broker.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message as the broker delivered it, stamped with its connection's generation."""

    generation: int
    mid: int  # 0: QoS 0, nothing to acknowledge
    topic: str
    payload: bytes


class Deliveries:
    """The generation and acknowledgement bookkeeping of one ingest worker.

    `received` is advanced by the network thread, `released` by the batcher only, so each counter
    has one writer; `unacked()` may be read from either.
    """

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("the limit of unacknowledged messages must be at least 1")
        self.limit = limit
        self.generation = 0
        self.received = 0  # messages delivered to this worker
        self.released = 0  # acknowledged, or dropped as an older connection's
        self.peak_unacked = 0

    # ------------------------------------------------------------------ events
    def connected(self) -> None:
        """A connection was accepted: message ids of earlier connections are now meaningless."""
        self.generation += 1

    def disconnected(self) -> None:
        """The connection is gone: what it delivered and we did not acknowledge comes again."""
        self.generation += 1

    def received_message(self, mid: int, topic: str, payload: bytes) -> Delivery:
        """The broker delivered a message (mid 0 for QoS 0)."""
        self.received += 1
        unacked = self.received - self.released
        if unacked > self.peak_unacked:
            self.peak_unacked = unacked
        return Delivery(self.generation, mid, topic, payload)

    def take(self, delivery: Delivery) -> bool:
        """May this delivery go into a batch? False (and released) for an older connection's: the
        broker redelivers it on the current one."""
        if delivery.generation != self.generation:
            self.released += 1
            return False
        return True

    def committed(self, batch: Iterable[Delivery]) -> list[int]:
        """The batch is stored: the message ids to acknowledge now, in order (those of the current
        connection that need one). Every message of the batch is released."""
        generation = self.generation
        n = 0
        acks: list[int] = []
        for d in batch:
            n += 1
            if d.generation == generation and d.mid:
                acks.append(d.mid)
        self.released += n
        return acks

    # ------------------------------------------------------------------ answers
    def unacked(self) -> int:
        """Messages received and neither acknowledged nor dropped."""
        return self.received - self.released

    def must_pause(self) -> bool:
        """Stop reading from the socket until a batch commits."""
        return self.received - self.released >= self.limit
