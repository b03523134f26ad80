"""Bulk inventory import, pure: a CSV or GeoJSON body into checked luminaire rows, and every bad
row with its line (CSV) or feature number (GeoJSON) and the reason."""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from wire.messages import Text
from wire.topics import validate_identifier

MAX_ROWS = 200_000
COLUMNS = ("controller_id", "idx", "cabinet_id", "model", "gtin", "serial", "rated_power_w",
           "lat", "lon", "road_class", "installed_at")


def _ident(value: str) -> str:
    return validate_identifier(value, "id")


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be finite")
    return value


Ident = Annotated[str, AfterValidator(_ident)]


class LuminaireRow(BaseModel):
    """One luminaire of an inventory: its controller (registered unprovisioned if new) and pole."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    controller_id: Ident
    idx: Annotated[int, Field(ge=0, le=1023)]
    cabinet_id: Ident | None = None
    model: Annotated[Text, Field(max_length=128)] | None = None
    gtin: Annotated[str, Field(pattern=r"^[0-9]{8,14}$")] | None = None
    serial: Annotated[Text, Field(max_length=64)] | None = None
    rated_power_w: Annotated[float, Field(ge=0, le=10_000), AfterValidator(_finite),
                             AfterValidator(lambda w: round(w, 3))] | None = None
    lat: Annotated[float, Field(ge=-90, le=90), AfterValidator(_finite)] | None = None
    lon: Annotated[float, Field(ge=-180, le=180), AfterValidator(_finite)] | None = None
    road_class: Annotated[Text, Field(max_length=16)] | None = None
    installed_at: AwareDatetime | None = None


@dataclass(frozen=True)
class RowError:
    line: int
    reason: str


@dataclass
class Parsed:
    rows: list[tuple[int, LuminaireRow]]
    errors: list[RowError]


def _reason(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors(include_url=False, include_input=False):
        where = ".".join(str(p) for p in error["loc"]) or "row"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)


def _check(line: int, values: dict[str, Any], seen: dict[tuple[str, int], int], out: Parsed) -> None:
    try:
        row = LuminaireRow.model_validate(values)
    except ValidationError as exc:
        out.errors.append(RowError(line, _reason(exc)))
        return
    key = (row.controller_id, row.idx)
    if key in seen:
        out.errors.append(RowError(line, f"luminaire {row.idx} of {row.controller_id} is already on "
                                   f"line {seen[key]}"))
        return
    seen[key] = line
    out.rows.append((line, row))


def parse_csv(text: str) -> Parsed:
    """Rows of a CSV with a header naming some of COLUMNS; empty cells are absent values."""
    out = Parsed([], [])
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        out.errors.append(RowError(1, "empty file: expected a header line"))
        return out
    except csv.Error as exc:
        out.errors.append(RowError(1, f"unreadable CSV: {exc}"))
        return out
    header = [h.strip() for h in header]
    unknown = [h for h in header if h not in COLUMNS]
    missing = [c for c in ("controller_id", "idx") if c not in header]
    if unknown or missing or len(set(header)) != len(header):
        why = []
        if unknown:
            why.append(f"unknown columns {unknown}")
        if missing:
            why.append(f"missing columns {missing}")
        if len(set(header)) != len(header):
            why.append("a column is named twice")
        out.errors.append(RowError(1, "; ".join(why) + f"; columns are {list(COLUMNS)}"))
        return out
    seen: dict[tuple[str, int], int] = {}
    line = 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            out.errors.append(RowError(reader.line_num, f"unreadable CSV: {exc}"))
            break
        line = reader.line_num
        if not cells or all(not c.strip() for c in cells):
            continue
        if len(out.rows) + len(out.errors) >= MAX_ROWS:
            out.errors.append(RowError(line, f"more than {MAX_ROWS} rows; split the file"))
            break
        if len(cells) != len(header):
            out.errors.append(RowError(line, f"{len(cells)} cells; the header has {len(header)}"))
            continue
        values: dict[str, Any] = {}
        for name, cell in zip(header, cells, strict=True):
            cell = cell.strip()
            if cell == "":
                continue
            values[name] = cell
        _check(line, _typed(values), seen, out)
    return out


def _typed(values: dict[str, Any]) -> dict[str, Any]:
    """CSV cells are text: numbers are read as numbers, a bad one stays text (and is refused)."""
    for name, kind in (("idx", int), ("rated_power_w", float), ("lat", float), ("lon", float)):
        if name in values:
            try:
                values[name] = kind(values[name])
            except ValueError:
                pass
    if "installed_at" in values:
        try:
            values["installed_at"] = datetime.fromisoformat(values["installed_at"])
        except ValueError:
            pass
    return values


def parse_geojson(text: str) -> Parsed:
    """Point features of a FeatureCollection; properties hold the columns, the point lon/lat."""
    out = Parsed([], [])
    try:
        doc = json.loads(text)
    except ValueError as exc:
        out.errors.append(RowError(0, f"not JSON: {exc}"))
        return out
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection" or not isinstance(
            doc.get("features"), list):
        out.errors.append(RowError(0, "expected a GeoJSON FeatureCollection"))
        return out
    seen: dict[tuple[str, int], int] = {}
    for number, feature in enumerate(doc["features"], start=1):
        if number > MAX_ROWS:
            out.errors.append(RowError(number, f"more than {MAX_ROWS} features; split the file"))
            break
        if not isinstance(feature, dict) or feature.get("type") != "Feature":
            out.errors.append(RowError(number, "not a GeoJSON Feature"))
            continue
        props = feature.get("properties")
        if not isinstance(props, dict):
            out.errors.append(RowError(number, "properties must be an object"))
            continue
        values: dict[str, Any] = dict(props)
        geometry = feature.get("geometry")
        if geometry is not None:
            coords = geometry.get("coordinates") if isinstance(geometry, dict) else None
            if (not isinstance(geometry, dict) or geometry.get("type") != "Point"
                    or not isinstance(coords, list) or len(coords) not in (2, 3)
                    or not all(isinstance(c, int | float) and not isinstance(c, bool)
                               for c in coords)):
                out.errors.append(RowError(number, "geometry must be a Point [lon, lat]"))
                continue
            values["lon"], values["lat"] = float(coords[0]), float(coords[1])
        if isinstance(values.get("installed_at"), str):
            try:
                values["installed_at"] = datetime.fromisoformat(values["installed_at"])
            except ValueError:
                pass
        _check(number, values, seen, out)
    return out
