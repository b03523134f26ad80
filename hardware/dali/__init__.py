"""DALI access through python-dali: transports, commissioning, D4i banks, typed errors."""

from hardware.dali.commands import NO_RETRY, RetryPolicy, query, read_with_retry, run_sequence
from hardware.dali.commissioning import commission, present_short_addresses
from hardware.dali.control import GearStatus, actual_level, led_failures, set_level, status
from hardware.dali.d4i import (
    Diagnostics,
    EnergyReport,
    GearInfo,
    LuminaireInfo,
    read_bank,
    read_diagnostics,
    read_energy,
    read_gear_info,
    read_luminaire_info,
)
from hardware.dali.errors import (
    DaliCollision,
    DaliError,
    DaliFramingError,
    DaliNoAnswer,
    DaliTimeout,
)
from hardware.dali.transport import (
    DaliBus,
    DaliServerBus,
    FrameSink,
    InProcessBus,
    PythonDaliDriverBus,
    SyncPythonDaliDriverBus,
    open_hid,
    open_serial,
)

__all__ = [
    "NO_RETRY", "DaliBus", "DaliCollision", "DaliError", "DaliFramingError", "DaliNoAnswer",
    "DaliServerBus", "DaliTimeout", "Diagnostics", "EnergyReport", "FrameSink", "GearInfo",
    "GearStatus", "InProcessBus", "LuminaireInfo", "PythonDaliDriverBus", "RetryPolicy",
    "SyncPythonDaliDriverBus", "actual_level", "commission", "led_failures", "open_hid",
    "open_serial", "present_short_addresses", "query", "read_bank", "read_diagnostics",
    "read_energy", "read_gear_info", "read_luminaire_info", "read_with_retry",
    "run_sequence", "set_level", "status",
]
