"""The fault kinds Luciole raises: TALQ 2.7.1 names, the device each is about, severity."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Scope = Literal["luminaire", "controller", "cabinet", "sensor"]
Severity = Literal["info", "warning", "critical"]


@dataclass(frozen=True)
class FaultType:
    """One kind of fault: its name in the faults table, where TALQ defines it, and its rules."""

    name: str
    talq: str  # the TALQ function that defines the name, or "Luciole" for our additions
    scope: Scope
    severity: Severity
    raise_after: int = 3  # consecutive readings (or passes) showing it before it is raised
    clear_after: int = 6  # consecutive readings (or passes) without it before it is cleared
    #: hold-off: raised again within this time after it was cleared, the same fault is reopened
    #: (a flapping link or lamp is one fault), not a new one opened
    reopen_within_s: float = 1800.0


LAMP_FAILURE = FaultType("lampFailure", "LampMonitorFunction", "luminaire", "critical", 3, 3)
CONTROL_GEAR_FAILURE = FaultType("controlGearCommFailure", "LampMonitorFunction", "luminaire",
                                 "critical", 2, 3)
RELAY_FAILURE = FaultType("relayFailure", "LampMonitorFunction", "luminaire", "critical", 3, 3)
LAMP_UNEXPECTED_ON = FaultType("lampUnexpectedOn", "LampMonitorFunction", "luminaire", "warning",
                               3, 3)
CYCLING_FAILURE = FaultType("cyclingFailure", "LampMonitorFunction", "luminaire", "warning", 1, 12)
SUPPLY_VOLTAGE_TOO_HIGH = FaultType("supplyVoltageTooHigh", "LampMonitorFunction", "luminaire",
                                    "warning", 3, 6)
SUPPLY_VOLTAGE_TOO_LOW = FaultType("supplyVoltageTooLow", "LampMonitorFunction", "luminaire",
                                   "warning", 3, 6)
POWER_FACTOR_TOO_LOW = FaultType("powerFactorTooLow", "LampMonitorFunction", "luminaire", "info",
                                 3, 6)
TEMPERATURE_TOO_HIGH = FaultType("temperatureTooHigh", "TemperatureSensorFunction", "luminaire",
                                 "warning", 3, 6)
#: power against the expected power for the level in force (the luminaire's learned baseline)
LAMP_POWER_TOO_HIGH = FaultType("lampPowerTooHigh", "LampMonitorFunction", "luminaire", "warning",
                                3, 6)
LAMP_POWER_TOO_LOW = FaultType("lampPowerTooLow", "LampMonitorFunction", "luminaire", "warning",
                               3, 6)
#: power against fixed thresholds of the lamp type (its rated input power), whatever the level
ABSOLUTE_LAMP_POWER_TOO_HIGH = FaultType("absoluteLampPowerTooHigh", "LampMonitorFunction",
                                         "luminaire", "warning", 3, 6)
ABSOLUTE_LAMP_POWER_TOO_LOW = FaultType("absoluteLampPowerTooLow", "LampMonitorFunction",
                                        "luminaire", "warning", 3, 6)
#: supply current against fixed thresholds of the lamp type (its rated current)
CURRENT_TOO_HIGH = FaultType("currentTooHigh", "LampMonitorFunction", "luminaire", "warning", 3, 6)
CURRENT_TOO_LOW = FaultType("currentTooLow", "LampMonitorFunction", "luminaire", "warning", 3, 6)
DIMMING_FAILURE = FaultType("dimmingFailure", "LampMonitorFunction", "luminaire", "warning", 3, 6)
LAMP_POWER_DRIFT = FaultType("lampPowerDrift", "Luciole", "luminaire", "info", 6, 12)
POLE_TILTED = FaultType("poleTilted", "Luciole", "controller", "critical", 2, 3)

#: Kinds decided reading by reading on luminaires, in the column order of the flags matrix and
#: of the stored streaks (detector_luminaire_state): new kinds go at the end. The relative power
#: rule keeps the columns it had as currentTooHigh/TooLow (migration 0017 renames its faults).
LUMINAIRE_KINDS: tuple[FaultType, ...] = (
    LAMP_FAILURE, CONTROL_GEAR_FAILURE, RELAY_FAILURE, LAMP_UNEXPECTED_ON, CYCLING_FAILURE,
    SUPPLY_VOLTAGE_TOO_HIGH, SUPPLY_VOLTAGE_TOO_LOW, POWER_FACTOR_TOO_LOW, TEMPERATURE_TOO_HIGH,
    LAMP_POWER_TOO_HIGH, LAMP_POWER_TOO_LOW, DIMMING_FAILURE, LAMP_POWER_DRIFT, POLE_TILTED,
    ABSOLUTE_LAMP_POWER_TOO_HIGH, ABSOLUTE_LAMP_POWER_TOO_LOW, CURRENT_TOO_HIGH, CURRENT_TOO_LOW,
)
KIND_INDEX = {t.name: i for i, t in enumerate(LUMINAIRE_KINDS)}

COMMUNICATION_FAILURE = FaultType("communicationFailure", "CommunicationFunction", "controller",
                                  "warning", 1, 1, reopen_within_s=3600.0)
SUPPLY_LOSS = FaultType("supplyLoss", "LampMonitorFunction", "cabinet", "critical", 1, 2)
CONTACTOR_FAILURE = FaultType("relayFailure", "LampMonitorFunction", "cabinet", "critical", 1, 2)
#: the cabinet meter reads more than its luminaires draw plus their cable losses, by night: earth
#: leakage (or theft) between the meter and the luminaires
LEAKAGE_DETECTED = FaultType("leakageDetected", "CabinetMonitorFunction", "cabinet", "warning",
                             3, 6)
SENSOR_STUCK = FaultType("sensorStuck", "Luciole", "sensor", "warning", 6, 1)

#: Kinds decided per cabinet, in the column order of the cabinet state's streak arrays.
CABINET_KINDS: tuple[FaultType, ...] = (SUPPLY_LOSS, CONTACTOR_FAILURE, LEAKAGE_DETECTED)

ALL_KINDS: tuple[FaultType, ...] = (*LUMINAIRE_KINDS, COMMUNICATION_FAILURE, *CABINET_KINDS,
                                    SENSOR_STUCK)
