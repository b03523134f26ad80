"""The grid operator's settlement files (settlement_files, written by the settlement job): listed
with a keyset cursor and filters, downloaded as the exact bytes stored. A file's id is its name
without the extension: `<ean>_<day>_<kind>_v<version>`."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from psycopg.rows import dict_row

from api.deps import Conn, GridScope
from api.problems import Problem

KINDS = ("inventory", "events", "profile", "faults")
ID_PATTERN = r"^[0-9]{18}_[0-9]{4}-[0-9]{2}-[0-9]{2}_(inventory|events|profile|faults)_v[0-9]{1,9}$"
_ID = re.compile(ID_PATTERN)

LIST = """
SELECT f.ean, p.tenant_id AS tenant, f.day, f.kind, f.version, f.schema_id, f.rows, f.sha256,
       octet_length(f.content) AS bytes, f.created_at, f.superseded_at
FROM settlement_files f JOIN supply_points p ON p.ean = f.ean
WHERE (%(ean)s::text IS NULL OR f.ean = %(ean)s)
  AND (%(day)s::date IS NULL OR f.day = %(day)s)
  AND (%(since)s::date IS NULL OR f.day >= %(since)s)
  AND (%(until)s::date IS NULL OR f.day <= %(until)s)
  AND (%(kind)s::text IS NULL OR f.kind = %(kind)s)
  AND (%(status)s::text IS NULL OR (f.superseded_at IS NULL) = (%(status)s = 'current'))
  AND (%(after_day)s::date IS NULL
       OR (f.day, f.ean, f.kind, f.version) > (%(after_day)s, %(after_ean)s, %(after_kind)s,
                                                %(after_version)s))
ORDER BY f.day, f.ean, f.kind, f.version
LIMIT %(limit)s
"""

ONE = """
SELECT content, sha256 FROM settlement_files
WHERE ean = %s AND day = %s AND kind = %s AND version = %s
"""


def file_id(ean: str, day: date, kind: str, version: int) -> str:
    return f"{ean}_{day.isoformat()}_{kind}_v{version}"


def parse_id(value: str) -> tuple[str, date, str, int]:
    """(ean, day, kind, version) of a file id; a 404 for one that names no possible file."""
    if not _ID.match(value):
        raise Problem(404, "no settlement file by that id")
    ean, day, kind, version = value.split("_")
    try:
        parsed = date.fromisoformat(day)
    except ValueError:
        raise Problem(404, "no settlement file by that id") from None
    return ean, parsed, kind, int(version[1:])


def cursor_key(item: dict[str, Any]) -> str:
    return f"{item['day'].isoformat()}|{item['ean']}|{item['kind']}|{item['version']}"


def parse_cursor_key(key: str) -> tuple[date, str, str, int]:
    parts = key.split("|")
    try:
        if len(parts) != 4 or parts[2] not in KINDS or not re.fullmatch(r"[0-9]{18}", parts[1]):
            raise ValueError(key)
        return date.fromisoformat(parts[0]), parts[1], parts[2], int(parts[3])
    except ValueError:
        raise Problem(400, "cursor is not one this API gave") from None


async def listing(conn: Conn, grid: GridScope, *, ean: str | None, day: date | None,
                  since: date | None, until: date | None, kind: str | None, status: str | None,
                  after: str | None, limit: int) -> list[dict[str, Any]]:
    after_key = parse_cursor_key(after) if after is not None else (None, None, None, None)
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(LIST, {
            "ean": ean, "day": day, "since": since, "until": until, "kind": kind,
            "status": status, "after_day": after_key[0], "after_ean": after_key[1],
            "after_kind": after_key[2], "after_version": after_key[3], "limit": limit})
        rows = await cur.fetchall()
    for row in rows:
        row["id"] = file_id(row["ean"], row["day"], row["kind"], row["version"])
        row["filename"] = row["id"] + ".csv"
        row["current"] = row["superseded_at"] is None
        row["url"] = f"/api/v1/grid/settlement-files/{row['id']}"
    return rows


async def content(conn: Conn, grid: GridScope, value: str) -> tuple[bytes, str]:
    """The file's bytes (UTF-8, as the settlement job wrote and hashed them) and its SHA-256."""
    ean, day, kind, version = parse_id(value)
    row = await (await conn.execute(ONE, (ean, day, kind, version))).fetchone()
    if row is None:
        raise Problem(404, "no settlement file by that id")
    return str(row[0]).encode("utf-8"), str(row[1])
