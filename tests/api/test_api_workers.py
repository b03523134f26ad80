"""`luciole api serve` with two real uvicorn workers: what one worker answers must hold for the
whole server: the metrics of both workers add up in /metrics, whichever answers, and a client's
Open311 rate limit is the server's, not each worker's. One server for both (it takes a while to
start on a loaded machine)."""

from __future__ import annotations

import fcntl
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest
from prometheus_client.multiprocess import MultiProcessCollector

from luciole.api_workers import RestartPolicy
from luciole.db_roles import DbService
from luciole.stack import free_port, wait_for
from tests.api.city import seed
from tests.conftest import RunningStack

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Served:
    base: str
    run_dir: Path
    process: subprocess.Popen[bytes]
    log: Path  # the server's stderr (the supervisor's and the workers' logs)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def _healthy(base: str) -> bool:
    try:
        return httpx.get(base + "/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _workers_up(run_dir: Path) -> int:
    return sum(1 for lock in run_dir.glob("api-*.lock") if lock.read_text().strip())


def _serve(stack: RunningStack, db_dsn: str, tmp_path: Path, workers: int,
           **extra_env: str) -> Served:
    dbname = psycopg.conninfo.conninfo_to_dict(db_dsn)["dbname"]
    assert isinstance(dbname, str)
    port = free_port("127.0.0.1")
    run_dir = tmp_path / "run"
    env = {**os.environ, "LUCIOLE_API_DSN": stack.endpoints.service_dsn(DbService.API, dbname),
           "LUCIOLE_API_RUN_DIR": str(run_dir),
           "LUCIOLE_API_TOKEN_SECRET": "workers-test-signing-secret-0123456789", **extra_env}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log = tmp_path / "serve.log"
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "luciole.cli", "--var-dir", str(stack.stack.var), "api",
             "serve", "--workers", str(workers), "--port", str(port)], env=env, cwd=REPO,
            stderr=stderr)
    return Served(f"http://127.0.0.1:{port}", run_dir, process, log)


def _started(served: Served, workers: int) -> None:
    process, run_dir = served.process, served.run_dir
    wait_for(lambda: process.poll() is not None or _healthy(served.base), 180,
             "the API to answer")
    # each worker writes its pid into the broker account lock it takes as it starts: the
    # first worker answers long before the second is up on a loaded machine
    wait_for(lambda: process.poll() is not None or _workers_up(run_dir) == workers, 180,
             "the API's workers")
    assert process.poll() is None, "the API did not start"


@pytest.fixture
def two_workers(stack: RunningStack, db_dsn: str, tmp_path: Path) -> Iterator[Served]:
    served = _serve(stack, db_dsn, tmp_path, 2)
    try:
        _started(served, 2)
        yield served
    finally:
        served.stop()


def _healthz_count(text: str) -> float:
    found = re.findall(r'^luciole_api_requests_total\{[^}]*route="/healthz"[^}]*\} (\S+)$', text,
                       re.MULTILINE)
    return sum(float(v) for v in found)


def _fresh_get(url: str) -> httpx.Response:
    with httpx.Client(timeout=30) as client:  # a new connection: either worker may take it
        return client.get(url)


def _report(base: str, i: int) -> int:
    with httpx.Client(timeout=30) as client:  # a new connection: either worker may take it
        return client.post(f"{base}/api/v1/open311/v2/requests.json", data={
            "jurisdiction_id": "anderlecht", "service_code": "streetlight_out",
            "lat": str(50.80 + (i % 500) * 0.001), "long": "4.30",
            "device_id": f"phone-{i}"}).status_code


def _posts_by_worker(metrics_dir: Path) -> dict[str, float]:
    """Open311 reports each worker answered, from the worker's own file in the shared dir."""
    answered: dict[str, float] = {}
    for file in metrics_dir.glob("counter_*.db"):
        for metric in MultiProcessCollector.merge([str(file)], accumulate=False):
            for sample in metric.samples:
                if (sample.name == "luciole_api_requests_total" and sample.labels["method"] == "POST"
                        and sample.labels["route"] == "/api/v1/open311/v2/requests.{fmt}"):
                    answered[file.name] = answered.get(file.name, 0) + sample.value
    return answered


def test_two_workers_add_up_their_metrics_and_share_the_open311_limit(
        two_workers: Served, db_dsn: str) -> None:
    base = two_workers.base
    metrics_dir = two_workers.run_dir / "metrics"
    # Open311: 10 reports at once per client (the router's default) for the whole server. The
    # kernel hands connections to whichever worker accepts first, so reports go on (in batches,
    # bounded) until both workers have answered some: with a limit per worker, the second
    # worker's first report would be accepted as well.
    seed(db_dsn)
    codes: list[int] = []
    with ThreadPoolExecutor(8) as pool:
        while len(_posts_by_worker(metrics_dir)) < 2 and len(codes) < 640:
            codes += pool.map(lambda i: _report(base, i), range(len(codes), len(codes) + 32))
    assert len(_posts_by_worker(metrics_dir)) == 2, "one worker took every connection"
    assert codes.count(201) == 10 and codes.count(429) == len(codes) - 10, codes
    with psycopg.connect(db_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM citizen_reports").fetchone() == (10,)
        assert conn.execute("SELECT client, allowed FROM open311_rate").fetchall() == [
            ("127.0.0.1", False)]

    # metrics: every scrape, whichever worker answers it, counts both workers' requests
    before = _healthz_count(_fresh_get(base + "/metrics").text)
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: _fresh_get(base + "/healthz").status_code, range(80)))
    assert answers == [200] * 80
    for _ in range(12):
        response = _fresh_get(base + "/metrics")
        assert response.status_code == 200
        assert _healthz_count(response.text) == before + 80, response.text[:2000]
    assert len(list(metrics_dir.glob("counter_*.db"))) == 2
    two_workers.stop()
    assert two_workers.process.returncode is not None
    assert not metrics_dir.exists()


# --- the supervisor: each worker on its own socket, replaced when it dies, all stopped at once


def _port(served: Served) -> int:
    return int(served.base.rsplit(":", 1)[1])


def _children(pid: int) -> set[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except FileNotFoundError:
        return set()
    return {int(p) for p in text.split()}


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def _socket_owners(port: int, state: str) -> list[int]:
    """The pid owning each TCP socket on local port `port` in `state` (ss, this user's)."""
    out = subprocess.run(["ss", "-Htnp", "state", state, f"( sport = :{port} )"],
                         capture_output=True, text=True, check=True).stdout
    return [int(pid) for pid in re.findall(r"pid=(\d+)", out)]


def test_each_worker_listens_on_its_own_socket_and_serves_connections(
        two_workers: Served) -> None:
    port, supervisor = _port(two_workers), two_workers.process.pid
    workers = _children(supervisor)
    assert len(workers) == 2
    # two listening sockets on the port, one per worker (the supervisor only holds the port)
    assert sorted(_socket_owners(port, "listening")) == sorted(workers)
    # 32 keep-alive connections, each answered, spread by the kernel over both workers
    clients = [httpx.Client(base_url=two_workers.base, timeout=30) for _ in range(32)]
    try:
        assert [c.get("/healthz").status_code for c in clients] == [200] * 32
        owners = _socket_owners(port, "established")
        assert len(owners) == 32 and set(owners) == workers, owners
    finally:
        for c in clients:
            c.close()


def test_a_killed_worker_is_replaced_and_the_port_keeps_answering(two_workers: Served) -> None:
    port, supervisor = _port(two_workers), two_workers.process.pid
    first = _children(supervisor)
    victim = min(first)
    os.kill(victim, signal.SIGKILL)
    # the other worker answers while the victim's place is empty
    assert [_fresh_get(two_workers.base + "/healthz").status_code for _ in range(8)] == [200] * 8
    wait_for(lambda: len(_children(supervisor) - {victim}) == 2, 120, "a new worker")
    replaced = _children(supervisor)
    assert victim not in replaced and first - {victim} < replaced
    wait_for(lambda: sorted(_socket_owners(port, "listening")) == sorted(replaced), 120,
             "the new worker's socket")
    assert [_fresh_get(two_workers.base + "/healthz").status_code for _ in range(8)] == [200] * 8
    assert re.search(rf"pid={victim} exited status=-9 .*restarting", two_workers.log.read_text())


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_stops_every_worker(two_workers: Served, stop: signal.Signals) -> None:
    port, supervisor = _port(two_workers), two_workers.process.pid
    workers = _children(supervisor)
    assert len(workers) == 2
    two_workers.process.send_signal(stop)
    assert two_workers.process.wait(120) == 0
    assert not [pid for pid in workers if _alive(pid)]
    assert _socket_owners(port, "listening") == []
    assert not (two_workers.run_dir / "metrics").exists()


def test_the_workers_end_when_the_supervisor_is_killed(two_workers: Served) -> None:
    port, supervisor = _port(two_workers), two_workers.process.pid
    workers = _children(supervisor)
    assert len(workers) == 2
    two_workers.process.kill()  # SIGKILL: nothing to forward it
    two_workers.process.wait(60)
    wait_for(lambda: not [pid for pid in workers if _alive(pid)], 120, "the workers to end")
    assert _socket_owners(port, "listening") == []


def test_a_worker_that_crashes_at_start_is_retried_a_bounded_number_of_times(
        stack: RunningStack, db_dsn: str, tmp_path: Path) -> None:
    # the one worker's broker account is held (by this test): its start fails every time
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    with (run_dir / "api-1.lock").open("ab") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        served = _serve(stack, db_dsn, tmp_path, 1)
        try:
            code = served.process.wait(280)
        finally:
            served.stop()
    text = served.log.read_text()
    policy = RestartPolicy()
    assert code != 0
    assert "NoFreeAccount" in text
    assert len(re.findall(r"api worker started slot=1", text)) == policy.give_up_after, text
    assert len(re.findall(r"restarting in", text)) == policy.give_up_after - 1
    assert "giving up" in text
    assert not _children(served.process.pid)
