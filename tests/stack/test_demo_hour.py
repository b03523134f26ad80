"""An hour of the demo, compressed: what a user watching `make run` for an hour would check, on a
small district at 1440x, so that the 60 simulated hours an hour at 60x covers (two nights and a
half, the simulated clock passing the wall clock's "now + 1 day") pass in 150 s of wall time.

The demo runs as a subprocess with all its children (ingest, fleet, hosted agents, jobs, API);
it is looked at every few seconds while it runs and once it has stopped on Ctrl-C."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psutil
import psycopg
import pytest
from astral import LocationInfo
from astral.sun import sunrise, sunset

from controller_fw_sim.fleet_inventory import REGION_CENTRE
from luciole.demo import DEMO_JOBS_ENV, demo_start
from luciole.settings import StackSettings
from luciole.stack import Stack, wait_for
from wire.sim_clock import SimClock

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SPEED = 1440.0  # an hour of the demo at 60x, 60 simulated hours, in RUN_S
RUN_S = 150.0
LOOK_EVERY_S = 5.0
AGENTS = 2
# The share of the run after which the children count as warmed up (numba kernels compiled and
# loaded, connection pools and caches filled, the first night's faults raised).
WARM = 0.25
# A child's RSS may grow from the warm-up to the end by half of what it had then plus 64 MiB:
# what stays bounded (pools, caches, per-device state, the allocator's arenas) moves it by a few
# MiB either way once warm; a leak per record or per pass keeps growing with the three quarters
# of the run still to come (some 45 simulated hours, 1.3 million readings' worth of passes here),
# and on the 500-controller demo an hour grows it 25 times as much as here.
RSS_GROWTH_FACTOR = 1.5
RSS_GROWTH_MIB = 64.0
# Live state is the newest reading of each luminaire: the fleet's telemetry comes every simulated
# minute (its --tick-s), ingest stores it in batches, the hosted agents publish on their own
# clock and wait for receipts, so live state trails the fleet's clock by a few ticks and by what
# the machine's load adds, seconds of wall time. 20 wall seconds (8 simulated hours here) leaves
# room for a loaded machine; a process falling behind passes it within the run.
STATE_LAG_MAX = timedelta(seconds=20 * SPEED)
# A job reads up to the newest data once per period (the demo's, luciole.demo.DEMO_JOBS_ENV) and
# a pass takes seconds: its cursor trails the fleet's clock by its period and 20 wall seconds at
# most, unless it falls behind pass after pass.
JOB_PERIOD_S = {"faults": float(DEMO_JOBS_ENV["LUCIOLE_JOBS_FAULTS_EVERY_S"]),
                "energy": float(DEMO_JOBS_ENV["LUCIOLE_JOBS_ENERGY_EVERY_S"])}
JOB_LAG_MAX = {job: timedelta(seconds=(period + 20) * SPEED) for job, period in JOB_PERIOD_S.items()}

def _observer():  # noqa: ANN202 - astral's Observer
    return LocationInfo(latitude=REGION_CENTRE[0], longitude=REGION_CENTRE[1]).observer


@dataclass
class Look:
    """What the test sees at one moment of the run."""

    t: float  # wall seconds since the logins
    sim_now: datetime  # the fleet's clock
    healthz: int | str
    live: int | str
    newest: datetime | None
    state_at: datetime | None  # the bulk fleet's newest live state
    hosted_state_at: datetime | None  # the hosted agents' oldest
    rejects: int
    passes: dict[str, int]
    positions: dict[str, datetime]
    rss_mib: dict[str, float] = field(default_factory=dict)


def _trees(children: dict[str, int]) -> dict[str, list[psutil.Process]]:
    out = {}
    for name, pid in children.items():
        try:
            root = psutil.Process(pid)
            out[name] = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            out[name] = []
    return out


def _rss_mib(procs: list[psutil.Process]) -> float:
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total / 2**20


def _status(client: httpx.Client, path: str, **kwargs: object) -> int | str:
    try:
        return client.get(path, **kwargs).status_code  # type: ignore[arg-type]
    except httpx.HTTPError as exc:
        return repr(exc)


def _fleet_clock(fleet_pid: int) -> SimClock:
    """The fleet's clock, from its command line (the demo hands it --start and --wall-origin)."""
    argv = psutil.Process(fleet_pid).cmdline()
    value = {a: argv[i + 1] for i, a in enumerate(argv[:-1]) if a.startswith("--")}
    return SimClock(origin=datetime.fromisoformat(value["--start"]),
                    wall_s=float(value["--wall-origin"]), speed=float(value["--speed"]))


# the newest reading, the bulk fleet's newest live state (the hosted agents keep the clock on
# their own: the newest reading alone would hide a fleet fallen behind it), the hosted agents'
# oldest, the rejects
LOOK_SQL = """
SELECT (SELECT max(time) FROM luminaire_telemetry),
       (SELECT max(s.time) FROM luminaire_state s JOIN controllers c ON c.key = s.controller_key
        WHERE c.id <> ALL(%(hosted)s)),
       (SELECT min(s.time) FROM luminaire_state s JOIN controllers c ON c.key = s.controller_key
        WHERE c.id = ANY(%(hosted)s)),
       (SELECT count(*) FROM ingest_rejects)
"""


def _look(conn: psycopg.Connection, client: httpx.Client, token: str, luminaire: int,
          clock: SimClock, hosted: list[str], trees: dict[str, list[psutil.Process]],
          t0: float) -> Look:
    healthz = _status(client, "/healthz")
    live = _status(client, f"/api/v1/live/{luminaire}", headers={"Authorization": f"Bearer {token}"})
    row = conn.execute(LOOK_SQL, {"hosted": hosted}).fetchone()
    assert row is not None
    cursors = conn.execute("SELECT job, passes, position FROM job_cursors").fetchall()
    return Look(time.monotonic() - t0, clock.now(time.time()), healthz, live, row[0], row[1],
                row[2], row[3], {j: p for j, p, _ in cursors}, {j: at for j, _, at in cursors},
                {name: _rss_mib(procs) for name, procs in trees.items()})


def _login(url: str, email: str, password: str) -> str:
    reply = httpx.post(f"{url}/api/v1/auth/token", data={"username": email, "password": password},
                       timeout=30)
    reply.raise_for_status()
    return str(reply.json()["access_token"])


def _nights_ended(start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """Each night (sunset to sunrise in Brussels) that began after `start` and ended before `end`."""
    observer = _observer()
    day, out = start.date() - timedelta(days=1), []
    while day <= end.date():
        dusk = sunset(observer, date=day, tzinfo=UTC)
        dawn = sunrise(observer, date=day + timedelta(days=1), tzinfo=UTC)
        if dusk >= start and dawn <= end:
            out.append((dusk, dawn))
        day += timedelta(days=1)
    return out


@pytest.mark.timeout(900)
def test_an_hour_of_the_demo_compressed(tmp_path: Path) -> None:
    var = tmp_path / "var"
    env = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "LUCIOLE_MQTT_PORT": "0", "LUCIOLE_PG_PORT": "0",
           "LUCIOLE_PG_FSYNC": "false", "LUCIOLE_PG_SHARED_BUFFERS": "64MB"}
    start = demo_start(datetime.now(UTC))  # as `make run` opens: before last night's sunset
    console = tmp_path / "demo.out"
    looks: list[Look] = []
    seen: dict[int, float] = {}  # every process of the demo's children seen: pid -> create time
    try:
        with open(console, "w") as sink:
            demo_proc = subprocess.Popen(
                [sys.executable, "-m", "luciole.cli", "--var-dir", str(var), "demo",
                 "--controllers", "8", "--agents", str(AGENTS), "--workers", "1", "--switched-fraction", "0",
                 "--speed", str(SPEED), "--tick-s", "60", "--start", start.isoformat(),
                 "--duration-s", str(RUN_S + 300)],  # stopped with Ctrl-C below
                stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
                env=env)
        try:
            wait_for(lambda: "Ctrl-C stops" in console.read_text() or demo_proc.poll() is not None,
                     240, "the demo's logins", interval_s=0.5)
            out = console.read_text()
            url = re.search(r"API (http://127\.0\.0\.1:\d+)", out)
            login = re.search(r"^\s+operator\s+(\S+@\S+)\s+(\S+)$", out, re.MULTILINE)
            assert url is not None and login is not None, out
            children = json.loads((var / "demo" / "children.json").read_text())
            hosted = (var / "demo" / "hosted.txt").read_text().split()
            assert len(hosted) == AGENTS, hosted
            clock = _fleet_clock(children["fleet"])
            dsn = Stack(StackSettings(var_dir=var)).endpoints().dsn()
            t0 = time.monotonic()
            with psycopg.connect(dsn, autocommit=True) as conn, \
                    httpx.Client(base_url=url.group(1), timeout=30) as client:
                token = _login(url.group(1), login.group(1), login.group(2))
                page = client.get("/api/v1/live", params={"limit": 1},
                                  headers={"Authorization": f"Bearer {token}"})
                luminaire = int(page.json()["items"][0]["id"])
                while time.monotonic() - t0 < RUN_S and demo_proc.poll() is None:
                    trees = _trees(children)
                    for procs in trees.values():
                        for p in procs:
                            seen.setdefault(p.pid, p.create_time())
                    looks.append(_look(conn, client, token, luminaire, clock, hosted, trees, t0))
                    time.sleep(LOOK_EVERY_S)  # the period of the looks, not a wait for a state
            assert demo_proc.poll() is None, console.read_text()[-3000:]
            demo_proc.send_signal(signal.SIGINT)
            assert demo_proc.wait(300) == 0, console.read_text()[-3000:]
        finally:
            if demo_proc.poll() is None:
                demo_proc.send_signal(signal.SIGINT)
                demo_proc.wait(180)
        # Ctrl-C leaves no process: none of the children nor anything they started
        left = [pid for pid, created in seen.items() if psutil.pid_exists(pid)
                and psutil.Process(pid).create_time() == created]
        assert not left, left

        _report(looks)
        warm = min(looks, key=lambda look: abs(look.t - WARM * RUN_S))
        later = [look for look in looks if look.t >= warm.t]
        last = looks[-1]
        # the run covered what an hour at 60x does, and passed the wall clock's "now + 1 day"
        assert last.newest is not None and last.newest - start >= timedelta(hours=55), last
        assert last.newest > datetime.now(UTC) + timedelta(days=1), last
        # every record accepted
        assert last.rejects == 0, _rejects(dsn)
        # the API answers throughout
        assert all(look.healthz == 200 and look.live == 200 for look in looks), [
            (round(look.t), look.healthz, look.live) for look in looks
            if (look.healthz, look.live) != (200, 200)]
        # live state keeps up with the fleet's clock, the hosted agents' luminaires' too
        for look in later:
            assert look.state_at is not None and look.hosted_state_at is not None, look
            assert look.sim_now - look.state_at <= STATE_LAG_MAX, look
            assert look.sim_now - look.hosted_state_at <= STATE_LAG_MAX, look
        # each job keeps passing, the frequent ones in every quarter of the run (settlement
        # passes once a wall minute) and its cursor keeps up
        quarters = [min(looks, key=lambda look, q=q: abs(look.t - q * RUN_S)) for q in (.25, .5, .75)]
        for job in JOB_LAG_MAX:
            counts = [look.passes.get(job, 0) for look in [*quarters, last]]
            assert counts == sorted(set(counts)), (job, counts)
        assert last.passes["settlement"] > warm.passes["settlement"], (warm.passes, last.passes)
        for job, lag in JOB_LAG_MAX.items():
            for look in later:
                assert look.sim_now - look.positions[job] <= lag, (job, look)
        # the hosted agents stayed connected from their first connection to the stop
        assert _agents_connected(var / "demo" / "agents.log"), \
            (var / "demo" / "agents.log").read_text()[-3000:]
        # energy booked, measured from the readings, for each night that ended within the run
        nights = _nights_ended(start, last.positions["energy"])
        assert len(nights) >= 2, (nights, last)
        with psycopg.connect(dsn) as conn:
            for dusk, dawn in nights:
                energy, measured, lamps = conn.execute(
                    "SELECT coalesce(sum(energy_wh), 0), coalesce(sum(measured_wh), 0),"
                    " max(luminaires_reporting) FROM energy_supply_interval"
                    " WHERE bucket >= %s AND bucket < %s", (dusk, dawn)).fetchone()
                assert lamps and energy > 0 and measured > 0, (dusk, energy, measured, lamps)
        # each child's memory, once warm, does not keep growing
        for name, mib in warm.rss_mib.items():
            assert last.rss_mib[name] <= mib * RSS_GROWTH_FACTOR + RSS_GROWTH_MIB, \
                (name, mib, last.rss_mib[name])
    finally:
        Stack(StackSettings(var_dir=var)).down()


def _agents_connected(log: Path) -> bool:
    """Every progress line of the hosted agents' process, from the first with all of them
    connected, has all of them connected."""
    lines = re.findall(r"hosted agents=(\d+) connected=(\d+)", log.read_text())
    counts = [(int(n), int(c)) for n, c in lines]
    first = next((i for i, (n, c) in enumerate(counts) if n == c == AGENTS), None)
    return first is not None and all(c == AGENTS for _, c in counts[first:])


def _rejects(dsn: str) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT reason, count(*) FROM ingest_rejects GROUP BY 1").fetchall()


def _report(looks: list[Look]) -> None:
    """The run's figures in the test's output (pytest -s), a line per quarter."""
    for look in looks[:: max(1, len(looks) // 4)] + looks[-1:]:
        lag = {"state": look.state_at, "hosted": look.hosted_state_at,
               **{job: at for job, at in look.positions.items() if job in JOB_LAG_MAX}}
        behind = {k: round((look.sim_now - at).total_seconds() / 3600, 1) if at else None
                  for k, at in lag.items()}
        print(f"demo hour: {look.t:5.0f} s sim {look.sim_now:%m-%d %H:%M} behind (h) {behind} "  # noqa: T201
              f"passes {look.passes} rss {({k: round(v) for k, v in look.rss_mib.items()})}")
