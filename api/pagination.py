"""Opaque keyset cursors: the last key of a page, base64url JSON; a hostile cursor is a 400."""

from __future__ import annotations

import base64
import binascii
import json

from api.problems import Problem

MAX_LIMIT = 1000
DEFAULT_LIMIT = 100


# a key of 128 characters, each escaped by JSON as a surrogate pair (12 bytes), in base64
_MAX_CURSOR = 2064


def encode_cursor(key: int | str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"k": key}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, kind: type[int] | type[str] = int) -> int | str | None:
    """The key after which the next page starts, or None for the first page."""
    if cursor is None or cursor == "":
        return None
    try:
        if len(cursor) > _MAX_CURSOR:
            raise ValueError("too long")
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key = json.loads(raw)["k"]
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
        raise Problem(400, "cursor is not one this API gave") from None
    if isinstance(key, bool) or not isinstance(key, kind):
        raise Problem(400, "cursor is not one this API gave")
    if isinstance(key, int) and not -(1 << 63) <= key < (1 << 63):
        raise Problem(400, "cursor is not one this API gave")
    if isinstance(key, str) and (len(key) > 128 or "\x00" in key):
        raise Problem(400, "cursor is not one this API gave")
    return key


def next_cursor(keys: list[int] | list[str], limit: int) -> str | None:
    """A cursor after the last key when the page is full (there may be more)."""
    return encode_cursor(keys[-1]) if len(keys) >= limit and keys else None
