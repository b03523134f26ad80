"""Reading Open311 requests: POST bodies (form-encoded or JSON) to fields, and the filters of
GET /requests to query parameters."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

from api.open311_format import Open311Error
from api.open311_services import BY_CODE

MAX_RESULTS = 1000
"""Most requests one GET /requests returns (Open311's own limit)."""
DEFAULT_WINDOW = timedelta(days=90)
"""GET /requests without dates covers this much past (as Open311 says)."""
MAX_FORM_FIELDS = 100

_JSON_TYPES = ("application/json",)
_FORM_TYPES = ("application/x-www-form-urlencoded",)


def decode_fields(content_type: str, body: bytes) -> dict[str, str]:
    """The fields of a POST body, form-encoded (as Open311 says) or a JSON object, as single
    strings; attributes as `attribute[code]`. The first of repeated form fields counts."""
    media = content_type.split(";", 1)[0].strip().lower()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Open311Error(400, "the body is not UTF-8") from None
    fields: dict[str, str] = {}
    if media in _FORM_TYPES:
        try:
            pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=False,
                              errors="strict", max_num_fields=MAX_FORM_FIELDS)
        except (ValueError, UnicodeDecodeError):
            raise Open311Error(400, "the form is malformed or has too many fields") from None
        for key, value in pairs:
            fields.setdefault(key, value)
        return fields
    if media in _JSON_TYPES:
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):
            raise Open311Error(400, "the body is not valid JSON") from None
        if not isinstance(data, dict):
            raise Open311Error(400, "the JSON body must be an object")
        for key, value in data.items():
            if key == "attribute" and isinstance(value, dict):
                for code, v in value.items():
                    fields[f"attribute[{code}]"] = _scalar(f"attribute[{code}]", v)
            else:
                fields[key] = _scalar(key, value)
        return fields
    raise Open311Error(415, "send application/x-www-form-urlencoded (or application/json)")


def _scalar(name: str, value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return repr(value) if isinstance(value, float) and not math.isfinite(value) else str(value)
    if value is None:
        return ""
    raise Open311Error(400, f"{name} must be a string or a number")


def _when(value: str, name: str) -> datetime:
    try:
        t = datetime.fromisoformat(value.strip())
    except ValueError:
        raise Open311Error(400, f"{name} is not a W3C date-time (e.g. 2026-01-31T18:00:00Z)") from None
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


def _list(value: str | None, name: str, limit: int = 200) -> list[str] | None:
    if value is None or not value.strip():
        return None
    items = [v.strip() for v in value.split(",") if v.strip()]
    if len(items) > limit:
        raise Open311Error(400, f"{name} lists more than {limit} values")
    return items


def request_filters(q: Mapping[str, str]) -> dict[str, Any]:
    """The query parameters of GET /requests as _READ's parameters (Open311: with
    service_request_id the other filters are ignored; without dates, the last 90 days)."""
    params: dict[str, Any] = {"ids": None, "codes": None, "start": None, "end": None,
                              "closed": None, "limit": MAX_RESULTS}
    ids = _list(q.get("service_request_id"), "service_request_id")
    if ids is not None:
        if not all(i.isascii() and i.isdigit() and len(i) <= 18 for i in ids):
            raise Open311Error(400, "service_request_id must be numbers")
        params["ids"] = [int(i) for i in ids]
        return params
    codes = _list(q.get("service_code"), "service_code")
    if codes is not None:
        unknown = [c for c in codes if c not in BY_CODE]
        if unknown:
            raise Open311Error(400, "service_code not found: one of " + ", ".join(BY_CODE))
        params["codes"] = codes
    start = q.get("start_date")
    end = q.get("end_date")
    params["start"] = _when(start, "start_date") if start else None
    params["end"] = _when(end, "end_date") if end else None
    if params["start"] is None and params["end"] is None:
        params["start"] = datetime.now(UTC) - DEFAULT_WINDOW
    if params["start"] and params["end"] and params["end"] < params["start"]:
        raise Open311Error(400, "end_date is before start_date")
    statuses = _list(q.get("status"), "status", 2)
    if statuses is not None:
        if not set(statuses) <= {"open", "closed"}:
            raise Open311Error(400, "status must be open or closed")
        if len(set(statuses)) == 1:
            params["closed"] = statuses[0] == "closed"
    return params
