"""A token bucket per client: a burst, then a steady rate; bounded memory."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class TokenBuckets:
    """`capacity` requests at once per key, refilled at `per_s` a second.

    At most `max_keys` keys are tracked; beyond that the least recently seen is forgotten (it
    comes back with a full bucket, so memory stays bounded under a flood of addresses). Per
    process: with several API workers, each holds its own buckets."""

    capacity: float
    per_s: float
    max_keys: int = 100_000
    clock: Callable[[], float] = time.monotonic
    _buckets: OrderedDict[str, tuple[float, float]] = field(default_factory=OrderedDict)

    def take(self, key: str) -> float:
        """Take a token for `key`: 0.0 when allowed, else the seconds until one is available."""
        now = self.clock()
        tokens, then = self._buckets.pop(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - then) * self.per_s)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            wait = 0.0
        else:
            self._buckets[key] = (tokens, now)
            wait = (1.0 - tokens) / self.per_s
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return wait
