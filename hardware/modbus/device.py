"""Async Modbus device: reads a profile's registers over a pymodbus client, with retries."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException

from wire.retry import Backoff, RetryPolicy

from .codec import ReadBlock, Value, decode_block, plan_profile_reads
from .errors import (
    ModbusConnectionError,
    ModbusError,
    ModbusExceptionResponse,
    ModbusProtocolError,
    ModbusTimeout,
)
from .profile import DeviceProfile, RegisterFunction

log = logging.getLogger(__name__)

MODBUS_RETRY = RetryPolicy(attempts=3, backoff=Backoff(initial_s=0.1, max_s=5.0))
"""Three tries in all, "equal jitter" between them, so that pollers that failed together (a meter
rebooting under several gateways) do not retry together."""


def tcp_client(host: str, port: int = 502, *, timeout_s: float = 1.0) -> AsyncModbusTcpClient:
    """A pymodbus TCP client set up for `ModbusDevice` (which owns retries and reconnects)."""
    return AsyncModbusTcpClient(host, port=port, timeout=timeout_s, retries=0, reconnect_delay=0)


def rtu_client(
    port: str,
    *,
    baudrate: int = 9600,
    parity: str = "N",
    stopbits: int = 1,
    bytesize: int = 8,
    timeout_s: float = 1.0,
) -> Any:
    """A pymodbus RTU (serial) client for `ModbusDevice`.

    Needs pyserial (``pymodbus[serial]``); without it this raises `ModbusConnectionError`.
    """
    from pymodbus.client import AsyncModbusSerialClient  # noqa: PLC0415 - serial is optional
    from pymodbus.framer import FramerType  # noqa: PLC0415

    try:
        return AsyncModbusSerialClient(
            port,
            framer=FramerType.RTU,
            baudrate=baudrate,
            parity=parity,
            stopbits=stopbits,
            bytesize=bytesize,
            timeout=timeout_s,
            retries=0,
            reconnect_delay=0,
        )
    except RuntimeError as exc:  # pymodbus raises RuntimeError when pyserial is missing
        raise ModbusConnectionError(f"cannot create RTU client on {port}: {exc}") from exc


class ModbusDevice:
    """One Modbus device described by a profile, reached through a pymodbus async client.

    ``read()`` groups the wanted registers into few contiguous requests
    (`plan_profile_reads`), sends each with a per-request timeout, retries timeouts,
    lost connections and busy answers with capped exponential backoff and jitter, and
    decodes the answers with the profile. Errors are typed: `ModbusTimeout`,
    `ModbusConnectionError`, `ModbusExceptionResponse`, `ModbusProtocolError`.
    """

    def __init__(
        self,
        profile: DeviceProfile,
        client: Any,
        *,
        device_id: int | None = None,
        timeout_s: float = 1.0,
        retry: RetryPolicy = MODBUS_RETRY,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.profile = profile
        self.client = client
        self.device_id = profile.default_device_id if device_id is None else device_id
        self.timeout_s = timeout_s
        self.retry = retry
        self._rng = rng or random.Random()
        self._sleep = sleep
        self._plans: dict[tuple[str, ...] | None, list[ReadBlock]] = {}
        self.requests_sent = 0

    async def __aenter__(self) -> ModbusDevice:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self.client.close()

    def plan(self, names: Iterable[str] | None = None) -> list[ReadBlock]:
        """The read requests `read(names)` sends (cached per set of names)."""
        key = None if names is None else tuple(sorted(names))
        if key not in self._plans:
            self._plans[key] = plan_profile_reads(self.profile, key)
        return self._plans[key]

    async def read(self, names: Iterable[str] | None = None) -> dict[str, Value]:
        """Read and decode the profile's registers (all, or just ``names``)."""
        values: dict[str, Value] = {}
        for block in self.plan(names):
            values.update(decode_block(block, await self.read_block(block)))
        return values

    async def read_block(self, block: ReadBlock) -> list[int]:
        """One read request, with timeout and retries; the raw registers."""
        last_error: ModbusError | None = None
        attempts = self.retry.attempts
        for attempt in range(attempts):
            if attempt:
                delay = self.retry.delay(attempt, self._rng)
                log.debug(
                    "modbus retry device=%s start=%s attempt=%d delay_s=%.3f error=%s",
                    self.device_id, block.start, attempt, delay, last_error,
                )
                await self._sleep(delay)
            try:
                return await self._request(block)
            except ModbusExceptionResponse as exc:
                exc.attempts = attempt + 1
                if not exc.retryable:
                    raise
                last_error = exc
            except (ModbusTimeout, ModbusConnectionError, ModbusProtocolError) as exc:
                last_error = exc
        assert last_error is not None
        if isinstance(last_error, (ModbusTimeout, ModbusConnectionError, ModbusExceptionResponse)):
            last_error.attempts = attempts
        log.warning(
            "modbus read failed device=%s function=%s start=%s count=%s attempts=%d error=%s",
            self.device_id, block.function.value, block.start, block.count, attempts, last_error,
        )
        raise last_error

    async def _request(self, block: ReadBlock) -> list[int]:
        if not self.client.connected:
            try:
                async with asyncio.timeout(self.timeout_s):
                    connected = await self.client.connect()
            except TimeoutError as exc:
                raise ModbusConnectionError(f"connect timed out after {self.timeout_s}s") from exc
            if not connected:
                raise ModbusConnectionError("cannot connect to Modbus device")
        read = (
            self.client.read_input_registers
            if block.function is RegisterFunction.INPUT
            else self.client.read_holding_registers
        )
        self.requests_sent += 1
        try:
            async with asyncio.timeout(self.timeout_s):
                response = await read(block.start, count=block.count, device_id=self.device_id)
        except TimeoutError as exc:
            raise ModbusTimeout(f"no answer within {self.timeout_s}s") from exc
        except ConnectionException as exc:
            raise ModbusConnectionError(str(exc)) from exc
        except ModbusIOException as exc:
            if "No response" in str(exc):
                raise ModbusTimeout(str(exc)) from exc
            raise ModbusProtocolError(str(exc)) from exc
        except ModbusException as exc:
            raise ModbusProtocolError(str(exc)) from exc
        if response.isError():
            raise ModbusExceptionResponse(
                response.exception_code,
                function_code=block.function.read_function_code,
                address=block.start,
            )
        registers = list(response.registers)
        if len(registers) != block.count:
            raise ModbusProtocolError(
                f"asked {block.count} registers at {block.start}, got {len(registers)}"
            )
        return registers
