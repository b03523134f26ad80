"""Sentences a technician understands, with the figures that raised each luminaire fault."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from analytics import fault_types as ft
from analytics.luminaire_rules import (
    CYCLE_RELIGHTS,
    CYCLE_WINDOW_S,
    DRIVER_TEMP_HIGH_C,
    POWER_FACTOR_LOW,
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
                    power_factor: float, temp_c: float, ratio: float, relights: int) -> str:
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
    if name in ("currentTooHigh", "currentTooLow"):
        expected_a = current_a * expected_w / power_w if power_w > 0 else 0.0
        return (f"{who} draws {current_a:.2f} A, {power_w:.0f} W at {level} since {at} "
                f"(expected {expected_a:.2f} A, {expected_w:.0f} ± {tol:.0f} W)")
    if name == "dimmingFailure":
        return (f"{who} draws {power_w:.0f} W at {level} since {at}, as much as at full level "
                f"{expect}: it does not dim")
    if name == "lampPowerDrift":
        return (f"{who} draws {power_w:.0f} W at {level} since {at}, {100 * (ratio - 1):.0f}% "
                f"above its own baseline {expect}")
    if name == "poleTilted":
        return f"controller {controller} reports its pole tilted since {at}"
    return f"{who}: {name} since {at}"
