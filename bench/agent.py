"""Benchmark of one edge agent's footprint: RSS, and CPU per luminaire at one-minute telemetry.

One agent process (`python -m edge_agent run`, as on a controller) with 4 luminaires on a
simulated daliserver bus (plain DT6, D4i Part 252 only, full D4i, DT8 colour temperature) and an
Eastron SDM630 energy meter over Modbus TCP, publishing to a real Mosquitto started for the run.
The agent's clock runs `--speed` times faster than real time (default 10: a telemetry message a
minute of agent time, every 6 real seconds), so all of its time-driven work (DALI polls every
10 s, diagnostics every 6th poll, meter polls every 15 s, telemetry every 60 s, control ticks
every second) is done `speed` times in each real second: CPU seconds per agent second is the
CPU the agent needs at real time. `--speed 1` measures at real time, slowly.

Printed beside the agent: the floor it must stay under (RSS < 64 MiB), and two bare
interpreters for comparison: one importing the agent (its libraries and code, nothing running),
and one importing it and numba (what the agent carried before its encoder stopped loading the
batch-decode kernels). The last line reads `agent: RSS X MiB (floor 64 MiB), CPU Y % of a core per
luminaire at 1-minute telemetry`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from controller_fw_sim.dali import MIXED_BUS, DaliServerThread, SimulatedDaliBus
from controller_fw_sim.modbus_meter import MeterServer
from luciole.broker_config import BrokerAccount, Role
from luciole.settings import StackSettings
from luciole.stack import Endpoints, Stack
from wire.codec import decode
from wire.records import RecordType

REPO = Path(__file__).resolve().parents[1]
FLOOR_MIB = 64.0
LUMINAIRES = 4
TELEMETRY_INTERVAL_S = 60  # the ControllerConfig default: one-minute telemetry
WINTER_NIGHT = 1_734_382_800.0  # 2024-12-16 21:00 UTC: the fallback schedule burns at full
TICK_S = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") / 1024


def say(text: str) -> None:
    print(text, flush=True)  # noqa: T201 - a benchmark prints its figures


def status_kib(pid: int, field: str) -> float:
    """A `VmRSS:`-like field of /proc/<pid>/status, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return float(line.split()[1])
    raise KeyError(field)


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (/proc/<pid>/stat fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK_S


def interpreter_rss_mib(code: str) -> float:
    """RSS of a fresh interpreter after running `code`."""
    report = "import os; print(open(f'/proc/{os.getpid()}/status').read())"
    out = subprocess.run([sys.executable, "-c", f"{code}\n{report}"], cwd=REPO, check=True,
                         capture_output=True, text=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("VmRSS:"))
    return float(line.split()[1]) / 1024


class MeterThread:
    """The Modbus meter simulator on an event loop of its own."""

    def __init__(self) -> None:
        self.meter = MeterServer()
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="meter", daemon=True)

    def __enter__(self) -> MeterThread:
        self._thread.start()
        self.port = asyncio.run_coroutine_threadsafe(self.meter.start(), self._loop).result(10)
        self.meter.publish({"energy_import_kwh": 1234.5, "power_total": 180.0, "frequency": 50.0,
                            "voltage_ln_avg": 231.0})
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.meter.stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


@dataclass
class Run:
    agent_s: float
    cpu_s: float
    rss_mib: float
    peak_mib: float
    luminaire_records: int
    sensor_records: int
    messages: int


class Subscriber:
    """The controller's telemetry as the centre sees it (a service account of the stack)."""

    def __init__(self, endpoints: Endpoints, topic: str) -> None:
        self.payloads: list[bytes] = []
        self._lock = threading.Lock()
        subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.username_pw_set(endpoints.mqtt_username, endpoints.mqtt_password)
        self.client.on_connect = lambda c, u, f, r, p: c.subscribe(topic, 1)
        self.client.on_subscribe = lambda c, u, mid, codes, p: subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(endpoints.mqtt_host, endpoints.mqtt_port)
        self.client.loop_start()
        if not subscribed.wait(10):
            raise RuntimeError("telemetry subscription not acknowledged")

    def _on_message(self, client: mqtt.Client, userdata: object,
                    message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.payloads.append(bytes(message.payload))

    def take(self) -> tuple[int, int, int]:
        """(luminaire records, sensor records, messages) received since the last call."""
        with self._lock:
            payloads, self.payloads = self.payloads, []
        lum = sen = 0
        for payload in payloads:
            decoded = decode(payload)
            if decoded.record_type is RecordType.LUMINAIRE:
                lum += decoded.record_count
            else:
                sen += decoded.record_count
        return lum, sen, len(payloads)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def measure(stack: Stack, endpoints: Endpoints, tmp: Path, speed: float, seconds: float) -> Run:
    tenant, controller = "bench", "ctl-bench-agent"
    password = secrets.token_urlsafe(12)
    stack.add_broker_account(BrokerAccount(controller, Role.DEVICE, tenant, controller), password)
    sim = SimulatedDaliBus.with_gear(LUMINAIRES, seed=1, profiles=MIXED_BUS)
    start = time.monotonic()
    with DaliServerThread(sim, clock=lambda: (time.monotonic() - start) * speed) as dali, \
            MeterThread() as meter:
        config = tmp / "agent.json"
        config.write_text(json.dumps(dict(
            controller_id=controller, tenant=tenant, data_dir=str(tmp / "agent"),
            broker=dict(host=endpoints.mqtt_host, port=endpoints.mqtt_port, username=controller,
                        password=password),
            dali=[dict(kind="daliserver", host="127.0.0.1", port=dali.port)],
            modbus=[dict(profile="eastron_sdm630", host="127.0.0.1", port=meter.port)],
            clock_factor=speed, clock_start=WINTER_NIGHT)))
        telemetry = Subscriber(endpoints, f"luciole/v1/{tenant}/{controller}/telemetry")
        agent = subprocess.Popen([sys.executable, "-m", "edge_agent", "run", "--config",
                                  str(config)], cwd=REPO, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 30 + 2 * TELEMETRY_INTERVAL_S / speed
            while telemetry.take()[0] == 0:  # warm up: started, discovered, a first message out
                if agent.poll() is not None or time.monotonic() > deadline:
                    agent.terminate()
                    _, err = agent.communicate(timeout=30)
                    raise RuntimeError(f"the agent sent no telemetry: {err.decode()[-2000:]}")
                time.sleep(0.1)
            cpu0, t0 = cpu_s(agent.pid), time.monotonic()
            rss: list[float] = []
            while time.monotonic() - t0 < seconds:
                time.sleep(1.0)
                rss.append(status_kib(agent.pid, "VmRSS") / 1024)
            cpu1, t1 = cpu_s(agent.pid), time.monotonic()
            peak = status_kib(agent.pid, "VmHWM") / 1024
            time.sleep(2.0 / speed + 0.5)  # the last message in flight
            lum, sen, msgs = telemetry.take()
        finally:
            agent.terminate()
            agent.wait(30)
            telemetry.close()
    return Run((t1 - t0) * speed, cpu1 - cpu0, sorted(rss)[len(rss) // 2], peak, lum, sen, msgs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--speed", type=float, default=10.0, help="agent clock speed-up")
    parser.add_argument("--seconds", type=float, default=60.0, help="real seconds measured")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-agent-") as tmp:
        stack = Stack(StackSettings(var_dir=Path(tmp) / "var", mqtt_port=0, pg_port=0,
                                    pg_fsync=False, pg_shared_buffers="32MB"))
        endpoints = stack.up()
        try:
            say(f"stack up in {tmp}: mosquitto :{endpoints.mqtt_port}; {os.cpu_count()} cores "
                f"shared by all; agent clock x{args.speed:g}, {args.seconds:g} s measured")
            run = measure(stack, endpoints, Path(tmp), args.speed, args.seconds)
        finally:
            stack.down()
    minutes = run.agent_s / 60
    say(f"agent time measured: {run.agent_s:,.0f} s ({minutes:.1f} telemetry intervals); "
        f"received {run.messages} messages: {run.luminaire_records} luminaire records "
        f"({run.luminaire_records / max(minutes, 1e-9) / LUMINAIRES:.2f} per luminaire-minute), "
        f"{run.sensor_records} meter records")
    cpu_pct = 100 * run.cpu_s / run.agent_s
    say(f"CPU: {run.cpu_s:.2f} s for {run.agent_s:,.0f} agent s = {cpu_pct:.3f} % of a core for "
        f"the agent, {cpu_pct / LUMINAIRES:.3f} % per luminaire")
    bare = interpreter_rss_mib("import edge_agent.agent, edge_agent.cli")
    jit = interpreter_rss_mib("import edge_agent.agent, edge_agent.cli, wire.kernels, numba")
    say(f"RSS: {run.rss_mib:.1f} MiB median, {run.peak_mib:.1f} MiB peak; "
        f"floor {FLOOR_MIB:.0f} MiB")
    say(f"  for comparison: the agent imported, not running {bare:.1f} MiB; "
        f"with numba imported as before {jit:.1f} MiB")
    say(f"agent: RSS {run.peak_mib:.1f} MiB (floor {FLOOR_MIB:.0f} MiB), CPU "
        f"{cpu_pct / LUMINAIRES:.3f} % of a core per luminaire at 1-minute telemetry")


if __name__ == "__main__":
    main()
