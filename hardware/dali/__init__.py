"""DALI access through python-dali: transports, commissioning, D4i banks, typed errors."""

from hardware.dali.capabilities import (
    D4I_PARTS,
    PROBED_BANKS,
    GearCapabilities,
    colour_types,
    device_types,
    has_bank,
    probe,
)
from hardware.dali.commands import (
    gear_answers,
    query,
    read_with_retry,
    run_sequence,
)
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
    DaliNotImplemented,
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
from wire.retry import NO_RETRY, Backoff, RetryPolicy

__all__ = [
    "D4I_PARTS", "NO_RETRY", "Backoff", "PROBED_BANKS", "DaliBus", "DaliCollision", "DaliError",
    "DaliFramingError", "DaliNoAnswer", "DaliNotImplemented", "DaliServerBus", "DaliTimeout",
    "Diagnostics", "EnergyReport", "FrameSink", "GearCapabilities", "GearInfo", "GearStatus",
    "InProcessBus", "LuminaireInfo", "PythonDaliDriverBus", "RetryPolicy",
    "SyncPythonDaliDriverBus", "actual_level", "colour_types", "commission", "device_types",
    "gear_answers", "has_bank", "led_failures", "open_hid", "open_serial",
    "present_short_addresses", "probe", "query", "read_bank", "read_diagnostics", "read_energy",
    "read_gear_info", "read_luminaire_info", "read_with_retry", "run_sequence", "set_level",
    "status",
]
