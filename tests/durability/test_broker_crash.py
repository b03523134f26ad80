"""The broker crashes (SIGKILL: everything since its last autosave is gone, PUBACKed or not) and
restarts cleanly, ten times each, while controllers publish 100,000 readings: every reading
reaches the database exactly once, because a reading leaves a controller's outbox only on
ingest's receipt, and the message ledger drops the resends."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest
from durable_fleet import DurableFleet, LinkController, ingest_env, make_agent, register, stored

from luciole.stack import Stack, pid_alive, wait_for
from tests.ingest.ingest_helpers import ProcessWorker

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.durability]

READINGS = 100_000
FAULTS = 20  # alternately SIGKILL and SIGTERM (a clean restart)


def _restart_broker(stack: Stack, sig: signal.Signals) -> None:
    pid = stack.endpoints().mosquitto_pid
    assert pid is not None
    os.kill(pid, sig)
    wait_for(lambda: not pid_alive(pid), 20, "mosquitto to stop")
    port = stack.endpoints().mqtt_port
    assert stack.up().mqtt_port == port, "the broker came back on its port"


def test_broker_sigkills_and_restarts_lose_and_duplicate_no_reading(
        own_stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    endpoints = own_stack.up()
    controllers = [LinkController(tmp_path, own_stack, endpoints, f"dur-c{i:02d}", 25, 1_000 + i)
                   for i in range(20)]
    agents = [make_agent(tmp_path, own_stack, endpoints, f"dur-agent-{i}", gear=2, seed=i)
              for i in range(3)]
    names = [c.name for c in controllers] + [a.controller for a in agents]
    register(endpoints.dsn(), names)
    worker = ProcessWorker(ingest_env(own_stack), tmp_path / "ingest.log")
    fleet = DurableFleet(controllers, agents, round_s=0.2)
    started = time.monotonic()
    try:
        fleet.start(READINGS)
        for fault in range(FAULTS):
            # faults spread over the stream: each after another 1/(FAULTS+1) of it was taken
            goal = READINGS * (fault + 1) // (FAULTS + 1)
            wait_for(lambda g=goal: fleet.taken >= g or fleet.error is not None, 60, "readings taken")
            assert fleet.error is None, fleet.error
            _restart_broker(own_stack, signal.SIGKILL if fault % 2 == 0 else signal.SIGTERM)
        wait_for(lambda: fleet.taken >= READINGS, 60, "every reading taken")
        wait_for(lambda: fleet.held() == 0 or fleet.error is not None, 120,
                 "every outbox emptied by receipts")
        assert fleet.error is None, fleet.error
        sent = fleet.taken
        agents_sent = sum(a.seq["luminaire"].next for a in agents)
    finally:
        fleet.stop()
        worker.stop()
    elapsed = time.monotonic() - started
    total, distinct = stored(endpoints.dsn(), names)
    with capsys.disabled():
        sys.stdout.write(f"\nbroker faults {FAULTS // 2} SIGKILL + {FAULTS // 2} SIGTERM: sent {sent} "
                         f"(agents {agents_sent}), stored {total}, distinct {distinct}; resent "
                         f"{sum(c.link.confirm.resent for c in controllers)} messages; {elapsed:.0f} s\n")
    assert sent >= READINGS and agents_sent > 0
    assert (total, distinct) == (sent, sent), "0 lost, 0 duplicates"
