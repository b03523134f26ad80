"""Which sensor index and quantities carry a controller's meter and sensor-box readings.

Sensor records (`SENSOR_DTYPE`) name a sensor by a small index on its controller. The index
ranges are part of the contract so that ingest and analytics know what a record measures:
Modbus meters 0..31 (in the order of the controller's configuration), multifunction-pole sensor
boxes 32..63. Presence and ambient light of a luminaire travel in its luminaire record.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from wire.records import SENSOR_DTYPE, Quantity

METER_SENSOR_BASE = 0
URBAN_SENSOR_BASE = 32
MAX_METERS = URBAN_SENSOR_BASE - METER_SENSOR_BASE
URBAN_SENSOR_LAST = 63
SENSOR_LAST = URBAN_SENSOR_LAST
"""The last sensor index the contract gives a channel: ingest dead-letters records beyond it."""

#: Modbus profile register name -> quantity of a meter's readings, in record order.
METER_QUANTITIES: dict[str, Quantity] = {
    "voltage_ln_avg": Quantity.VOLTAGE_V,
    "current_sum": Quantity.CURRENT_A,
    "power_total": Quantity.POWER_W,
    "energy_import_kwh": Quantity.ENERGY_KWH,
    "power_factor_total": Quantity.POWER_FACTOR,
    "frequency": Quantity.FREQUENCY_HZ,
}

#: Reading name -> quantity of an urban sensor box's readings, in record order.
URBAN_QUANTITIES: dict[str, Quantity] = {
    "noise_dba": Quantity.NOISE_DBA,
    "pm25_ugm3": Quantity.PM25_UGM3,
    "no2_ugm3": Quantity.NO2_UGM3,
    "temperature_c": Quantity.TEMPERATURE_C,
    "humidity_pct": Quantity.HUMIDITY_PCT,
}


def meter_sensor(meter: int) -> int:
    """The sensor index of the controller's `meter`-th Modbus meter."""
    if not 0 <= meter < MAX_METERS:
        raise ValueError(f"a controller has at most {MAX_METERS} meters, not {meter + 1}")
    return METER_SENSOR_BASE + meter


def clamp(value: float, quantity: Quantity) -> float:
    """A reading inside its quantity's range; a non-finite reading becomes 0 (never sent as NaN)."""
    if not math.isfinite(value):
        return 0.0
    return min(max(float(value), quantity.low), quantity.high)


def readings_records(time_us: int, sensor: int, values: Mapping[str, float],
                     quantities: Mapping[str, Quantity]) -> np.ndarray:
    """SENSOR_DTYPE records of one reading, one per known quantity present in `values`."""
    rows = [(time_us, sensor, int(q), clamp(float(values[name]), q))
            for name, q in quantities.items() if name in values]
    return np.array(rows, dtype=SENSOR_DTYPE)


def meter_records(time_us: int, sensor: int, values: Mapping[str, float]) -> np.ndarray:
    """One meter reading (profile register name -> value) as SENSOR_DTYPE records."""
    return readings_records(time_us, sensor, values, METER_QUANTITIES)
