"""Store a batch whatever is in it: a failing write is retried (transient), or split in halves
until the offending messages are found alone, dead-lettered with their reason, and the rest is
committed (data errors and bugs). One bad message never holds back the others, and nothing of
a message's content can make the worker exit or retry forever.

With k offending messages in a batch of n, about 2·k·log2(n) extra transactions; a batch without
one costs nothing more than its write.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from ingest import metrics
from ingest.batching import backoff
from ingest.failures import Failure, classify, data_reason, describe
from ingest.prepare import IngestReason
from ingest.writer import WriteResult

log = logging.getLogger(__name__)

Message = tuple[str, bytes]


class Store(Protocol):
    """What the isolation needs of ingest.writer.Writer."""

    def write(self, batch: Sequence[Message]) -> WriteResult: ...

    def dead_letter(self, message: Message, reason: str,
                    detail: str | None = None) -> WriteResult: ...


@dataclass(frozen=True)
class RetryPolicy:
    """Capped exponential backoff with jitter for transient failures."""

    initial_s: float = 0.1
    max_s: float = 5.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        return backoff(attempt, self.initial_s, self.max_s, rng.random())


@dataclass
class _Part:
    """Messages (indices into the batch) to write together, or one to dead-letter."""

    indices: list[int]
    dead_letter: tuple[str, str | None] | None = None  # (reason, detail)


@dataclass
class Outcome:
    """What storing a batch did, beside the rows: for metrics and logs."""

    result: WriteResult
    failures: int = 0  # failed writes, retried or split
    splits: int = 0
    internal_errors: int = 0
    unstorable: int = 0  # could be neither stored nor dead-lettered (logged, acknowledged)


class BatchStore:
    """Writes batches through a Store, isolating the messages it fails on."""

    def __init__(self, store: Store, retry: RetryPolicy, wait: Callable[[float], bool],
                 rng: random.Random | None = None,
                 on_failure: Callable[[Failure], None] | None = None) -> None:
        """`wait(seconds)` sleeps before a retry and returns True when the worker is stopping;
        `on_failure` hears of each failed write as it happens (progress counters)."""
        self.store = store
        self.retry = retry
        self.wait = wait
        self.rng = rng or random.Random()
        self.on_failure = on_failure

    def write(self, batch: Sequence[Message]) -> Outcome | None:
        """Store `batch`: every message is committed, found a duplicate, or dead-lettered.
        Returns None when stopped while waiting to retry (nothing more is written then; what was
        committed stays, and a redelivery of it is a duplicate)."""
        outcome = Outcome(WriteResult())
        work = [_Part(list(range(len(batch))))]
        attempt = 0
        while work:
            part = work.pop()
            messages = [batch[i] for i in part.indices]
            try:
                if part.dead_letter is None:
                    result = self.store.write(messages)
                else:
                    result = self.store.dead_letter(messages[0], *part.dead_letter)
            except Exception as exc:  # noqa: BLE001 - classified below, never swallowed
                outcome.failures += 1
                failure = classify(exc)
                metrics.DB_ERRORS.labels(type(exc).__name__).inc()
                if self.on_failure is not None:
                    self.on_failure(failure)
                if failure.retried:
                    delay = self.retry.delay(attempt, self.rng)
                    attempt += 1
                    log_level = logging.ERROR if failure is Failure.SETUP else logging.WARNING
                    log.log(log_level, "batch of %d messages not committed (%s, %s); held "
                            "unacknowledged, retry %d in %.2fs", len(messages), failure.value,
                            describe(exc, 200), attempt, delay)
                    work.append(part)
                    if self.wait(delay):
                        return None
                    continue
                attempt = 0
                self._isolate(part, messages, failure, exc, work, outcome)
                continue
            attempt = 0
            outcome.result.add(result)
        return outcome

    def _isolate(self, part: _Part, messages: list[Message], failure: Failure,
                 exc: Exception, work: list[_Part], outcome: Outcome) -> None:
        if part.dead_letter is not None:
            # the dead letter itself was refused: nothing more can be done with this message
            outcome.unstorable += 1
            metrics.UNSTORABLE.inc()
            log.error("message could not be dead-lettered, acknowledged anyway topic=%r "
                      "payload_bytes=%d reason=%s (%s)", messages[0][0], len(messages[0][1]),
                      part.dead_letter[0], describe(exc), exc_info=exc)
            return
        if len(part.indices) > 1:
            outcome.splits += 1
            metrics.BATCH_SPLITS.inc()
            log.warning("batch of %d messages refused (%s, %s); splitting it to find the "
                        "offending messages", len(part.indices), failure.value, describe(exc, 200))
            half = len(part.indices) // 2
            work.append(_Part(part.indices[half:]))
            work.append(_Part(part.indices[:half]))  # popped first: the batch's order is kept
            return
        topic = messages[0][0]
        if failure is Failure.DATA:
            reason = data_reason(exc)
            log.warning("message refused by the database, dead-lettered topic=%r reason=%s (%s)",
                        topic, reason, describe(exc, 200))
        else:
            reason = IngestReason.INTERNAL_ERROR.value
            outcome.internal_errors += 1
            metrics.INTERNAL_ERRORS.inc()
            log.error("internal error on one message, dead-lettered topic=%r", topic, exc_info=exc)
        work.append(_Part(part.indices, (reason, describe(exc))))
