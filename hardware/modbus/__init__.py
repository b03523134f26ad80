"""Modbus device access through pymodbus: profiles as data, a pure codec, an async device."""

from wire.retry import Backoff, RetryPolicy

from .codec import (
    ReadBlock,
    Value,
    decode_block,
    decode_raw,
    decode_value,
    encode_image,
    encode_raw,
    encode_value,
    plan_profile_reads,
    plan_reads,
)
from .device import MODBUS_RETRY, ModbusDevice, rtu_client, tcp_client
from .errors import (
    CodecError,
    ExceptionCode,
    ModbusConnectionError,
    ModbusError,
    ModbusExceptionResponse,
    ModbusProtocolError,
    ModbusTimeout,
    ProfileError,
)
from .profile import (
    PROFILES_DIR,
    DeviceProfile,
    RegisterFunction,
    RegisterSpec,
    RegisterType,
    available_profiles,
    load_profile,
    parse_profile,
)

__all__ = [
    "PROFILES_DIR",
    "CodecError",
    "DeviceProfile",
    "ExceptionCode",
    "ModbusConnectionError",
    "ModbusDevice",
    "ModbusError",
    "ModbusExceptionResponse",
    "ModbusProtocolError",
    "ModbusTimeout",
    "ProfileError",
    "ReadBlock",
    "RegisterFunction",
    "RegisterSpec",
    "RegisterType",
    "RetryPolicy",
    "Backoff",
    "MODBUS_RETRY",
    "Value",
    "available_profiles",
    "decode_block",
    "decode_raw",
    "decode_value",
    "encode_image",
    "encode_raw",
    "encode_value",
    "load_profile",
    "parse_profile",
    "plan_profile_reads",
    "plan_reads",
    "rtu_client",
    "tcp_client",
]
