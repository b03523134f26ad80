"""Open311 GeoReport v2 documents in JSON and XML: services, definitions, requests and errors."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from xml.etree import ElementTree as ET

from api.open311_services import ATTRIBUTES, Service

FORMATS = {"json": "application/json; charset=utf-8", "xml": "text/xml; charset=utf-8"}


class Open311Error(ValueError):
    """A request refused: the HTTP status (also the Open311 error's code), a description for the
    app, and headers to send with it (Retry-After)."""

    def __init__(self, code: int, description: str,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.headers = dict(headers or {})


def w3c(t: datetime) -> str:
    """A W3C date-time with its offset, to the second (Open311's format)."""
    return t.astimezone(UTC).replace(microsecond=0).isoformat()


def service_entry(s: Service) -> dict[str, Any]:
    return {"service_code": s.code, "service_name": s.name, "description": s.description,
            "metadata": bool(ATTRIBUTES), "type": "realtime", "keywords": ",".join(s.keywords),
            "group": s.group}


def service_definition(s: Service) -> dict[str, Any]:
    return {"service_code": s.code, "attributes": [
        {"variable": True, "code": a.code, "datatype": a.datatype, "required": a.required,
         "datatype_description": a.datatype_description, "order": a.order,
         "description": a.description} for a in ATTRIBUTES]}


def error_list(code: int, description: str) -> list[dict[str, Any]]:
    return [{"code": code, "description": description}]


# --------------------------------------------------------------- rendering


def _xml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return "" if v is None else str(v)


def _xml_fill(parent: ET.Element, item: Mapping[str, Any]) -> None:
    for key, value in item.items():
        child = ET.SubElement(parent, key)
        if isinstance(value, list):
            singular = {"attributes": "attribute", "values": "value"}.get(key, "item")
            for element in value:
                _xml_fill(ET.SubElement(child, singular), element)
        else:
            child.text = _xml_value(value)


def render(fmt: str, root: str, element: str | None,
           body: Sequence[Mapping[str, Any]] | Mapping[str, Any]) -> bytes:
    """`body` (a list of objects, or one object) as JSON, or as XML under `root` with one `element`
    per list item."""
    if fmt == "json":
        return json.dumps(body, ensure_ascii=False, allow_nan=False).encode()
    top = ET.Element(root)
    if isinstance(body, Mapping):
        _xml_fill(top, body)
    else:
        for item in body:
            _xml_fill(ET.SubElement(top, element or "item"), item)
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(top, encoding="utf-8")


def render_errors(fmt: str, code: int, description: str) -> bytes:
    return render(fmt, "errors", "error", error_list(code, description))
