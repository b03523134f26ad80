"""Running python-dali commands and sequences over a `DaliBus`, with typed errors and retries."""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator
from typing import Any

from dali.address import GearShort
from dali.command import Command, Response
from dali.exceptions import MemoryLocationNotImplemented, ResponseError
from dali.gear.general import QueryControlGearPresent
from dali.sequences import progress as seq_progress
from dali.sequences import sleep as seq_sleep

from hardware.dali.errors import (
    DaliCollision,
    DaliFramingError,
    DaliNoAnswer,
    DaliNotImplemented,
)
from hardware.dali.transport import DaliBus
from wire.retry import RetryPolicy

log = logging.getLogger(__name__)




def _check(command: Command, response: Response | None) -> Response:
    raw = response.raw_value if response is not None else None
    if raw is None:
        raise DaliNoAnswer(f"no answer to {command}")
    if raw.error:
        if isinstance(getattr(command, "destination", None), GearShort):
            raise DaliFramingError(f"framing error in answer to {command}")
        raise DaliCollision(f"several gear answered {command}")
    return response


async def query(bus: DaliBus, command: Command, retry: RetryPolicy = RetryPolicy()) -> Response:
    """Send a query that must be answered; retries no-answers, raises typed errors.

    Raises `DaliNoAnswer` after ``retry.attempts``, `DaliCollision` / `DaliFramingError`
    at once (a garbled answer is not retried: the bus has answered).
    """
    if command.response is None:
        raise ValueError(f"{command} is not a query")
    for attempt in range(1, retry.attempts + 1):
        response = await bus.send(command)
        try:
            return _check(command, response)
        except DaliNoAnswer:
            if attempt == retry.attempts:
                raise
            delay = retry.delay(attempt)
            log.debug("dali no answer command=%s attempt=%d retry_in_s=%.3f",
                      command, attempt, delay)
            await bus.sleep(delay)
    raise AssertionError("unreachable")


async def run_sequence(bus: DaliBus, seq: Generator[Any, Any, Any],
                       progress: Callable[[seq_progress], None] | None = None) -> Any:
    """Drive a python-dali sequence (`dali.sequences`, memory bank reads...) over ``bus``."""
    response = None
    try:
        while True:
            try:
                item = seq.send(response)
            except StopIteration as stop:
                return stop.value
            response = None
            if isinstance(item, seq_sleep):
                await bus.sleep(item.delay)
            elif isinstance(item, seq_progress):
                if progress is not None:
                    progress(item)
            else:
                response = await bus.send(item)
    finally:
        seq.close()


async def gear_answers(bus: DaliBus, short_address: int) -> bool:
    """Whether the gear at ``short_address`` answers QUERY CONTROL GEAR PRESENT (one frame)."""
    response = await bus.send(QueryControlGearPresent(GearShort(short_address)))
    raw = response.raw_value if response is not None else None
    if raw is not None and raw.error:
        raise DaliFramingError(f"framing error in answer to QUERY CONTROL GEAR PRESENT "
                               f"of short address {short_address}")
    return raw is not None


async def read_with_retry(bus: DaliBus, seq_factory: Callable[[], Generator[Any, Any, Any]],
                          retry: RetryPolicy = RetryPolicy(), *,
                          gear: int | None = None) -> Any:
    """Run a python-dali read sequence, re-running it from the start when a location it needs
    gets no answer (capped backoff); typed errors after the last attempt.

    python-dali says "memory location not implemented" both when the gear lacks the location
    and when it is silent. With ``gear`` (the short address read from), one QUERY CONTROL GEAR
    PRESENT after the last attempt tells them apart: a gear that answers it does not implement
    the location (`DaliNotImplemented`); a silent one is `DaliNoAnswer`. Without ``gear`` every
    such failure is `DaliNoAnswer`.
    """
    for attempt in range(1, retry.attempts + 1):
        try:
            return await run_sequence(bus, seq_factory())
        except MemoryLocationNotImplemented as e:
            if attempt == retry.attempts:
                if gear is not None and await gear_answers(bus, gear):
                    raise DaliNotImplemented(str(e)) from e
                raise DaliNoAnswer(str(e)) from e
            await bus.sleep(retry.delay(attempt))
        except ResponseError as e:
            raise DaliCollision(str(e)) from e
    raise AssertionError("unreachable")
