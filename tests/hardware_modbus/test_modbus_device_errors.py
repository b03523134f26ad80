"""ModbusDevice against a real pymodbus server on loopback: typed errors, retries, reconnects."""

from __future__ import annotations

import asyncio
import random
import socket
import time

import pytest

from controller_fw_sim.modbus_meter import MeterServer
from hardware.modbus import (
    Backoff,
    ExceptionCode,
    ModbusConnectionError,
    ModbusDevice,
    ModbusExceptionResponse,
    ModbusTimeout,
    RetryPolicy,
    load_profile,
    tcp_client,
)

SDM630 = load_profile("eastron_sdm630")
FAST_RETRY = RetryPolicy(attempts=3, backoff=Backoff(initial_s=0.01, max_s=0.05))


def _device(port: int, **kwargs) -> ModbusDevice:
    kwargs.setdefault("timeout_s", 0.3)
    kwargs.setdefault("retry", FAST_RETRY)
    return ModbusDevice(SDM630, tcp_client("127.0.0.1", port, timeout_s=0.3), rng=random.Random(1), **kwargs)


def test_timeout_mode_raises_modbus_timeout_after_configured_retries():
    async def scenario():
        async with MeterServer() as server:
            server.publish({"voltage_l1": 230.0})
            device = _device(server.port)
            assert (await device.read(["voltage_l1"]))["voltage_l1"] == pytest.approx(230.0)
            server.set_timeout_mode()
            before = server.requests_received
            started = time.monotonic()
            with pytest.raises(ModbusTimeout) as caught:
                await device.read()
            elapsed = time.monotonic() - started
            assert caught.value.attempts == FAST_RETRY.attempts
            assert server.requests_received - before == FAST_RETRY.attempts
            assert elapsed >= 0.3 * (FAST_RETRY.attempts)
            server.clear_fault()
            # the device recovers once the meter answers again (reconnecting if needed)
            assert (await device.read(["voltage_l1"]))["voltage_l1"] == pytest.approx(230.0)
            device.close()

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("code", "name"),
    [
        (1, "ILLEGAL_FUNCTION"),
        (2, "ILLEGAL_DATA_ADDRESS"),
        (3, "ILLEGAL_DATA_VALUE"),
        (4, "SLAVE_DEVICE_FAILURE"),
        (6, "SLAVE_DEVICE_BUSY"),
        (10, "GATEWAY_PATH_UNAVAILABLE"),
        (11, "GATEWAY_TARGET_FAILED_TO_RESPOND"),
    ],
)
def test_exception_mode_raises_named_exception_response(code, name):
    async def scenario():
        async with MeterServer() as server:
            server.set_exception_mode(code)
            device = _device(server.port)
            with pytest.raises(ModbusExceptionResponse) as caught:
                await device.read()
            err = caught.value
            assert err.code == ExceptionCode(code) and err.code_name == name
            assert err.function_code == 4 and err.address == 0
            retried = code in (6, 11)  # busy device / silent gateway target: worth asking again
            assert err.attempts == (FAST_RETRY.attempts if retried else 1)
            assert server.requests_received == err.attempts
            device.close()

    asyncio.run(scenario())


def test_unmapped_address_gives_illegal_data_address():
    """The simulated meter is as strict as the profile: reads outside the map are refused."""
    from hardware.modbus import ReadBlock, RegisterFunction

    async def scenario():
        async with MeterServer() as server:
            device = _device(server.port)
            with pytest.raises(ModbusExceptionResponse) as caught:
                await device.read_block(ReadBlock(RegisterFunction.INPUT, 0x200, 2, ()))
            assert caught.value.code is ExceptionCode.ILLEGAL_DATA_ADDRESS
            device.close()

    asyncio.run(scenario())


def test_nothing_listening_gives_connection_error():
    with socket.socket() as s:  # a port that was free a moment ago
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    async def scenario():
        device = _device(port)
        with pytest.raises(ModbusConnectionError) as caught:
            await device.read()
        assert caught.value.attempts == FAST_RETRY.attempts
        device.close()

    asyncio.run(scenario())


def test_backoff_sleeps_between_attempts():
    slept: list[float] = []

    async def fake_sleep(delay: float) -> None:
        slept.append(delay)

    async def scenario():
        async with MeterServer() as server:
            server.set_exception_mode(ExceptionCode.SLAVE_DEVICE_BUSY)
            policy = RetryPolicy(attempts=4, backoff=Backoff(initial_s=0.1, max_s=0.25))
            device = _device(server.port, retry=policy, sleep=fake_sleep)
            with pytest.raises(ModbusExceptionResponse):
                await device.read()
            device.close()

    asyncio.run(scenario())
    assert len(slept) == 3
    for n, delay in enumerate(slept):
        capped = min(0.25, 0.1 * 2**n)
        assert capped / 2 <= delay <= capped


def test_rtu_client_needs_pyserial_or_builds_a_serial_client():
    from hardware.modbus import rtu_client

    try:
        import serial  # noqa: F401
    except ImportError:
        async def make():
            return rtu_client("/dev/ttyUSB0", baudrate=9600)

        with pytest.raises(ModbusConnectionError, match="pyserial"):
            asyncio.run(make())
        return

    async def build():
        client = rtu_client("/dev/ttyUSB0", baudrate=9600)
        assert client.comm_params.baudrate == 9600

    asyncio.run(build())
