"""Serve a simulated DALI bus over TCP in the daliserver protocol.

The protocol is the one python-dali's `dali.driver.daliserver.DaliServer` speaks:
the client sends 4 bytes ``[2, 0, address byte, opcode byte]`` per 16-bit forward
frame (a send-twice command is simply sent twice) and reads 4 bytes
``[2, status, value, 0]``: status 0 = no answer, 1 = answer ``value``, 255 = framing
error (several gear answered). A connection may carry any number of frames.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable

from dali.frame import ForwardFrame

from controller_fw_sim.dali.bus import SimulatedDaliBus

log = logging.getLogger(__name__)

PROTOCOL_VERSION = 2
REQUEST_SEND = 0
STATUS_NO_ANSWER = 0
STATUS_ANSWER = 1
STATUS_BAD_REQUEST = 2
STATUS_FRAMING_ERROR = 255


def answer_bytes(request: bytes, bus: SimulatedDaliBus) -> bytes:
    """Pure protocol step: one 4-byte request to one 4-byte reply."""
    version, kind, hi, lo = request
    if version != PROTOCOL_VERSION or kind != REQUEST_SEND:
        return bytes([PROTOCOL_VERSION, STATUS_BAD_REQUEST, 0, 0])
    reply = bus.send(ForwardFrame(16, (hi << 8) | lo))
    if reply is None:
        return bytes([PROTOCOL_VERSION, STATUS_NO_ANSWER, 0, 0])
    if reply.error:
        return bytes([PROTOCOL_VERSION, STATUS_FRAMING_ERROR, 0, 0])
    return bytes([PROTOCOL_VERSION, STATUS_ANSWER, reply.as_integer, 0])


class DaliServerSim:
    """asyncio TCP server for a `SimulatedDaliBus`.

    ``clock``: when given (e.g. `time.monotonic`), simulated time follows it: the bus
    is advanced to ``clock() - start`` before each frame. Without it, time moves
    only when the owner calls ``bus.advance``.
    """

    def __init__(self, bus: SimulatedDaliBus, host: str = "127.0.0.1", port: int = 0,
                 clock: Callable[[], float] | None = None):
        self.bus = bus
        self.host = host
        self._port = port
        self._clock = clock
        self._t0 = clock() - bus.now if clock else 0.0
        self._server: asyncio.base_events.Server | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("server not started")
        return self._server.sockets[0].getsockname()[1]

    async def start(self) -> int:
        """Listen; returns the actual port (``port=0`` picks a free one)."""
        self._server = await asyncio.start_server(self._client, self.host, self._port)
        log.info("daliserver sim listening host=%s port=%d gear=%d", self.host, self.port,
                 len(self.bus.gear))
        return self.port

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> DaliServerSim:
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        try:
            while True:
                try:
                    request = await reader.readexactly(4)
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                if self._clock is not None:
                    self.bus.advance_to(self._clock() - self._t0)
                writer.write(answer_bytes(request, self.bus))
                await writer.drain()
        finally:
            writer.close()


class DaliServerThread:
    """Run a `DaliServerSim` on its own event loop in a thread, for blocking clients
    such as python-dali's `DaliServer` driver. Use as a context manager; ``port``
    is the listening port."""

    def __init__(self, bus: SimulatedDaliBus, host: str = "127.0.0.1", port: int = 0,
                 clock: Callable[[], float] | None = None):
        self.server = DaliServerSim(bus, host, port, clock)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self.port = 0

    def start(self, timeout_s: float = 5.0) -> int:
        self._thread = threading.Thread(target=self._run, name="daliserver-sim", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout_s):
            raise TimeoutError("daliserver sim did not start")
        if self._error is not None:
            raise self._error
        return self.port

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            async with self.server:
                self.port = self.server.port
                self._ready.set()
                await self._stop.wait()
        except BaseException as e:  # reported to the starting thread
            self._error = e
            self._ready.set()
            raise

    def stop(self, timeout_s: float = 5.0) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout_s)

    def __enter__(self) -> DaliServerThread:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def realtime_clock() -> float:
    return time.monotonic()
