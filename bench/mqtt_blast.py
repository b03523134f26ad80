"""A load generator for benchmarks: MQTT 5 QoS 1 PUBLISH packets written straight to a socket.

paho-mqtt spends about 50 µs of Python per QoS 1 publish, so two paho publishers on this 2-core
machine saturate near 12,000 messages/s and would measure themselves, not the broker or ingest.
This generator frames standard MQTT 5 packets itself (CONNECT with username/password, PUBLISH
QoS 1 with a packet id, PUBACK counted), writes them in large chunks and keeps a bounded window
of unacknowledged messages, as a C client would. Bench use only: the product publishes with paho.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Sequence


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _string(text: str | bytes) -> bytes:
    data = text.encode() if isinstance(text, str) else text
    return struct.pack("!H", len(data)) + data


def connect_packet(client_id: str, username: str, password: str, keepalive: int = 60) -> bytes:
    flags = 0x80 | 0x40 | 0x02  # username, password, clean start
    variable = _string("MQTT") + bytes([5, flags]) + struct.pack("!H", keepalive) + b"\x00"
    payload = _string(client_id) + _string(username) + _string(password)
    body = variable + payload
    return b"\x10" + _varint(len(body)) + body


def _read_packet(sock: socket.socket, buf: bytearray) -> tuple[int, bytes]:
    """Read one whole packet (type byte, body) from sock, using buf for leftovers."""
    while True:
        if len(buf) >= 2:
            length, shift, i = 0, 0, 1
            while i < len(buf):
                length |= (buf[i] & 0x7F) << shift
                shift += 7
                if not buf[i] & 0x80:
                    break
                i += 1
            else:
                i = -1
            if i > 0 and len(buf) >= i + 1 + length:
                kind, body = buf[0], bytes(buf[i + 1:i + 1 + length])
                del buf[:i + 1 + length]
                return kind, body
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("broker closed the connection")
        buf += chunk


def _count_pubacks(buf: bytearray) -> int:
    """Consume every complete packet in buf; return how many were PUBACKs."""
    acks, i, n = 0, 0, len(buf)
    while i + 1 < n:
        length, shift, j = 0, 0, i + 1
        while j < n:
            length |= (buf[j] & 0x7F) << shift
            shift += 7
            if not buf[j] & 0x80:
                break
            j += 1
        if j >= n or j + 1 + length > n:
            break
        if buf[i] >> 4 == 4:
            acks += 1
        i = j + 1 + length
    del buf[:i]
    return acks


def blast(host: str, port: int, username: str, password: str, client_id: str,
          messages: Sequence[tuple[str, bytes]], window: int = 2000, chunk: int = 256,
          timeout_s: float = 300.0) -> tuple[int, float, float]:
    """Publish every (topic, payload) at QoS 1; return (acknowledged, started, finished)."""
    sock = socket.create_connection((host, port), timeout=30)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf = bytearray()
    sock.sendall(connect_packet(client_id, username, password))
    kind, body = _read_packet(sock, buf)
    if kind >> 4 != 2 or len(body) < 2 or body[1] != 0:
        raise ConnectionError(f"CONNACK refused: {body[1:2].hex() if len(body) > 1 else body.hex()}")
    receive_max = 65535
    props = body[2:]
    # properties: varint length, then (id, value) pairs; Receive Maximum is id 0x21, two bytes
    i = 1 if props and props[0] < 0x80 else 2
    while i < len(props):
        pid = props[i]
        if pid == 0x21:
            receive_max = struct.unpack("!H", props[i + 1:i + 3])[0]
            break
        i += {0x11: 5, 0x12: None, 0x13: 3, 0x21: 3, 0x22: 3, 0x24: 2, 0x25: 2, 0x27: 5,
              0x28: 2, 0x29: 2, 0x2A: 2}.get(pid) or len(props)
    window = min(window, receive_max)
    prefixes: dict[str, bytes] = {}
    sock.settimeout(timeout_s)
    deadline = time.monotonic() + timeout_s
    sent = acked = 0
    packet_id = 0
    started = time.monotonic()
    total = len(messages)
    while acked < total and time.monotonic() < deadline:
        room = min(window - (sent - acked), total - sent, chunk)
        if room > 0:
            parts = []
            for topic, payload in messages[sent:sent + room]:
                packet_id = packet_id % 65535 + 1
                prefix = prefixes.get(topic)
                if prefix is None:
                    prefix = prefixes[topic] = _string(topic)
                body_len = len(prefix) + 3 + len(payload)
                parts.append(b"\x32" + _varint(body_len) + prefix + struct.pack("!H", packet_id)
                             + b"\x00" + payload)
            sock.sendall(b"".join(parts))
            sent += room
            if sent - acked < window and sent < total:
                continue
        data = sock.recv(1 << 20)
        if not data:
            raise ConnectionError("broker closed the connection")
        buf += data
        acked += _count_pubacks(buf)
    finished = time.monotonic()
    sock.sendall(b"\xe0\x00")  # DISCONNECT
    sock.close()
    return acked, started, finished
