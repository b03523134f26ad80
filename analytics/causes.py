"""Sentences a technician understands, with the figures that raised each luminaire fault."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np

from analytics import fault_types as ft
from analytics.detector_state import first_guess_full_w
from analytics.luminaire_rules import (
    ABS_HIGH,
    ABS_LOW,
    CURRENT_HIGH,
    CURRENT_LOW,
    CYCLE_RELIGHTS,
    CYCLE_WINDOW_S,
    DRIVER_TEMP_HIGH_C,
    NOMINAL_V,
    POWER_FACTOR_LOW,
    RATED_PF,
    VOLTAGE_HIGH_V,
    VOLTAGE_LOW_V,
    tolerance_w,
)


def clock(t: float, tz: str) -> str:
    """Local wall-clock time of epoch seconds t, as a technician on site reads it."""
    try:
        zone = ZoneInfo(tz)
    except (KeyError, ValueError):
        zone = ZoneInfo("UTC")
    return datetime.fromtimestamp(t, UTC).astimezone(zone).strftime("%H:%M")


def luminaire_cause(kind: ft.FaultType, *, idx: int, controller: str, at: str, power_w: float,
                    level_pct: float, expected_w: float, voltage_v: float, current_a: float,
                    power_factor: float, temp_c: float, ratio: float, relights: int,
                    rated_w: float = 0.0) -> str:
    """The cause of a luminaire-reading fault, e.g. "luminaire 2 on controller ctl-000012 draws
    31 W at 20% level since 21:14 (expected 12 ± 2 W)"."""
    who = f"luminaire {idx} on controller {controller}"
    tol = tolerance_w(expected_w)
    level = f"{level_pct:.0f}% level"
    expect = f"(expected {expected_w:.0f} ± {tol:.0f} W)"
    name = kind.name
    if name == "lampFailure":
        return (f"{who} draws {power_w:.1f} W at {level} since {at} {expect}: "
                "the lamp gives no light")
    if name == "controlGearCommFailure":
        return (f"{who}: its driver reports a control gear failure since {at} "
                f"({power_w:.1f} W drawn)")
    if name == "relayFailure":
        return f"{who} draws no power at {level} since {at} {expect}: its relay stays open"
    if name == "lampUnexpectedOn":
        return f"{who} is lit by day: {power_w:.0f} W at {level} at {at} (expected off)"
    if name == "cyclingFailure":
        return (f"{who} switched itself on again {relights} times within "
                f"{CYCLE_WINDOW_S / 3600:.0f} h up to {at} (at most {CYCLE_RELIGHTS - 1} expected)")
    if name == "supplyVoltageTooHigh":
        return f"{who} is supplied at {voltage_v:.0f} V since {at} (limit {VOLTAGE_HIGH_V:.0f} V)"
    if name == "supplyVoltageTooLow":
        return f"{who} is supplied at {voltage_v:.0f} V since {at} (limit {VOLTAGE_LOW_V:.0f} V)"
    if name == "powerFactorTooLow":
        return (f"{who} has a power factor of {power_factor:.2f} at {power_w:.0f} W since {at} "
                f"(limit {POWER_FACTOR_LOW:.2f})")
    if name == "temperatureTooHigh":
        return (f"{who}: its driver is at {temp_c:.0f} °C since {at} "
                f"(limit {DRIVER_TEMP_HIGH_C:.0f} °C)")
    if name == "lampPowerTooHigh":
        return (f"{who} draws {power_w:.0f} W at {level} since {at}, {100 * (ratio - 1):.0f}% "
                f"more than its own baseline for that level {expect}")
    if name == "lampPowerTooLow":
        return (f"{who} draws {power_w:.0f} W at {level} since {at}, {100 * (1 - ratio):.0f}% "
                f"less than its own baseline for that level {expect}")
    rated_in = float(first_guess_full_w(np.array([rated_w]))[0])
    rated_a = rated_in / (NOMINAL_V * RATED_PF)
    rated = f"rated {rated_w:.0f} W"
    if name == "absoluteLampPowerTooHigh":
        return (f"{who} draws {power_w:.0f} W at {level} since {at}, more than its lamp type may "
                f"draw at any level ({rated}: at most {ABS_HIGH * rated_in:.0f} W)")
    if name == "absoluteLampPowerTooLow":
        return (f"{who} draws {power_w:.0f} W at {level} since {at}, less than its lamp type "
                f"draws at full level ({rated}: at least {ABS_LOW * rated_in:.0f} W)")
    supply = (f"draws {current_a:.2f} A from the supply ({power_w:.0f} W at {voltage_v:.0f} V, "
              f"power factor {power_factor:.2f})")
    if name == "currentTooHigh":
        return (f"{who} {supply} since {at}, more than its lamp type's rated current allows "
                f"(at most {CURRENT_HIGH * rated_a:.2f} A)")
    if name == "currentTooLow":
        return (f"{who} {supply} at full level since {at}, less than its lamp type draws "
                f"(at least {CURRENT_LOW * rated_a:.2f} A)")
    if name == "dimmingFailure":
        return (f"{who} draws {power_w:.0f} W at {level} since {at}, as much as at full level "
                f"{expect}: it does not dim")
    if name == "lampPowerDrift":
        return (f"{who} draws {power_w:.0f} W at {level} since {at}, {100 * (ratio - 1):.0f}% "
                f"above its own baseline {expect}")
    if name == "poleTilted":
        return f"controller {controller} reports its pole tilted since {at}"
    return f"{who}: {name} since {at}"
