"""MQTT topic names of the edge-cloud contract: build, parse, subscribe."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import NamedTuple

PREFIX = "luciole"
VERSION = "v1"
INGEST_SHARE_GROUP = "ingest"
MAX_IDENTIFIER_LENGTH = 64

_IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_WILDCARD = "+"


class Kind(StrEnum):
    """The last level of a topic: what the message is."""

    TELEMETRY = "telemetry"
    EVENT = "event"
    STATE = "state"
    CMD = "cmd"
    ACK = "ack"
    CONFIG = "config"
    RECEIPT = "receipt"  # ingest -> controller: what the centre has stored (wire.messages.Receipt)


UPWARD_KINDS = (Kind.TELEMETRY, Kind.EVENT, Kind.ACK, Kind.STATE)
"""What controllers send up to the centre (ingest subscribes to each)."""


class TopicError(ValueError):
    """A topic or identifier that is not part of the contract."""


class TopicParts(NamedTuple):
    """The variable levels of a topic."""

    tenant: str
    controller: str
    kind: Kind


def _identifier_problem(name: object) -> str | None:
    """Return why `name` is not a valid identifier, or None when it is."""
    if not isinstance(name, str):
        return f"must be a str, not {type(name).__name__}"
    if name == "":
        return "is empty"
    if len(name) > MAX_IDENTIFIER_LENGTH:
        return f"is {len(name)} characters long, over {MAX_IDENTIFIER_LENGTH}"
    for char, why in (
        ("/", "contains '/', the topic level separator"),
        ("+", "contains '+', an MQTT wildcard"),
        ("#", "contains '#', an MQTT wildcard"),
        ("$", "contains '$', reserved by MQTT"),
        ("\x00", "contains a NUL character"),
    ):
        if char in name:
            return why
    if any(c.isspace() for c in name):
        return "contains whitespace"
    if not name.isascii():
        return "contains non-ASCII characters"
    if not (name[0].isascii() and name[0].isalnum()):
        return f"must start with a letter or digit, not {name[0]!r}"
    if _IDENTIFIER.fullmatch(name) is None:
        bad = next(c for c in name if not (c.isalnum() or c in "_.-"))
        return f"contains {bad!r}; allowed are letters, digits, '_', '.', '-'"
    return None


def validate_identifier(name: str, what: str = "identifier") -> str:
    """Return `name` if it is a valid tenant or controller id, else raise TopicError."""
    problem = _identifier_problem(name)
    if problem is not None:
        raise TopicError(f"{what} {name!r} {problem}")
    return name


def _kind(kind: str) -> Kind:
    try:
        return Kind(kind)
    except ValueError:
        allowed = ", ".join(k.value for k in Kind)
        raise TopicError(f"unknown kind {kind!r}; expected one of {allowed}") from None


def topic(tenant: str, controller: str, kind: Kind | str) -> str:
    """Return the topic `luciole/v1/{tenant}/{controller}/{kind}`."""
    validate_identifier(tenant, "tenant")
    validate_identifier(controller, "controller")
    return f"{PREFIX}/{VERSION}/{tenant}/{controller}/{_kind(kind).value}"


def parse_topic(name: str) -> TopicParts:
    """Split a concrete topic into its parts, or raise TopicError saying why."""
    if not isinstance(name, str):
        raise TopicError(f"topic must be a str, not {type(name).__name__}")
    levels = name.split("/")
    if len(levels) != 5:
        raise TopicError(
            f"topic {name!r} has {len(levels)} levels; expected 5 "
            f"({PREFIX}/{VERSION}/tenant/controller/kind)"
        )
    prefix, version, tenant, controller, kind = levels
    if prefix != PREFIX:
        raise TopicError(f"topic {name!r} does not start with {PREFIX!r}")
    if version != VERSION:
        raise TopicError(f"topic {name!r} has version {version!r}; expected {VERSION!r}")
    validate_identifier(tenant, "tenant")
    validate_identifier(controller, "controller")
    return TopicParts(tenant, controller, _kind(kind))


def subscription(kind: Kind | str, tenant: str = _WILDCARD, controller: str = _WILDCARD) -> str:
    """Return a topic filter for `kind`; tenant and controller may be '+'."""
    if tenant != _WILDCARD:
        validate_identifier(tenant, "tenant")
    if controller != _WILDCARD:
        validate_identifier(controller, "controller")
    return f"{PREFIX}/{VERSION}/{tenant}/{controller}/{_kind(kind).value}"


def shared_subscription(kind: Kind | str, group: str = INGEST_SHARE_GROUP) -> str:
    """Return the MQTT 5 shared subscription `$share/{group}/luciole/v1/+/+/{kind}`."""
    validate_identifier(group, "share group")
    return f"$share/{group}/{subscription(kind)}"
