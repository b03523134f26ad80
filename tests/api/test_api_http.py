"""The API's HTTP protocol (luciole/api_http.py): one event-loop step's writes leave in one send,
in order, and closing sends what is kept first; uvicorn serving with it answers keep-alive,
streamed, HEAD and refused requests whole, and survives clients that hang up early."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.types import Receive, Scope, Send

from luciole.api_http import IMPORT_PATH, CoalescingTransport
from luciole.stack import free_port, wait_for


class CountingTransport(asyncio.Transport):
    """A real socket transport, with the writes that reach it counted."""

    def __init__(self, transport: asyncio.Transport) -> None:
        super().__init__()
        self.inner, self.writes = transport, 0

    def write(self, data: Any) -> None:
        self.writes += 1
        self.inner.write(data)

    def is_closing(self) -> bool:
        return self.inner.is_closing()

    def close(self) -> None:
        self.inner.close()


async def _pair() -> tuple[CountingTransport, CoalescingTransport, asyncio.StreamReader,
                           asyncio.StreamWriter]:
    """A loopback TCP connection: the server side's transport wrapped, the client's streams
    (the writer kept: dropping it closes the client's side)."""
    made: asyncio.Future[asyncio.Transport] = asyncio.get_running_loop().create_future()

    class Server(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            assert isinstance(transport, asyncio.Transport)
            made.set_result(transport)

    server = await asyncio.get_running_loop().create_server(Server, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    counting = CountingTransport(await made)
    server.close()
    return counting, CoalescingTransport(counting, asyncio.get_running_loop()), reader, writer


def test_writes_of_one_step_leave_in_one_send_in_order() -> None:
    async def run() -> None:
        counting, transport, reader, writer = await _pair()
        transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
        transport.write(bytearray(b"body"))  # a mutable buffer is copied, so changing it is harmless
        transport.writelines([b"-", memoryview(b"end")])
        assert counting.writes == 0  # nothing sent before the step ends
        await asyncio.sleep(0)
        assert counting.writes == 1
        assert await reader.readexactly(27) == b"HTTP/1.1 200 OK\r\n\r\nbody-end"
        transport.write(b"next")
        await asyncio.sleep(0)
        transport.write(b" step")
        await asyncio.sleep(0)
        assert counting.writes == 3
        transport.write(b"last")
        transport.close()  # what is kept leaves before the close
        assert await reader.read() == b"next steplast"
        transport.write(b"after close")  # dropped, never raised
        await asyncio.sleep(0)
        assert counting.writes == 4
        writer.close()

    asyncio.run(run())


async def _app(scope: Scope, receive: Receive, send: Send) -> None:
    assert scope["type"] == "http"
    if scope["path"] == "/stream":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})
        for i in range(3):
            await send({"type": "http.response.body", "body": f"chunk{i};".encode(), "more_body": True})
            await asyncio.sleep(0.01)
        await send({"type": "http.response.body", "body": b""})
        return
    body = b'{"ok":true}'
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture(scope="module")
def served() -> Iterator[str]:
    port = free_port("127.0.0.1")
    config = uvicorn.Config(_app, host="127.0.0.1", port=port, loop="uvloop", http=IMPORT_PATH,
                            log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(base + "/", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(up, 30, "uvicorn with the coalescing protocol")
    yield base
    server.should_exit = True
    thread.join(10)


def test_served_keep_alive_streamed_and_head_answers_are_whole(served: str) -> None:
    with httpx.Client(base_url=served, timeout=5) as client:
        for _ in range(20):  # one keep-alive connection
            answer = client.get("/")
            assert answer.status_code == 200 and answer.json() == {"ok": True}
        streamed = client.get("/stream")
        assert streamed.text == "chunk0;chunk1;chunk2;"
        assert streamed.headers["transfer-encoding"] == "chunked"
        head = client.head("/")
        assert head.status_code == 200 and head.content == b""
        assert head.headers["content-length"] == "11"


def _raw(base: str, payload: bytes, read: bool = True) -> bytes:
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(payload)
        if not read:
            return b""
        chunks = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


def test_hostile_clients_get_a_whole_refusal_and_the_server_keeps_serving(served: str) -> None:
    # a malformed request: uvicorn answers 400 and closes; the answer is not lost in the close
    refused = _raw(served, b"GET / HTTP/1.1\r\nHost: x\r\nBad Header Without Colon\r\n\r\n")
    assert refused.startswith(b"HTTP/1.1 400 "), refused[:80]
    # pipelined requests, then a close: every answer arrives, in order
    two = _raw(served, b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /stream HTTP/1.1\r\nHost: x\r\n"
                       b"Connection: close\r\n\r\n")
    assert two.count(b"HTTP/1.1 200 OK") == 2 and two.index(b'{"ok":true}') < two.index(b"chunk0")
    for _ in range(10):  # clients that hang up before reading their answer
        _raw(served, b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n", read=False)
    assert httpx.get(served + "/", timeout=5).json() == {"ok": True}
