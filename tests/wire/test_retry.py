"""The one backoff: capped, exponential, jittered within its stated band; the tracker resets."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wire.retry import Attempts, Backoff, RetryPolicy


@pytest.mark.parametrize(("attempt", "ceiling"), [(0, 0.0), (1, 0.1), (2, 0.2), (3, 0.4), (7, 5.0),
                                                  (10_000, 5.0)])
def test_ceiling_doubles_then_caps(attempt: int, ceiling: float) -> None:
    assert Backoff(initial_s=0.1, max_s=5.0).ceiling(attempt) == pytest.approx(ceiling)


@given(attempt=st.integers(min_value=1, max_value=100), jitter=st.floats(0, 1),
       seed=st.integers(0, 2**32))
def test_delay_stays_within_its_jitter_band(attempt: int, jitter: float, seed: int) -> None:
    b = Backoff(initial_s=0.05, max_s=3.0, jitter=jitter)
    d = b.delay(attempt, random.Random(seed))
    assert b.ceiling(attempt) * (1 - jitter) - 1e-12 <= d <= b.ceiling(attempt)


def test_jitter_spreads_clients_that_failed_together() -> None:
    b = Backoff(initial_s=1.0, max_s=1.0, jitter=0.5)
    rng = random.Random(1)
    delays = [b.delay(1, rng) for _ in range(1000)]
    assert min(delays) < 0.55 and max(delays) > 0.95  # the whole band [0.5, 1] is used


def test_no_jitter_is_deterministic() -> None:
    assert Backoff(initial_s=0.2, max_s=1.0, jitter=0.0).delay(2) == pytest.approx(0.4)


@pytest.mark.parametrize("kwargs", [dict(initial_s=0), dict(initial_s=2, max_s=1), dict(jitter=1.5)])
def test_nonsense_backoff_is_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Backoff(**kwargs)


def test_policy_needs_one_attempt() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(attempts=0)


def test_attempts_grow_and_reset() -> None:
    tracker = Attempts(Backoff(initial_s=1.0, max_s=8.0, jitter=0.0))
    assert [tracker.failed() for _ in range(5)] == [1.0, 2.0, 4.0, 8.0, 8.0]
    tracker.succeeded()
    assert tracker.failed() == 1.0
