"""Ingest is SIGKILLed at ten random moments, and once right after a batch committed (before its
receipts and its acknowledgement went out), while controllers publish: stored = distinct = sent.
The broker redelivers what was not acknowledged, the controllers resend what no receipt named,
and the message ledger drops every copy."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from durable_fleet import DurableFleet, LinkController, ingest_env, make_agent, register, stored

from luciole.stack import Stack, wait_for
from tests.ingest.ingest_helpers import REPO, ProcessWorker

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.durability]

READINGS = 40_000
KILLS = 10


class CrashAfterCommitWorker(ProcessWorker):
    """An ingest worker that SIGKILLs itself right after its first committed batch."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = open(log_path, "ab")
        script = Path(__file__).with_name("ingest_crash_after_commit.py")
        self.proc = subprocess.Popen([sys.executable, str(script)], cwd=REPO, env=env,
                                     stdout=self._log, stderr=subprocess.STDOUT)


def test_ingest_sigkills_lose_and_duplicate_no_reading(own_stack: Stack, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    endpoints = own_stack.up()
    controllers = [LinkController(tmp_path, own_stack, endpoints, f"ing-c{i:02d}", 20, 2_000 + i)
                   for i in range(10)]
    agents = [make_agent(tmp_path, own_stack, endpoints, "ing-agent-0", gear=2, seed=3)]
    names = [c.name for c in controllers] + [a.controller for a in agents]
    register(endpoints.dsn(), names)
    log = tmp_path / "ingest.log"
    env = ingest_env(own_stack)
    rng = random.Random(11)
    worker = ProcessWorker(env, log)
    fleet = DurableFleet(controllers, agents, round_s=0.1)
    started = time.monotonic()
    try:
        fleet.start(READINGS)
        step = READINGS // (KILLS + 3)
        for kill in range(KILLS + 1):
            # a random moment of the stream: batching, writing, publishing receipts, acknowledging
            goal = step * (kill + 1) + rng.randrange(step // 2)
            wait_for(lambda g=goal: fleet.taken >= g or fleet.error is not None, 60, "readings taken")
            assert fleet.error is None, fleet.error
            if kill == KILLS // 2:  # once, mid-stream: between commit and acknowledgement
                worker.stop()
                crashing = CrashAfterCommitWorker(env, log)
                assert crashing.proc.wait(60) == -signal.SIGKILL, "it died right after a commit"
                crashing._log.close()
            else:
                worker.kill()
            worker = ProcessWorker(env, log)
        wait_for(lambda: fleet.taken >= READINGS, 60, "every reading taken")
        wait_for(lambda: fleet.held() == 0 or fleet.error is not None, 120,
                 "every outbox emptied by receipts")
        assert fleet.error is None, fleet.error
        sent = fleet.taken
    finally:
        fleet.stop()
        worker.stop()
    total, distinct = stored(endpoints.dsn(), names)
    with capsys.disabled():
        sys.stdout.write(f"\ningest faults {KILLS} SIGKILL at random + 1 after commit: sent {sent}, "
                         f"stored {total}, distinct {distinct}; resent "
                         f"{sum(c.link.confirm.resent for c in controllers)} messages; "
                         f"{time.monotonic() - started:.0f} s\n")
    assert sent >= READINGS
    assert (total, distinct) == (sent, sent), "0 lost, 0 duplicates"
