"""GeoJSON (RFC 7946) features from key-values entities, and JSON arrays written piece by piece."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Mapping
from typing import Any

import orjson


def feature(entity: Mapping[str, Any]) -> dict[str, Any]:
    """A Feature whose geometry is the entity's location and whose properties are the rest."""
    properties = dict(entity)  # a copy in one step, then the two keys out (order kept)
    del properties["id"], properties["location"]
    return {"type": "Feature", "id": entity["id"], "geometry": entity["location"],
            "properties": properties}


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON (orjson). The entities hold no NaN or infinity (their builders leave a
    non-finite figure out, and the database's checks keep positions finite), which orjson would
    write as null."""
    return orjson.dumps(value)


async def json_array(items: AsyncIterable[Mapping[str, Any]], head: str = "[",
                     tail: str = "]", batch: int = 500) -> AsyncIterator[bytes]:
    """Encode `items` as the elements of a JSON array between `head` and `tail`, `batch` elements
    per chunk (encoded in one call), so a large export never sits whole in memory."""
    yield head.encode()
    separator = b""
    parts: list[Mapping[str, Any]] = []
    async for item in items:
        parts.append(item)
        if len(parts) >= batch:
            yield separator + dumps(parts)[1:-1]
            separator = b","
            parts = []
    if parts:
        yield separator + dumps(parts)[1:-1]
    yield tail.encode()


FEATURE_COLLECTION_HEAD = '{"type":"FeatureCollection","features":['
FEATURE_COLLECTION_TAIL = "]}"
