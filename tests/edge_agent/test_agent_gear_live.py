"""The real agent process (`python -m edge_agent run`) on a mixed DALI bus served over the
daliserver protocol, against the real broker: every gear's level and status with no false
communication fault; the birth message and the last will count the gear found, and are announced
again when a new gear appears; and the process never loads numba."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from agent_harness import WINTER_NIGHT, Watcher, device_account, sync_wait_until

from controller_fw_sim.dali import MIXED_BUS, DaliServerThread, SimulatedDaliBus
from wire.messages import Event, EventKind, State, loads
from wire.records import LEVEL_UNKNOWN, LuminaireFailure
from wire.topics import Kind

pytestmark = pytest.mark.integration
TENANT = "uccle"
REPO = Path(__file__).resolve().parents[2]
LATE = 3  # the DT8 gear gets its short address after the agent started

# runs the agent's own command line; at exit, writes which JIT packages were imported
AGENT = """
import atexit, json, sys
from edge_agent.cli import main
def report():
    jit = sorted({m.split(".")[0] for m in sys.modules} & {"numba", "llvmlite"})
    with open(sys.argv[1], "w") as out:
        json.dump(jit, out)
atexit.register(report)
sys.exit(main(["run", "--config", sys.argv[2]]))
"""


def _states(watcher: Watcher) -> list[State]:
    return [loads(State, m.payload) for m in watcher.of(Kind.STATE) if m.payload]


def _last_state(watcher: Watcher) -> State | None:
    states = _states(watcher)
    return states[-1] if states else None


def test_agent_process_on_a_mixed_bus(stack, tmp_path: Path) -> None:
    e = stack.endpoints
    controller = "ctl-mixed-1"
    password = device_account(stack.stack, TENANT, controller)
    sim = SimulatedDaliBus.with_gear(4, seed=9, profiles=MIXED_BUS)
    sim.gear[LATE].short_address = None
    config = tmp_path / "agent.json"
    jit_report = tmp_path / "jit.json"

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-c", AGENT, str(jit_report), str(config)],
                                cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    with DaliServerThread(sim) as dali, Watcher(e.mqtt_host, e.mqtt_port, e.mqtt_username,
                                                 e.mqtt_password) as watcher:
        config.write_text(json.dumps(dict(
            controller_id=controller, tenant=TENANT, data_dir=str(tmp_path / "data"),
            broker=dict(host=e.mqtt_host, port=e.mqtt_port, username=controller,
                        password=password),
            dali=[dict(kind="daliserver", host="127.0.0.1", port=dali.port)],
            config=dict(telemetry_interval_s=10, dali_poll_interval_s=5),
            dali_rediscover_s=20, clock_factor=10.0, clock_start=WINTER_NIGHT,
            reconnect_min_s=0.2, reconnect_max_s=2)))
        watcher.subscribe(f"luciole/v1/{TENANT}/{controller}/#")

        first = start()
        try:
            birth = sync_wait_until(lambda: _last_state(watcher), 30, "the birth message")
            assert birth.online and birth.luminaires == 3, "the birth counts the gear found"
            with sim.lock:
                sim.gear[LATE].short_address = LATE  # a driver commissioned while running
            announced = sync_wait_until(
                lambda: (s := _last_state(watcher)) and s.online and s.luminaires == 4 and s,
                30, "the new gear announced in a new birth message")
            assert announced.boot_id == birth.boot_id
            first.send_signal(signal.SIGKILL)  # a power cut: the broker sends the last will
            first.wait(10)
            will = sync_wait_until(
                lambda: (s := _last_state(watcher)) and not s.online and s, 30, "the last will")
            assert (will.reason, will.luminaires) == ("connection_lost", 4)
        finally:
            if first.poll() is None:
                first.kill()
                first.wait(10)

        mark = len(watcher.records())
        second = start()
        try:
            sync_wait_until(lambda: (s := _last_state(watcher)) and s.online, 30, "online again")
            assert _last_state(watcher).luminaires == 4  # type: ignore[union-attr]
            sync_wait_until(lambda: {r["luminaire"] for _, _, r in watcher.records()[mark:]}
                            >= {0, 1, 2, 3}, 30, "telemetry of every gear")
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(20)
        assert second.returncode == 0, second.stderr.read().decode()[-2000:]  # type: ignore[union-attr]

    goodbye = _last_state(watcher)
    assert goodbye is not None and (goodbye.online, goodbye.reason, goodbye.luminaires) == (
        False, "shutdown", 4)
    assert json.loads(jit_report.read_text()) == [], "the running agent never imported numba"
    records = [r for _, _, r in watcher.records()[mark:]]
    assert all(r["level"] != LEVEL_UNKNOWN and not r["failure"] & LuminaireFailure.COMM
               for r in records), "no false communication fault on a mixed bus"
    by_lum = {int(r["luminaire"]): r for r in records}
    assert by_lum[0]["failure"] & LuminaireFailure.ABSENT_POWER, "plain DT6: power absent"
    assert by_lum[0]["status"] & 0x04 and by_lum[0]["level"] == 254
    assert not by_lum[2]["failure"] & (LuminaireFailure.ABSENT_POWER
                                       | LuminaireFailure.ABSENT_DIAGNOSTICS)
    assert by_lum[2]["power_w"] > 0 and by_lum[2]["voltage_v"] > 200
    events = [loads(Event, m.payload) for m in watcher.of(Kind.EVENT)]
    assert [ev for ev in events if ev.kind is EventKind.DALI_ERROR] == []
    inventory = {(ev.boot_id, ev.luminaire): ev.detail for ev in events
                 if ev.kind is EventKind.INVENTORY}
    assert {lum for _, lum in inventory} == {0, 1, 2, 3}
    assert {d["d4i_parts"] for d in inventory.values()} == {"", "252", "251,252,253", "251,252"}
