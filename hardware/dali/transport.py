"""Ways to reach a DALI bus: one async `DaliBus` interface, several transports.

A transport moves python-dali `Command`s and returns python-dali `Response`s. Like
python-dali's own drivers it sends ENABLE DEVICE TYPE before a device-type command
and repeats a send-twice command; answers with framing errors are returned, not
raised (commissioning reads them as "several gear said yes"). `hardware.dali.query`
turns missing or garbled answers into typed errors.

* `DaliServerBus`  - the daliserver TCP protocol (a real daliserver or our simulator);
* `InProcessBus`   - any object with ``send(frame) -> BackwardFrame | None`` in the same
  process (the controller simulator's bus), no sockets;
* `PythonDaliDriverBus` - a python-dali async driver for a real USB / HID / serial
  interface (Tridonic DALI-USB, hasseb DALI Master, Lunatone/SCI RS-232...);
* `SyncPythonDaliDriverBus` - a python-dali blocking driver, run in a worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from typing import Any, Protocol, runtime_checkable

from dali.command import Command, Response
from dali.driver.daliserver import DaliServer
from dali.exceptions import CommunicationError
from dali.frame import BackwardFrame, ForwardFrame
from dali.gear.general import EnableDeviceType

from hardware.dali.errors import DaliError, DaliTimeout

log = logging.getLogger(__name__)


@runtime_checkable
class DaliBus(Protocol):
    """An async DALI bus: send one command, get its python-dali Response (or None)."""

    async def send(self, command: Command) -> Response | None: ...

    async def sleep(self, seconds: float) -> None: ...

    async def close(self) -> None: ...


class FrameSink(Protocol):
    """The in-process simulator's frame interface (`SimulatedDaliBus` satisfies it)."""

    def send(self, frame: ForwardFrame) -> BackwardFrame | None: ...


def _frames(command: Command) -> list[Command]:
    """The commands that go on the wire for one logical command."""
    wire = [EnableDeviceType(command.devicetype)] if command.devicetype else []
    wire.append(command)
    if command.sendtwice:
        wire.append(command)
    return wire


class InProcessBus:
    """A `DaliBus` over an in-process frame sink; ``sleep`` advances simulated time
    when the sink has ``advance(seconds)`` (so sequences never wait on the wall clock)."""

    def __init__(self, sink: FrameSink):
        self.sink = sink
        self.frames_sent = 0

    async def send(self, command: Command) -> Response | None:
        reply = None
        for cmd in _frames(command):
            reply = self.sink.send(cmd.frame)
            self.frames_sent += 1
        return command.response(reply) if command.response else None

    async def sleep(self, seconds: float) -> None:
        advance = getattr(self.sink, "advance", None)
        if advance is not None:
            advance(seconds)
        await asyncio.sleep(0)

    async def close(self) -> None:
        return None


class DaliServerBus:
    """daliserver protocol over asyncio TCP (one persistent connection).

    Request ``[2, 0, a, b]``, reply ``[2, status, value, 0]``; the reply is decoded
    with python-dali's own `DaliServer.unpack_response`. 16-bit frames only, as
    daliserver itself.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 55825, *,
                 timeout_s: float = 1.0):
        self.host, self.port, self.timeout_s = host, port, timeout_s
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._lock = asyncio.Lock()
        self._decoder = DaliServer(host, port)   # only its pure unpack_response is used

    async def connect(self) -> None:
        if self._writer is None:
            try:
                async with asyncio.timeout(self.timeout_s):
                    self._reader, self._writer = await asyncio.open_connection(
                        self.host, self.port)
            except TimeoutError as e:
                raise DaliTimeout(f"connect to daliserver {self.host}:{self.port}") from e
            except OSError as e:
                raise DaliError(f"cannot reach daliserver {self.host}:{self.port}: {e}") from e

    async def _exchange(self, command: Command) -> bytes:
        frame = command.frame
        if len(frame) != 16:
            raise DaliError(f"daliserver carries 16-bit frames only, not {len(frame)}-bit")
        await self.connect()
        assert self._reader is not None and self._writer is not None
        try:
            async with asyncio.timeout(self.timeout_s):
                self._writer.write(struct.pack("BB", 2, 0) + frame.pack)
                await self._writer.drain()
                return await self._reader.readexactly(4)
        except TimeoutError as e:
            await self._drop()
            raise DaliTimeout(f"daliserver did not answer {command}") from e
        except (OSError, asyncio.IncompleteReadError) as e:
            await self._drop()
            raise DaliError(f"daliserver connection lost: {e}") from e

    async def send(self, command: Command) -> Response | None:
        async with self._lock:
            result = None
            for cmd in _frames(command):
                result = await self._exchange(cmd)
        try:
            return self._decoder.unpack_response(command, result)
        except CommunicationError as e:  # an unknown status byte
            raise DaliError(f"daliserver: {e}") from e

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def _drop(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                log.debug("daliserver close after error host=%s port=%d", self.host, self.port)

    async def close(self) -> None:
        await self._drop()

    async def __aenter__(self) -> DaliServerBus:
        await self.connect()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()


@contextlib.asynccontextmanager
async def _driver_errors(driver: Any, command: Command, timeout_s: float):
    """Bound a python-dali driver call in time and turn its failures into typed DALI errors."""
    try:
        async with asyncio.timeout(timeout_s):
            yield
    except TimeoutError as e:
        raise DaliTimeout(f"{driver!r} did not complete {command}") from e
    except OSError as e:
        raise DaliError(f"{driver!r}: {e}") from e


class PythonDaliDriverBus:
    """A python-dali async driver (``await driver.send(command)``): `dali.driver.hid`'s
    ``tridonic`` / ``hasseb``, `dali.driver.serial`'s RS-232 drivers. Those drivers
    send ENABLE DEVICE TYPE and repeat send-twice commands themselves.

    Not testable here without the hardware; see `open_hid` / `open_serial`.
    """

    def __init__(self, driver: Any, *, timeout_s: float = 2.0):
        self.driver = driver
        self.timeout_s = timeout_s

    async def send(self, command: Command) -> Response | None:
        async with _driver_errors(self.driver, command, self.timeout_s):
            return await self.driver.send(command)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def close(self) -> None:
        disconnect = getattr(self.driver, "disconnect", None)
        if disconnect is not None:
            disconnect()


class SyncPythonDaliDriverBus:
    """A blocking python-dali driver (``driver.send(command)`` returns the response), e.g.
    `dali.driver.daliserver.DaliServer` or the ``Sync*DALIUSBDriver`` classes, run in a
    worker thread. ``sends_device_type``: whether the driver itself emits ENABLE DEVICE
    TYPE (the daliserver driver does not) and repeats send-twice commands.
    """

    def __init__(self, driver: Any, *, timeout_s: float = 2.0,
                 sends_device_type: bool = False):
        self.driver = driver
        self.timeout_s = timeout_s
        self.sends_device_type = sends_device_type

    async def send(self, command: Command) -> Response | None:
        async with _driver_errors(self.driver, command, self.timeout_s):
            if command.devicetype and not self.sends_device_type:
                await asyncio.to_thread(self.driver.send, EnableDeviceType(command.devicetype))
            return await asyncio.to_thread(self.driver.send, command)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def close(self) -> None:
        return None


async def open_hid(path: str, kind: str = "tridonic", *, timeout_s: float = 5.0,
                   **kwargs) -> PythonDaliDriverBus:
    """Open a HID DALI interface with python-dali (`dali.driver.hid.tridonic` or
    ``hasseb``), e.g. ``open_hid("/dev/dali/daliusb-*", glob=True)``. Needs the device."""
    from dali.driver import hid

    driver_cls = {"tridonic": hid.tridonic, "hasseb": hid.hasseb}[kind]
    driver = driver_cls(path, **kwargs)
    driver.connect()
    try:
        async with asyncio.timeout(timeout_s):
            await driver.connected.wait()
    except TimeoutError as e:
        driver.disconnect()
        raise DaliTimeout(f"HID DALI interface {path} did not come up") from e
    return PythonDaliDriverBus(driver)


async def open_serial(uri: str, *, timeout_s: float = 5.0) -> PythonDaliDriverBus:
    """Open a serial DALI interface by URI with python-dali's `dali.driver.serial`
    (e.g. ``"luba232:/dev/ttyUSB0"``). Needs the device."""
    from urllib.parse import urlparse

    from dali.driver import serial

    parsed = urlparse(uri)
    driver = serial.drivers_map()[parsed.scheme](parsed)
    try:
        async with asyncio.timeout(timeout_s):
            await driver.connect()
            await driver.wait_connected()
    except TimeoutError as e:
        raise DaliTimeout(f"serial DALI interface {uri} did not come up") from e
    return PythonDaliDriverBus(driver)
