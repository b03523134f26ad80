"""Typed errors of the Modbus layer and the named Modbus exception codes."""

from __future__ import annotations

from enum import IntEnum


class ExceptionCode(IntEnum):
    """Modbus exception codes (Modbus Application Protocol v1.1b3, section 7)."""

    ILLEGAL_FUNCTION = 1
    ILLEGAL_DATA_ADDRESS = 2
    ILLEGAL_DATA_VALUE = 3
    SLAVE_DEVICE_FAILURE = 4
    ACKNOWLEDGE = 5
    SLAVE_DEVICE_BUSY = 6
    NEGATIVE_ACKNOWLEDGE = 7
    MEMORY_PARITY_ERROR = 8
    GATEWAY_PATH_UNAVAILABLE = 10
    GATEWAY_TARGET_FAILED_TO_RESPOND = 11


#: Exception codes worth retrying: the device (or the gateway in front of it) is
#: momentarily unable to answer; every other code is a definite answer.
RETRYABLE_EXCEPTION_CODES = frozenset(
    {
        ExceptionCode.SLAVE_DEVICE_BUSY,
        ExceptionCode.GATEWAY_TARGET_FAILED_TO_RESPOND,
    }
)


class ModbusError(Exception):
    """Base of every error raised by `hardware.modbus`."""


class ProfileError(ModbusError, ValueError):
    """A device profile file is missing or invalid."""


class CodecError(ModbusError, ValueError):
    """Registers cannot be decoded, or a value cannot be encoded, as asked."""


class ModbusTimeout(ModbusError):
    """The device did not answer in time, after all retries."""

    def __init__(self, message: str, *, attempts: int = 1) -> None:
        super().__init__(message)
        self.attempts = attempts


class ModbusConnectionError(ModbusError):
    """The transport (TCP socket, serial port) could not be opened or was lost."""

    def __init__(self, message: str, *, attempts: int = 1) -> None:
        super().__init__(message)
        self.attempts = attempts


class ModbusProtocolError(ModbusError):
    """The device answered with something that is not a valid answer to the request."""


class ModbusExceptionResponse(ModbusError):
    """The device answered with a Modbus exception response."""

    def __init__(
        self,
        code: int,
        *,
        function_code: int | None = None,
        address: int | None = None,
        attempts: int = 1,
    ) -> None:
        try:
            self.code: ExceptionCode | int = ExceptionCode(code)
        except ValueError:
            self.code = code
        self.function_code = function_code
        self.address = address
        self.attempts = attempts
        super().__init__(
            f"Modbus exception {int(code)} ({self.code_name}) "
            f"function={function_code} address={address}"
        )

    @property
    def code_name(self) -> str:
        """The exception code's name, e.g. ``ILLEGAL_DATA_ADDRESS``; ``UNKNOWN_n`` if unnamed."""
        return self.code.name if isinstance(self.code, ExceptionCode) else f"UNKNOWN_{self.code}"

    @property
    def retryable(self) -> bool:
        """Whether asking again later may succeed (busy device, silent gateway target)."""
        return self.code in RETRYABLE_EXCEPTION_CODES
