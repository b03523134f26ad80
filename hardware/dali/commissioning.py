"""Random-address commissioning of DALI gear with python-dali's `Commissioning` sequence."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from dali.address import GearShort
from dali.exceptions import DALISequenceError, ProgramShortAddressFailure
from dali.gear.general import QueryControlGearPresent
from dali.sequences import Commissioning, progress

from hardware.dali.commands import run_sequence
from hardware.dali.errors import DaliError
from hardware.dali.transport import DaliBus

log = logging.getLogger(__name__)


async def present_short_addresses(bus: DaliBus) -> list[int]:
    """Short addresses that answer QUERY CONTROL GEAR PRESENT."""
    found = []
    for a in range(64):
        r = await bus.send(QueryControlGearPresent(GearShort(a)))
        if r is not None and r.raw_value is not None:
            found.append(a)
    return found


async def commission(bus: DaliBus, *, readdress: bool = False,
                     available: Iterable[int] | None = None,
                     progress_cb: Callable[[progress], None] | None = None) -> list[int]:
    """Give every unaddressed gear (all gear with ``readdress``) a short address.

    Runs python-dali's random-address search (INITIALISE, RANDOMISE, binary search
    with COMPARE, PROGRAM / VERIFY SHORT ADDRESS, WITHDRAW, TERMINATE); two gear on
    the same random address are detected as a framing error and re-randomised.
    Returns the short addresses present afterwards.
    """
    def on_progress(p: progress) -> None:
        log.debug("dali commissioning %s", p)
        if progress_cb is not None:
            progress_cb(p)

    try:
        await run_sequence(bus, Commissioning(available_addresses=available,
                                              readdress=readdress), on_progress)
    except ProgramShortAddressFailure as e:
        raise DaliError(f"programming short address failed: {e}") from e
    except DALISequenceError as e:
        raise DaliError(f"commissioning failed: {e}") from e
    return await present_short_addresses(bus)
