"""The Open311 services a citizen may report, and the detected faults each can be matched to."""

from __future__ import annotations

from dataclasses import dataclass

from analytics.fault_types import (
    CONTACTOR_FAILURE,
    CONTROL_GEAR_FAILURE,
    CYCLING_FAILURE,
    LAMP_FAILURE,
    LAMP_UNEXPECTED_ON,
    POLE_TILTED,
    RELAY_FAILURE,
    SUPPLY_LOSS,
    SUPPLY_VOLTAGE_TOO_HIGH,
    SUPPLY_VOLTAGE_TOO_LOW,
    FaultType,
)


@dataclass(frozen=True)
class Attribute:
    """A question of a service definition (Open311 attribute)."""

    code: str
    description: str
    datatype: str = "string"
    required: bool = False
    datatype_description: str = ""
    order: int = 1


@dataclass(frozen=True)
class Service:
    """A kind of citizen report and the faults that explain it."""

    code: str
    name: str
    description: str
    keywords: tuple[str, ...]
    faults: tuple[FaultType, ...]  # detected faults this report is about (kind and device scope)
    group: str = "street lighting"

    @property
    def fault_keys(self) -> frozenset[tuple[str, str]]:
        """(kind, scope) of the faults this report can be matched to."""
        return frozenset((f.name, f.scope) for f in self.faults)


POLE_ID = Attribute(
    code="pole_id",
    description="The number on the pole, if you can read it",
    datatype_description="as painted or tagged on the pole, e.g. AND-0412",
)
ATTRIBUTES: tuple[Attribute, ...] = (POLE_ID,)

SERVICES: tuple[Service, ...] = (
    Service("streetlight_out", "Streetlight out",
            "A streetlight stays dark at night.",
            ("light", "dark", "out", "lamp", "broken"),
            (LAMP_FAILURE, CONTROL_GEAR_FAILURE, RELAY_FAILURE, SUPPLY_LOSS)),
    Service("streetlight_flickering", "Streetlight flickering",
            "A streetlight flickers, or goes off and on again by itself.",
            ("flicker", "blinking", "cycling"),
            (CYCLING_FAILURE, SUPPLY_VOLTAGE_TOO_LOW, SUPPLY_VOLTAGE_TOO_HIGH,
             CONTROL_GEAR_FAILURE)),
    Service("streetlight_on_by_day", "Streetlight on by day",
            "A streetlight is lit in daylight.",
            ("day", "daytime", "burning", "wasted"),
            (LAMP_UNEXPECTED_ON, CONTACTOR_FAILURE)),
    Service("damaged_pole", "Damaged or leaning pole",
            "A lighting pole is leaning, knocked down or damaged (for danger, call the emergency "
            "number first).",
            ("pole", "leaning", "knocked", "damaged", "column"),
            (POLE_TILTED,)),
)
BY_CODE = {s.code: s for s in SERVICES}
