"""How long Mosquitto (dynamic-security plugin) takes to authenticate a whole city at dusk.

A throwaway broker on loopback holds N controller accounts, each with its own role, hashed as
the stack hashes them (PBKDF2-SHA512, luciole.broker_config.HASH_ITERATIONS rounds). All N
controllers then connect at once (at most --in-flight connections open at a time, MQTT 5
CONNECT with their own client id and secret, CONNACK, DISCONNECT), from several loopback source
addresses. Prints the time until the last CONNACK, the rate, and the ceiling it is held to
(all 83,420 controllers of Brussels within 60 s); also the hashing cost alone, for comparison.

    .venv/bin/python bench/broker_auth.py [--controllers 83420] [--in-flight 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from luciole.broker_config import (  # noqa: E402
    HASH_ITERATIONS,
    BrokerAccount,
    Role,
    hash_password,
    new_secret,
    render_dynsec_config,
    render_mosquitto_conf,
)

CITY = 83_420
CEILING_S = 60.0
SOURCES = 8  # 127.0.0.1..8: each source address has its own ephemeral ports


def _utf8(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("!H", len(raw)) + raw


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def connect_packet(client_id: str, username: str, password: str) -> bytes:
    """MQTT 5 CONNECT, clean start, username and password, no properties."""
    # protocol name and level, flags (username, password, clean start), keep-alive, no properties
    variable = _utf8("MQTT") + bytes([5, 0b1100_0010]) + struct.pack("!H", 30) + b"\x00"
    payload = _utf8(client_id) + _utf8(username) + _utf8(password)
    body = variable + payload
    return b"\x10" + _varint(len(body)) + body


DISCONNECT = b"\xe0\x00"


async def one(port: int, account: tuple[str, str], source: str) -> bool:
    username, password = account
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    try:
        writer.write(connect_packet(username, username, password))
        await writer.drain()
        head = await reader.readexactly(2)
        rest = await reader.readexactly(head[1])
        accepted = head[0] == 0x20 and rest[1] == 0
        if accepted:
            writer.write(DISCONNECT)
            await writer.drain()
        return accepted
    finally:
        writer.close()


async def storm(port: int, accounts: list[tuple[str, str]], in_flight: int) -> tuple[int, float]:
    gate = asyncio.Semaphore(in_flight)

    async def guarded(i: int, account: tuple[str, str]) -> bool:
        async with gate:
            return await one(port, account, f"127.0.0.{1 + i % SOURCES}")

    started = time.perf_counter()
    results = await asyncio.gather(*(guarded(i, a) for i, a in enumerate(accounts)))
    return sum(results), time.perf_counter() - started


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--controllers", type=int, default=CITY)
    parser.add_argument("--in-flight", type=int, default=1000)
    args = parser.parse_args()
    n = args.controllers

    t0 = time.perf_counter()
    accounts = []
    clients = []
    for i in range(n):
        name = f"ctl-{i:06d}"
        password = new_secret()
        accounts.append((name, password))
        clients.append((BrokerAccount(name, Role.DEVICE, f"t{i % 19:02d}", name),
                        hash_password(password)))
    hashing_s = time.perf_counter() - t0
    sys.stdout.write(f"accounts: {n:,} devices, PBKDF2-SHA512 x {HASH_ITERATIONS}, hashed in "
                     f"{hashing_s:.1f} s on one core ({hashing_s / n * 1e6:.0f} us per account "
                     "made, secret and hash)\n")

    with tempfile.TemporaryDirectory(prefix="luciole-auth-") as tmp:
        var = Path(tmp)
        os.chmod(var, 0o777)  # mosquitto drops to its own user when started as root
        dynsec = var / "dynsec.json"
        dynsec.write_text(json.dumps(render_dynsec_config(clients)))
        (var / "data").mkdir()
        port = free_port()
        conf = var / "mosquitto.conf"
        conf.write_text(render_mosquitto_conf(
            port=port, data_dir=var / "data", dynsec_file=dynsec, log_file=var / "m.log",
            max_queued_messages=1000, max_inflight_messages=100).replace("persistence true",
                                                                          "persistence false"))
        for path in var.rglob("*"):
            os.chmod(path, 0o777 if path.is_dir() else 0o666)
        started = time.perf_counter()
        broker = subprocess.Popen(["/usr/sbin/mosquitto", "-c", str(conf)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                with socket.socket() as s:
                    if s.connect_ex(("127.0.0.1", port)) == 0:
                        break
                if broker.poll() is not None:
                    raise SystemExit(f"mosquitto exited with {broker.returncode}")
                time.sleep(0.1)
            sys.stdout.write(f"broker: loaded {n:,} accounts and roles in "
                             f"{time.perf_counter() - started:.1f} s\n")
            cpu_before = cpu_seconds(broker.pid)
            ok, wall = asyncio.run(storm(port, accounts, args.in_flight))
            broker_cpu = cpu_seconds(broker.pid) - cpu_before
        finally:
            broker.terminate()
            broker.wait(30)
    sys.stdout.write(f"broker CPU: {broker_cpu:.1f} s for {ok:,} connections "
                     f"({broker_cpu / max(ok, 1) * 1e6:.0f} us each, one thread: at most "
                     f"{ok / max(broker_cpu, 1e-9):,.0f} authentications/s)\n")
    # The broker authenticates on one thread: its CPU per connection bounds how fast it can take
    # the city, whatever the clients; the wall time also includes this script's own limits.
    broker_city_s = broker_cpu / max(ok, 1) * CITY
    wall_city_s = wall / max(ok, 1) * CITY
    sys.stdout.write(f"wall: {ok:,}/{n:,} authenticated in {wall:.1f} s ({ok / wall:,.0f}/s), "
                     f"{wall_city_s:.0f} s for {CITY:,} "
                     f"({'within' if wall_city_s <= CEILING_S else 'over'} {CEILING_S:.0f} s; "
                     "bounded by this load generator when the broker's CPU is below the wall)\n")
    sys.stdout.write(f"broker_auth: broker CPU {broker_city_s:.1f} s for {CITY:,} controllers; "
                     f"ceiling {CEILING_S:.0f} s -> "
                     f"{'within' if ok == n and broker_city_s <= CEILING_S else 'OVER'}\n")
    return 0 if ok == n else 1


if __name__ == "__main__":
    raise SystemExit(main())
