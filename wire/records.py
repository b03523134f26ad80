"""Binary telemetry layout: header and record dtypes, codes, and valid ranges as data."""

from __future__ import annotations

from datetime import datetime, timezone
from enum import Enum, IntEnum, IntFlag

import numpy as np

MAGIC = b"LC"
VERSION = 1
HEADER_SIZE = 24
MAX_RECORDS_PER_MESSAGE = 4096
MAX_PAYLOAD_BYTES = HEADER_SIZE + MAX_RECORDS_PER_MESSAGE * 48

LEVEL_UNKNOWN = 255
"""Arc level meaning "not known"; 0..254 is a DALI arc power level, so every u1 is valid."""

TIME_MIN_US = int(datetime(2015, 1, 1, tzinfo=timezone.utc).timestamp()) * 1_000_000
"""Earliest record time accepted (2015-01-01T00:00:00Z), in µs since the Unix epoch."""
TIME_MAX_AHEAD_US = 86_400 * 1_000_000
"""How far past the decoder's `now` a record time may be (one day), in µs."""

HEADER_DTYPE = np.dtype(
    [
        ("magic", "S2"),
        ("version", "u1"),
        ("record_type", "u1"),
        ("record_count", "<u2"),
        ("record_size", "<u2"),
        ("boot_id", "<u8"),
        ("first_seq", "<u8"),
    ]
)

LUMINAIRE_DTYPE = np.dtype(
    [
        ("time_us", "<i8"),
        ("luminaire", "<u2"),
        ("level", "u1"),
        ("status", "u1"),
        ("power_w", "<f4"),
        ("energy_wh", "<f8"),
        ("voltage_v", "<f4"),
        ("current_a", "<f4"),
        ("power_factor", "<f4"),
        ("driver_temp_c", "<f4"),
        ("ambient_lux", "<f4"),
        ("presence", "<u2"),
        ("failure", "<u2"),
    ]
)

SENSOR_DTYPE = np.dtype(
    [
        ("time_us", "<i8"),
        ("sensor", "<u2"),
        ("quantity", "<u2"),
        ("value", "<f4"),
    ]
)

assert HEADER_DTYPE.itemsize == HEADER_SIZE
assert LUMINAIRE_DTYPE.itemsize == 48
assert SENSOR_DTYPE.itemsize == 16


class RecordType(IntEnum):
    """What kind of records follow the header."""

    LUMINAIRE = 1
    SENSOR = 2

    @property
    def dtype(self) -> np.dtype:
        return LUMINAIRE_DTYPE if self is RecordType.LUMINAIRE else SENSOR_DTYPE


class LuminaireFailure(IntFlag):
    """Bits of a luminaire record's `failure` field, from the controller's diagnostics."""

    NONE = 0
    LAMP = 1
    DRIVER = 2
    COMM = 4
    OVER_VOLTAGE = 8
    UNDER_VOLTAGE = 16
    OVER_TEMP = 32
    TILT = 64
    METER = 128
    # Not failures: measurements the luminaire's gear does not make. Their fields hold 0, which
    # means absent (a plain DALI gear has no D4i energy or diagnostics banks), not a zero reading.
    ABSENT_POWER = 256  # power_w, energy_wh (no D4i Part 252 bank 202)
    ABSENT_DIAGNOSTICS = 512  # voltage_v, current_a, power_factor, driver_temp_c (no Part 253)


ABSENT_FIELDS: dict[LuminaireFailure, tuple[str, ...]] = {
    LuminaireFailure.ABSENT_POWER: ("power_w", "energy_wh"),
    LuminaireFailure.ABSENT_DIAGNOSTICS: ("voltage_v", "current_a", "power_factor", "driver_temp_c"),
}
"""Which luminaire fields each ABSENT_* bit of `failure` marks as absent."""
ABSENT_BITS = LuminaireFailure.ABSENT_POWER | LuminaireFailure.ABSENT_DIAGNOSTICS


class Quantity(IntEnum):
    """Sensor quantity codes, each with its unit and valid range (one table)."""

    def __new__(cls, code: int, unit: str, low: float, high: float) -> "Quantity":
        member = int.__new__(cls, code)
        member._value_ = code
        member.unit = unit
        member.low = low
        member.high = high
        return member

    #                code  unit      low     high
    NOISE_DBA = (1, "dB(A)", 0.0, 150.0)
    PM25_UGM3 = (2, "µg/m³", 0.0, 2000.0)
    NO2_UGM3 = (3, "µg/m³", 0.0, 2000.0)
    TEMPERATURE_C = (4, "°C", -50.0, 80.0)
    HUMIDITY_PCT = (5, "%", 0.0, 100.0)
    AMBIENT_LUX = (6, "lx", 0.0, 200_000.0)
    PRESENCE_COUNT = (7, "1", 0.0, 65_535.0)
    TILT_DEG = (8, "°", 0.0, 180.0)
    VOLTAGE_V = (9, "V", 0.0, 500.0)
    CURRENT_A = (10, "A", 0.0, 1000.0)
    POWER_W = (11, "W", 0.0, 1e6)
    ENERGY_KWH = (12, "kWh", 0.0, 1e9)
    POWER_FACTOR = (13, "1", -1.0, 1.0)
    FREQUENCY_HZ = (14, "Hz", 45.0, 65.0)


LUMINAIRE_RANGES: tuple[tuple[str, float, float], ...] = (
    # field            low     high    (inclusive; floats must also be finite)
    ("luminaire", 0, 1023),  # bus * 64 + DALI short address
    ("power_w", 0.0, 2000.0),
    ("energy_wh", 0.0, 1e12),
    ("voltage_v", 0.0, 500.0),
    ("current_a", 0.0, 20.0),
    ("power_factor", 0.0, 1.0),
    ("driver_temp_c", -50.0, 150.0),
    ("ambient_lux", 0.0, 200_000.0),
)
"""Valid luminaire field ranges. `time_us` is checked against the decoder's window;
`level`, `status`, `presence` and `failure` accept every value of their type."""



class ColumnType(Enum):
    """The SQL type of the column a wire field lands in, with the values it can hold.

    A field is range-checked against its column here, in the contract, so that no value is
    stored other than as it was sent (a uint16 field into a smallint column would wrap).
    """

    # values are (SQL name, lowest, highest); timestamptz limits are in µs since the Unix epoch
    SMALLINT = ("smallint", -(1 << 15), (1 << 15) - 1)
    INTEGER = ("integer", -(1 << 31), (1 << 31) - 1)
    BIGINT = ("bigint", -(1 << 63), (1 << 63) - 1)
    REAL = ("real", float(np.finfo(np.float32).min), float(np.finfo(np.float32).max))
    DOUBLE = ("double precision", float(np.finfo(np.float64).min), float(np.finfo(np.float64).max))
    TIMESTAMPTZ = ("timestamp with time zone", TIME_MIN_US, (1 << 63) - 1)

    @property
    def sql(self) -> str:
        return str(self.value[0])

    @property
    def low(self) -> float:
        return self.value[1]

    @property
    def high(self) -> float:
        return self.value[2]


RECORD_COLUMNS: dict[RecordType, dict[str, ColumnType]] = {
    RecordType.LUMINAIRE: {
        "time_us": ColumnType.TIMESTAMPTZ, "luminaire": ColumnType.SMALLINT,
        "level": ColumnType.SMALLINT, "status": ColumnType.SMALLINT, "power_w": ColumnType.REAL,
        "energy_wh": ColumnType.DOUBLE, "voltage_v": ColumnType.REAL,
        "current_a": ColumnType.REAL, "power_factor": ColumnType.REAL,
        "driver_temp_c": ColumnType.REAL, "ambient_lux": ColumnType.REAL,
        "presence": ColumnType.INTEGER, "failure": ColumnType.INTEGER,
    },
    RecordType.SENSOR: {
        "time_us": ColumnType.TIMESTAMPTZ, "sensor": ColumnType.SMALLINT,
        "quantity": ColumnType.SMALLINT, "value": ColumnType.REAL,
    },
}
"""Per record field, the type of its column (`time_us` lands in `time`; the other fields keep
their names) in luminaire_telemetry and sensor_readings. A test compares it with the schema."""

RECORD_TABLES = {RecordType.LUMINAIRE: "luminaire_telemetry", RecordType.SENSOR: "sensor_readings"}


def _dtype_limits(dtype: np.dtype) -> tuple[float, float]:
    if dtype.kind == "f":
        info = np.finfo(dtype)
        return float(info.min), float(info.max)
    iinfo = np.iinfo(dtype)
    return int(iinfo.min), int(iinfo.max)


Limits = tuple[tuple[str, float, float], ...]
"""(field, low, high) triples, bounds inclusive."""


def field_limits(record_type: RecordType, ranges: Limits = ()) -> Limits:
    """(field, low, high) of every field but `time_us` whose check can fail: the intersection of
    its valid range (in `ranges`, if any) with what its column can hold; a float field is always
    checked (it must also be finite); an integer field whose wire type fits its column and that
    has no range of its own is not (every value is valid)."""
    dtype = record_type.dtype
    own = {field: (low, high) for field, low, high in ranges}
    unknown = set(own) - set(dtype.names or ())
    if unknown:
        raise ValueError(f"ranges of fields a {record_type.name} record does not have: {unknown}")
    limits = []
    for field, column in RECORD_COLUMNS[record_type].items():
        if field == "time_us":
            continue
        wire_low, wire_high = _dtype_limits(dtype[field])
        low, high = own.get(field, (wire_low, wire_high))
        low, high = max(low, column.low, wire_low), min(high, column.high, wire_high)
        if low > high:
            raise ValueError(f"{field}: no value fits both its range and its {column.sql} column")
        if dtype[field].kind == "f" or (low, high) != (wire_low, wire_high):
            limits.append((field, low, high))
    return tuple(limits)


LUMINAIRE_LIMITS = field_limits(RecordType.LUMINAIRE, LUMINAIRE_RANGES)
"""The checks of a luminaire record's fields (beside its time): LUMINAIRE_RANGES within the
columns."""
SENSOR_LIMITS = field_limits(RecordType.SENSOR)
"""The checks of a sensor record's integer fields (beside its time): what their columns hold.
The value is checked against its quantity's range, the quantity against the known codes."""

assert all(names.keys() == set(rt.dtype.names or ()) for rt, names in RECORD_COLUMNS.items())

FLOAT_FIELDS = {
    RecordType.LUMINAIRE: tuple(n for n in LUMINAIRE_DTYPE.names if LUMINAIRE_DTYPE[n].kind == "f"),
    RecordType.SENSOR: ("value",),
}
