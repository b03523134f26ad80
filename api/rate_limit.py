"""A token bucket per client: a burst, then a steady rate; bounded memory. In one process
(TokenBuckets), or in the database, shared by every API worker (SharedBuckets)."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from psycopg import AsyncConnection


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


TAKE = """
INSERT INTO open311_rate AS b (client, tokens, at, allowed)
VALUES (%(client)s, %(capacity)s - 1, now(), %(capacity)s >= 1)
ON CONFLICT (client) DO UPDATE SET
    tokens = least(%(capacity)s, b.tokens + extract(epoch FROM now() - b.at) * %(per_s)s)
             - CASE WHEN least(%(capacity)s, b.tokens + extract(epoch FROM now() - b.at)
                               * %(per_s)s) >= 1 THEN 1 ELSE 0 END,
    allowed = least(%(capacity)s, b.tokens + extract(epoch FROM now() - b.at) * %(per_s)s) >= 1,
    at = now()
RETURNING allowed, tokens
"""

FORGET = "DELETE FROM open311_rate WHERE at < now() - make_interval(secs => %s)"


@dataclass
class SharedBuckets:
    """TokenBuckets in the database (table open311_rate): every API worker takes from the same
    bucket, so a client gets `capacity` at once and `per_s` a second from the whole server, not
    from each worker. The database's clock counts. Clients idle for longer than a full refill
    are forgotten (every `forget_every` takes), so the table stays bounded."""

    capacity: float
    per_s: float
    forget_every: int = 100
    _takes: int = 0

    async def take(self, conn: AsyncConnection[Any], key: str) -> float:
        """Take a token for `key`: 0.0 when allowed, else the seconds until one is available.
        Runs on the request's connection (autocommit for reads; within the request's
        transaction otherwise, so a refused request's later rollback keeps its take)."""
        self._takes += 1
        if self._takes % self.forget_every == 0:
            await conn.execute(FORGET, (self.capacity / self.per_s,))
        cur = await conn.execute(TAKE, {"client": key, "capacity": self.capacity,
                                        "per_s": self.per_s})
        row = await cur.fetchone()
        assert row is not None
        allowed, tokens = bool(row[0]), float(row[1])
        return 0.0 if allowed else max(0.0, (1.0 - tokens) / self.per_s)
