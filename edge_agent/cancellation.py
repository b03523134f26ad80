"""Cancellation that holds: notice one a library swallowed, and cancel tasks until they end.

asyncio delivers a cancellation once. Before Python 3.12, `asyncio.wait_for` (which pymodbus
and aiomqtt await through for every request) returns the result instead of raising when the
awaited future completes in the same loop iteration as the cancellation: the task then runs on
as if it had never been cancelled, and whoever awaits it on shutdown waits for ever. The
request stays visible in `Task.cancelling()` until someone handles it, so the pollers and the
agent's loops call `raise_if_cancelled()` once a round, after their hardware calls; and the
agent's shutdown (`cancel_and_wait`) cancels again, with an error in the log, any task still
running a grace period after its cancellation.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

log = logging.getLogger(__name__)

GRACE_S = 5.0
"""Real seconds a cancelled task may take to clean up (an MQTT DISCONNECT) before it is
cancelled again."""


def raise_if_cancelled() -> None:
    """Raise CancelledError when the current task was asked to stop and a callee swallowed it.

    Only for tasks that run no TaskGroup of their own: in Python 3.11 a TaskGroup whose child
    fails while it is exiting leaves a cancel request on its parent for ever (the link's
    sessions do; the link uses its own `goodbye()` flag instead)."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def cancel_and_wait(tasks: Iterable[asyncio.Task], grace_s: float = GRACE_S) -> None:
    """Cancel `tasks` and return once every one has ended; a task still running `grace_s`
    after its cancellation is logged and cancelled again."""
    pending = {task for task in tasks if not task.done()}
    for task in pending:
        task.cancel()
    while pending:
        _, pending = await asyncio.wait(pending, timeout=grace_s)
        for task in pending:
            log.error("task still running after its cancellation task=%s grace_s=%.1f; "
                      "cancelling it again", task.get_name(), grace_s)
            task.cancel()
