"""PostgreSQL binary COPY buffers built from numpy columns in one vectorised pass (no row loop).

A binary COPY stream is a 19-byte header, then per row an int16 field count and, per field, an
int32 byte length and the value in network byte order, then an int16 -1 trailer. For fixed-size
non-null fields every row has the same shape, so a packed big-endian structured dtype describes a
row, and filling a column is one strided numpy assignment.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import numpy as np

SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
HEADER = SIGNATURE + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"  # flags, header extension length
TRAILER = b"\xff\xff"
PG_EPOCH_US = 946_684_800_000_000
"""2000-01-01T00:00:00Z in µs since the Unix epoch: PostgreSQL's timestamp origin."""


class PgType(Enum):
    """Fixed-size PostgreSQL types and their wire representation."""

    # values are (type name, wire dtype): distinct names keep members from becoming aliases
    SMALLINT = ("smallint", ">i2")
    INTEGER = ("integer", ">i4")
    BIGINT = ("bigint", ">i8")
    REAL = ("real", ">f4")
    DOUBLE = ("double precision", ">f8")
    TIMESTAMPTZ = ("timestamptz", ">i8")  # µs since 2000-01-01; given as µs since the Unix epoch
    BOOLEAN = ("boolean", "?")

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.value[1])


@dataclass(frozen=True)
class CopyLayout:
    """The row layout of `COPY table (columns) FROM STDIN (FORMAT BINARY)`."""

    table: str
    columns: tuple[tuple[str, PgType], ...]
    row_dtype: np.dtype = field(init=False, repr=False)

    def __post_init__(self) -> None:
        fields: list[tuple[str, str]] = [("_count", ">i2")]
        for name, pg_type in self.columns:
            fields.append((f"_len_{name}", ">i4"))
            fields.append((name, pg_type.value[1]))
        object.__setattr__(self, "row_dtype", np.dtype(fields))  # packed: no alignment padding

    @property
    def sql(self) -> str:
        names = ", ".join(name for name, _ in self.columns)
        return f"COPY {self.table} ({names}) FROM STDIN (FORMAT BINARY)"

    def encode(self, values: Mapping[str, np.ndarray]) -> np.ndarray:
        """Return the whole COPY stream (header, rows, trailer) as a uint8 array.

        `values` maps every column name to a 1-d array of equal length; timestamptz columns hold
        int64 µs since the Unix epoch. Values are cast to the column type (numpy casting rules).
        """
        missing = [name for name, _ in self.columns if name not in values]
        if missing:
            raise ValueError(f"{self.table}: no values for columns {missing}")
        lengths = {int(np.shape(values[name])[0]) for name, _ in self.columns}
        if len(lengths) != 1:
            raise ValueError(f"{self.table}: columns have different lengths {sorted(lengths)}")
        n = lengths.pop()
        size = self.row_dtype.itemsize
        buf = np.empty(len(HEADER) + n * size + len(TRAILER), dtype=np.uint8)
        buf[: len(HEADER)] = np.frombuffer(HEADER, dtype=np.uint8)
        buf[len(buf) - len(TRAILER) :] = np.frombuffer(TRAILER, dtype=np.uint8)
        rows = buf[len(HEADER) : len(HEADER) + n * size].view(self.row_dtype)
        rows["_count"] = len(self.columns)
        for name, pg_type in self.columns:
            rows[f"_len_{name}"] = pg_type.dtype.itemsize
            column = values[name]
            if pg_type is PgType.TIMESTAMPTZ:
                column = np.asarray(column, dtype=np.int64) - PG_EPOCH_US
            else:
                _check_fits(self.table, name, np.asarray(column), pg_type.dtype)
            rows[name] = column
        return buf


def _check_fits(table: str, name: str, column: np.ndarray, target: np.dtype) -> None:
    """Refuse integers the column type cannot hold, which numpy's cast would wrap silently (the
    wire contract checks them first; this is the last guard)."""
    if column.dtype.kind not in "iu" or target.kind != "i" or np.can_cast(column.dtype, target):
        return
    if column.shape[0] == 0:
        return
    info = np.iinfo(target)
    low, high = column.min(), column.max()
    if low < info.min or high > info.max:
        raise ValueError(f"{table}.{name}: values {low}..{high} do not fit {target.name}")


def write(cursor: Any, layout: CopyLayout, values: Mapping[str, np.ndarray]) -> int:
    """COPY `values` into the layout's table through a psycopg cursor; return the row count."""
    buf = layout.encode(values)
    n = (buf.shape[0] - len(HEADER) - len(TRAILER)) // layout.row_dtype.itemsize
    if n == 0:
        return 0
    with cursor.copy(layout.sql) as copy:
        copy.write(memoryview(buf))
    return n
