"""Typed DALI errors raised by `hardware.dali`; the edge agent turns them into fault events."""

from __future__ import annotations


class DaliError(Exception):
    """Any failure talking to DALI gear."""


class DaliNoAnswer(DaliError):
    """A query that needs an answer got none (after the configured retries)."""


class DaliNotImplemented(DaliError):
    """The gear answers but does not implement what was asked (a memory bank, a location): a
    capability it lacks, never a communication fault."""


class DaliFramingError(DaliError):
    """A backward frame arrived with a framing error from a single addressed gear."""


class DaliCollision(DaliError):
    """Several gear answered at once (framing error to a group or broadcast query)."""


class DaliTimeout(DaliError):
    """The interface (USB, serial, TCP) did not complete a frame in time."""
