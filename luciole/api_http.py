"""uvicorn's httptools protocol with the writes of one event-loop step sent as one: uvicorn writes
a response's status line and headers, then its body, as two writes, so two sends and two TCP
segments on a keep-alive connection (each send on loopback also runs the receiver's side of TCP
and wakes it). Here the transport keeps what is written in one step and sends it once, at the
end of that step (`loop.call_soon`), in order; closing sends what is kept first."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class CoalescingTransport(asyncio.Transport):
    """A transport that passes one event-loop step's writes to `transport` in one write."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._transport, self._loop = transport, loop
        self._kept: list[bytes] = []
        self._flush_soon = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        # bytes are immutable; a mutable buffer is copied, since it is sent later
        self._kept.append(data if isinstance(data, bytes) else bytes(data))
        if not self._flush_soon:
            self._flush_soon = True
            self._loop.call_soon(self.flush)

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.write(data)

    def flush(self) -> None:
        """Send what is kept now (the step's end does it by itself)."""
        self._flush_soon = False
        if not self._kept:
            return
        data = self._kept[0] if len(self._kept) == 1 else b"".join(self._kept)
        self._kept.clear()
        if not self._transport.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def abort(self) -> None:
        self._kept.clear()
        self._transport.abort()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(len(d) for d in self._kept)

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """`luciole api serve` runs uvicorn with this protocol (`http=` takes its import path)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TCPTransport has the Transport methods without subclassing asyncio.Transport
        super().connection_made(CoalescingTransport(cast(asyncio.Transport, transport), self.loop))


IMPORT_PATH = f"{__name__}:{CoalescingHttpToolsProtocol.__name__}"
