"""Retry timing for every hop: one capped exponential backoff with jitter, a bounded retry policy
built on it, and a small tracker of consecutive failures (the shape of psycopg_pool's
`AttemptWithBackoff`). Pure: the caller sleeps, with its own clock."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Backoff:
    """Delay before retry `attempt` (1-based): ``min(max_s, initial_s * 2**(attempt-1))``, of which
    the fraction `jitter` is random, so that clients that failed together do not retry together
    (0.5 is "equal jitter": half fixed, half uniformly random)."""

    initial_s: float = 0.1
    max_s: float = 5.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if not (self.initial_s > 0 and self.max_s >= self.initial_s):
            raise ValueError(f"backoff needs 0 < initial_s <= max_s, got {self.initial_s}, {self.max_s}")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError(f"backoff jitter must be within [0, 1], got {self.jitter}")

    def ceiling(self, attempt: int) -> float:
        """The largest delay `delay(attempt)` can return."""
        if attempt < 1:
            return 0.0
        return min(self.max_s, self.initial_s * 2.0 ** min(attempt - 1, 62))

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry `attempt`; 0 for attempt < 1 (the first try)."""
        capped = self.ceiling(attempt)
        return capped * (1.0 - self.jitter * (rng or random).random())


@dataclass(frozen=True)
class RetryPolicy:
    """At most `attempts` tries in all (the first included), spaced by `backoff`."""

    attempts: int = 3
    backoff: Backoff = field(default_factory=lambda: Backoff(initial_s=0.05, max_s=1.0))

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"a retry policy needs at least one attempt, got {self.attempts}")

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry `attempt` (1 is the first retry, after the first try)."""
        return self.backoff.delay(attempt, rng)


NO_RETRY = RetryPolicy(attempts=1)


class Attempts:
    """Consecutive failures of one caller: `failed()` counts one and returns the wait before the
    next try, `succeeded()` starts over."""

    def __init__(self, backoff: Backoff, rng: random.Random | None = None) -> None:
        self.backoff = backoff
        self.failures = 0
        self._rng = rng or random.Random()

    def failed(self) -> float:
        self.failures += 1
        return self.backoff.delay(self.failures, self._rng)

    def succeeded(self) -> None:
        self.failures = 0
