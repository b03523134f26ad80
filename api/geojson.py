"""GeoJSON (RFC 7946) features from key-values entities, and JSON arrays written piece by piece."""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from typing import Any


def feature(entity: Mapping[str, Any]) -> dict[str, Any]:
    """A Feature whose geometry is the entity's location and whose properties are the rest."""
    properties = {k: v for k, v in entity.items() if k not in ("id", "location")}
    return {"type": "Feature", "id": entity["id"], "geometry": entity["location"],
            "properties": properties}


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def dumps(value: Any) -> str:
    """Compact JSON; NaN and infinities are refused (they are not JSON)."""
    return _ENCODER.encode(value)


async def json_array(items: AsyncIterable[Mapping[str, Any]], head: str = "[",
                     tail: str = "]", batch: int = 500) -> AsyncIterator[bytes]:
    """Encode `items` as the elements of a JSON array between `head` and `tail`, `batch` elements
    per chunk (encoded in one call), so a large export never sits whole in memory."""
    yield head.encode()
    separator = ""
    parts: list[Mapping[str, Any]] = []
    async for item in items:
        parts.append(item)
        if len(parts) >= batch:
            yield (separator + dumps(parts)[1:-1]).encode()
            separator = ","
            parts.clear()
    if parts:
        yield (separator + dumps(parts)[1:-1]).encode()
    yield tail.encode()


FEATURE_COLLECTION_HEAD = '{"type":"FeatureCollection","features":['
FEATURE_COLLECTION_TAIL = "]}"
