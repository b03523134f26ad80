"""The FIWARE Streetlighting JSON Schemas, offline: a local registry for their common schema, and
format checks for date-time and uri (jsonschema skips formats it has no checker for)."""

from __future__ import annotations

import json
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.exceptions import NoSuchResource

HERE = Path(__file__).parent / "fiware"
COMMON_URI = "https://smart-data-models.github.io/data-models/common-schema.json"

FORMATS = FormatChecker()


@FORMATS.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if "T" not in value:
        raise ValueError("no time part")
    if datetime.fromisoformat(value).tzinfo is None:
        raise ValueError("no offset")
    return True


@FORMATS.checks("uri", raises=ValueError)
def _uri(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not urlsplit(value).scheme:
        raise ValueError("no scheme")
    return True


def _offline(uri: str) -> Resource[Any]:
    raise NoSuchResource(ref=uri)  # never fetched: everything is in the registry


@cache
def registry() -> Registry[Any]:
    common = json.loads((HERE / "common-schema.json").read_text())
    return Registry(retrieve=_offline).with_resource(
        COMMON_URI, Resource.from_contents(common))


@cache
def validator(entity_type: str) -> Draft202012Validator:
    schema = json.loads((HERE / entity_type / "schema.json").read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, registry=registry(), format_checker=FORMATS)


def errors(entity: dict[str, Any]) -> list[str]:
    """Every schema violation of a key-values entity, by its type's schema."""
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator(entity["type"]).iter_errors(entity)]
