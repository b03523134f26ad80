"""The API supervisor's restart rule (luciole/api_workers.py), pure: a worker that served a while
is replaced at once; one that never served, or died soon, waits longer each time, and a run of
such deaths ends the server instead of a restart loop."""

from __future__ import annotations

import pytest

from luciole.api_workers import RestartPolicy
from wire.retry import Backoff

POLICY = RestartPolicy(healthy_s=10.0, give_up_after=4,
                       backoff=Backoff(initial_s=0.5, max_s=8.0, jitter=0.0))


def test_a_worker_that_never_served_waits_longer_each_time_then_is_given_up() -> None:
    attempts = POLICY.tracker()
    waits = [POLICY.after_exit(attempts, None) for _ in range(4)]
    assert waits == [0.5, 1.0, 2.0, None]


@pytest.mark.parametrize("served", [None, 0.0, 9.9])
def test_quick_deaths_count_whether_or_not_the_worker_served(served: float | None) -> None:
    attempts = POLICY.tracker()
    assert [POLICY.after_exit(attempts, served) for _ in range(4)][-1] is None


def test_a_worker_that_served_a_while_is_replaced_at_once_and_clears_the_count() -> None:
    attempts = POLICY.tracker()
    assert POLICY.after_exit(attempts, None) == 0.5
    assert POLICY.after_exit(attempts, None) == 1.0
    assert POLICY.after_exit(attempts, 10.0) == 0.0  # ran long enough: a passing failure
    assert [POLICY.after_exit(attempts, 1.0) for _ in range(4)] == [0.5, 1.0, 2.0, None]


def test_the_wait_is_capped() -> None:
    policy = RestartPolicy(give_up_after=100, backoff=Backoff(initial_s=0.5, max_s=8.0, jitter=0.0))
    attempts = policy.tracker()
    assert max(w or 0 for w in (policy.after_exit(attempts, None) for _ in range(20))) == 8.0
