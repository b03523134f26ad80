"""Deciding what to do with a command, purely: accept, answer a duplicate, or refuse it.

A command is obeyed at most once, by its id: a redelivered or replayed command gets the answer
its first copy got, and is not executed again. An expired command is refused with a reason.
What a set-level or identify command leaves behind is an `Override` of the schedule for its
targets, until its `until` (the schedule resumes) or until a newer command replaces it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from wire.messages import AckStatus, Identify, SetLevel, Target


class Verdict(StrEnum):
    ACCEPT = "accept"  # new and in time: execute it
    DUPLICATE = "duplicate"  # seen before: repeat its answer, do nothing
    EXPIRED = "expired"  # refused, not executed


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    status: AckStatus
    reason: str | None = None


@dataclass(frozen=True)
class Seen:
    """What the controller answered to a command id the last time."""

    status: AckStatus
    reason: str | None = None


def decide(command, now: datetime, seen: Seen | None) -> Decision:
    """The decision for `command` received at `now`, knowing the answer to an earlier copy."""
    if seen is not None:
        return Decision(Verdict.DUPLICATE, seen.status, seen.reason)
    if command.is_expired(now):
        late = (now - command.expires_at).total_seconds()
        return Decision(
            Verdict.EXPIRED, AckStatus.REFUSED,
            f"expired at {command.expires_at.isoformat()} ({late:.0f} s before it was received)",
        )
    return Decision(Verdict.ACCEPT, AckStatus.ACCEPTED)


class OverrideKind(StrEnum):
    LEVEL = "level"
    IDENTIFY = "identify"


@dataclass(frozen=True)
class Override:
    """A command's hold on some luminaires; the newest matching override wins."""

    command_id: str
    kind: OverrideKind
    target: Target
    level: int  # the level of a set-level; the "on" level of an identify blink
    since: datetime
    until: datetime | None  # None: until replaced
    fade_s: float = 0.0

    def active(self, now: datetime) -> bool:
        return self.since <= now and (self.until is None or now < self.until)


IDENTIFY_ON_LEVEL = 254
IDENTIFY_PERIOD_S = 1.0


def override_of(command: SetLevel | Identify, now: datetime) -> Override:
    """The override a set-level or identify command leaves, starting at `now`."""
    if isinstance(command, SetLevel):
        until = None if command.duration_s is None else now + timedelta(seconds=command.duration_s)
        return Override(command.id, OverrideKind.LEVEL, command.target, command.level, now, until,
                        command.fade_s)
    if isinstance(command, Identify):
        return Override(command.id, OverrideKind.IDENTIFY, command.target, IDENTIFY_ON_LEVEL, now,
                        now + timedelta(seconds=command.duration_s))
    raise TypeError(f"{type(command).__name__} leaves no override")


def prune(overrides: tuple[Override, ...], now: datetime) -> tuple[Override, ...]:
    """Forget overrides that are over."""
    return tuple(o for o in overrides if o.until is None or now < o.until)
