"""Simulated DALI-2 bus with LED control gear (IEC 62386-102/207/209) and D4i memory banks.

Sans-I/O core (`SimulatedDaliBus`, `LedGear`) plus a daliserver-protocol TCP shell
(`DaliServerSim`, `DaliServerThread`) that python-dali's own driver can talk to.
"""

from controller_fw_sim.dali.bus import SimulatedDaliBus
from controller_fw_sim.dali.gear import (
    FAULTS,
    GearIdentity,
    InitialisationState,
    LedGear,
    PhysicalReadings,
)
from controller_fw_sim.dali.profiles import (
    D4I_ENERGY,
    D4I_FULL,
    DT8_TC,
    MIXED_BUS,
    PLAIN_DT6,
    PROFILES,
    GearProfile,
)
from controller_fw_sim.dali.server import DaliServerSim, DaliServerThread, answer_bytes

__all__ = [
    "D4I_ENERGY", "D4I_FULL", "DT8_TC", "FAULTS", "MIXED_BUS", "PLAIN_DT6", "PROFILES",
    "DaliServerSim", "DaliServerThread", "GearIdentity", "GearProfile", "InitialisationState",
    "LedGear", "PhysicalReadings", "SimulatedDaliBus", "answer_bytes",
]
