"""`luciole api serve` with two real uvicorn workers: what one worker answers must hold for the
whole server: the metrics of both workers add up in /metrics, whichever answers, and a client's
Open311 rate limit is the server's, not each worker's. One server for both (it takes a while to
start on a loaded machine)."""

from __future__ import annotations

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


@pytest.fixture
def two_workers(stack: RunningStack, db_dsn: str, tmp_path: Path) -> Iterator[Served]:
    dbname = psycopg.conninfo.conninfo_to_dict(db_dsn)["dbname"]
    assert isinstance(dbname, str)
    port = free_port("127.0.0.1")
    run_dir = tmp_path / "run"
    env = {**os.environ, "LUCIOLE_API_DSN": stack.endpoints.service_dsn(DbService.API, dbname),
           "LUCIOLE_API_RUN_DIR": str(run_dir),
           "LUCIOLE_API_TOKEN_SECRET": "workers-test-signing-secret-0123456789"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "luciole.cli", "--var-dir", str(stack.stack.var), "api", "serve",
         "--workers", "2", "--port", str(port)], env=env, cwd=REPO)
    served = Served(f"http://127.0.0.1:{port}", run_dir, process)
    try:
        wait_for(lambda: process.poll() is not None or _healthy(served.base), 180,
                 "the API to answer")
        # each worker writes its pid into the broker account lock it takes as it starts: the
        # first worker answers long before the second is up on a loaded machine
        wait_for(lambda: process.poll() is not None or _workers_up(run_dir) == 2, 180,
                 "the API's second worker")
        assert process.poll() is None, "the API did not start"
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
