"""A soak sampler for a running `luciole demo`: every minute, what a user watching it for an hour
would check, so that a long run's drift shows in numbers.

Start the demo with its console to a file, then this beside it:

    luciole --var-dir VAR demo --duration-s 3700 > VAR.console 2>&1 &
    python bench/demo_soak.py --var-dir VAR --console VAR.console --out soak.jsonl

Each sample (a JSON line in --out, and a progress line with rate and ETA) holds: wall and
simulated time, readings/s, rejects, how far live state trails the newest reading, open faults,
kWh booked, each job's passes and how far its cursor trails the newest data it reads, the size
of every table, /healthz and one luminaire's live state GET latency (logged in with the
operator's printed login), the RSS and CPU of every child of the demo (children.json) with its
own children (ingest, uvicorn workers, the fleet's publishers), PostgreSQL's and Mosquitto's, and
the load average (the machine is shared). It stops when the demo's children are gone or after
--duration-s, then prints a first/middle/last table and a verdict line: memory growth per child
between --warm-s (15 min) and the end, the largest job lag, the rejects.
`--summary FILE` prints the table and the verdict of a former run's samples again.
"""

from __future__ import annotations

import sys
from pathlib import Path

_here = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _here]
sys.path.insert(0, str(_here.parent))

import argparse
import json
import os
import re
import signal
import time
from datetime import UTC, datetime

import httpx
import psutil
import psycopg

from analytics.energy_job import EnergyJob
from analytics.fault_job import FaultDetectionJob
from analytics.optimiser_job import OptimiserJob
from analytics.settlement_job import SettlementJob
from luciole.settings import StackSettings
from luciole.stack import Stack
from wire.sim_clock import SimClock

STATUS = """
SELECT
  (SELECT count(*) FROM luminaire_telemetry),
  (SELECT count(*) FROM ingest_rejects),
  (SELECT max(time) FROM luminaire_telemetry),
  (SELECT max(time) FROM luminaire_state),
  (SELECT count(*) FROM faults WHERE cleared_at IS NULL),
  (SELECT coalesce(sum(energy_wh), 0) / 1000.0 FROM energy_supply_interval)
"""
# every table's size with its indexes, a hypertable's with its chunks
SIZES = """
SELECT c.relname,
       CASE WHEN h.hypertable_name IS NOT NULL
            THEN hypertable_size(format('%I.%I', n.nspname, c.relname)::regclass)
            ELSE pg_total_relation_size(c.oid) END
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN timescaledb_information.hypertables h
  ON h.hypertable_schema = n.nspname AND h.hypertable_name = c.relname
WHERE c.relkind IN ('r', 'p') AND n.nspname = 'public'
"""
CURSORS = "SELECT job, position, passes FROM job_cursors"
# the bulk fleet's newest live state and the hosted agents' oldest: the agents keep the shared
# clock on their own, so the newest reading alone hides a fleet fallen behind it
BEHIND = """
SELECT (SELECT max(s.time) FROM luminaire_state s JOIN controllers c ON c.key = s.controller_key
        WHERE c.id <> ALL(%(hosted)s)),
       (SELECT min(s.time) FROM luminaire_state s JOIN controllers c ON c.key = s.controller_key
        WHERE c.id = ANY(%(hosted)s))
"""
JOBS = {"faults": FaultDetectionJob(), "energy": EnergyJob(), "settlement": SettlementJob(),
        "optimiser": OptimiserJob()}


def tree(pid: int) -> list[psutil.Process]:
    """A process and every process below it, those still alive."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def processes(var: Path) -> dict[str, list[psutil.Process]]:
    children = json.loads((var / "demo" / "children.json").read_text())
    stack = json.loads((var / "stack.json").read_text())
    groups = {name: tree(pid) for name, pid in children.items()}
    groups["postgres"] = tree(stack["postgres_pid"])
    groups["mosquitto"] = tree(stack["mosquitto_pid"])
    return groups


def usage(procs: list[psutil.Process]) -> tuple[int, int, float, int]:
    """RSS and PSS (bytes: PostgreSQL's backends each map the shared buffers, which RSS counts
    once per backend), CPU seconds of a process tree, and how many of its processes are alive."""
    rss, pss, cpu, alive = 0, 0, 0.0, 0
    for p in procs:
        try:
            with p.oneshot():
                memory = p.memory_full_info()
                rss += memory.rss
                pss += memory.pss
                t = p.cpu_times()
                cpu += t.user + t.system
                alive += 1
        except psutil.NoSuchProcess:
            pass
    return rss, pss, cpu, alive


class Api:
    """/healthz and one luminaire's live state, logged in with a login the demo printed."""

    def __init__(self, console: Path) -> None:
        text = console.read_text()
        url = re.search(r"API (http://127\.0\.0\.1:\d+)", text)
        login = re.search(r"^\s+operator\s+(\S+)\s+(\S+)\s*$", text, re.M)
        if not url or not login:
            raise SystemExit(f"no API address or operator login in {console} yet")
        self.url, self.user, self.password = url.group(1), login.group(1), login.group(2)
        self.client = httpx.Client(base_url=self.url, timeout=30.0)
        self.luminaire: int | None = None

    def sample(self) -> dict[str, object]:
        out: dict[str, object] = {}
        try:
            t = time.perf_counter()
            health = self.client.get("/healthz")
            out["healthz_ms"] = (time.perf_counter() - t) * 1000
            out["healthz"] = health.status_code
            token = self.client.post("/api/v1/auth/token", data={
                "username": self.user, "password": self.password})
            token.raise_for_status()
            auth = {"Authorization": f"Bearer {token.json()['access_token']}"}
            if self.luminaire is None:
                page = self.client.get("/api/v1/live", params={"limit": 1}, headers=auth)
                page.raise_for_status()
                self.luminaire = int(page.json()["items"][0]["id"])
            t = time.perf_counter()
            live = self.client.get(f"/api/v1/live/{self.luminaire}", headers=auth)
            out["live_ms"] = (time.perf_counter() - t) * 1000
            out["live"] = live.status_code
        except (httpx.HTTPError, KeyError, IndexError, ValueError) as exc:
            out["api_error"] = repr(exc)
        return out


def sample_db(conn: psycopg.Connection) -> dict[str, object]:
    rows, rejects, newest, state_at, faults, kwh = conn.execute(STATUS).fetchone()  # type: ignore[misc]
    jobs: dict[str, dict[str, object]] = {}
    for job, position, passes in conn.execute(CURSORS).fetchall():
        newest_data = JOBS[job].newest(conn) if job in JOBS else None
        jobs[job] = {"passes": passes, "position": position.isoformat(),
                     "lag_s": (newest_data - position).total_seconds() if newest_data else None}
    return {"rows": rows, "rejects": rejects, "sim": newest.isoformat() if newest else None,
            "state_lag_s": (newest - state_at).total_seconds() if newest and state_at else None,
            "faults_open": faults, "kwh": float(kwh), "jobs": jobs,
            "tables": dict(conn.execute(SIZES).fetchall()),
            "db_bytes": conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]}  # type: ignore[index]


def agents_connected(var: Path) -> str | None:
    """The hosted agents' last progress line's "connected/agents", if it has written one."""
    try:
        found = re.findall(r"hosted agents=(\d+) connected=(\d+)",
                           (var / "demo" / "agents.log").read_text())
    except OSError:
        return None
    return f"{found[-1][1]}/{found[-1][0]}" if found else None


def fleet_clock(var: Path) -> SimClock:
    """The demo's simulated clock, from the fleet's command line (--start, --wall-origin)."""
    pid = json.loads((var / "demo" / "children.json").read_text())["fleet"]
    argv = psutil.Process(pid).cmdline()
    value = {a: argv[i + 1] for i, a in enumerate(argv[:-1]) if a.startswith("--")}
    return SimClock(origin=datetime.fromisoformat(value["--start"]),
                    wall_s=float(value["--wall-origin"]), speed=float(value["--speed"]))


def behind_clock(conn: psycopg.Connection, var: Path, clock: SimClock) -> dict[str, float | None]:
    """How far (wall seconds) the bulk fleet's newest live state and the hosted agents' oldest
    trail the demo's clock."""
    hosted = (var / "demo" / "hosted.txt").read_text().split()
    fleet, agents = conn.execute(BEHIND, {"hosted": hosted}).fetchone()  # type: ignore[misc]
    now = clock.now(time.time())
    return {k: (now - at).total_seconds() / clock.speed if at else None
            for k, at in (("fleet_behind_wall_s", fleet), ("hosted_behind_wall_s", agents))}


def demo_began(var: Path) -> float:
    """The demo's start, wall time: when it wrote the list of its children."""
    return (var / "demo" / "children.json").stat().st_mtime


def run(args: argparse.Namespace) -> list[dict]:
    var = args.var_dir.resolve()
    dsn = Stack(StackSettings(var_dir=var)).endpoints().dsn()
    api = Api(args.console)
    clock = fleet_clock(var)
    began, samples = time.time(), []
    previous_cpu: dict[str, tuple[float, float]] = {}
    last_rows: tuple[float, int] | None = None
    stop = False

    def _stop(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    with psycopg.connect(dsn, autocommit=True) as conn, open(args.out, "a") as out:
        while not stop:
            now = time.time()
            groups = processes(var)
            demo_children = [n for n in groups if n not in ("postgres", "mosquitto")]
            if samples and not any(groups[n] for n in demo_children):
                break  # the demo has stopped: a sample now would be of the stack alone
            s: dict = {"wall": datetime.fromtimestamp(now, UTC).isoformat(),
                       "demo_s": now - demo_began(var), "load": os.getloadavg(),
                       "agents": agents_connected(var),
                       **sample_db(conn), **behind_clock(conn, var, clock), **api.sample(),
                       "procs": {}}
            for name, procs in groups.items():
                rss, pss, cpu, alive = usage(procs)
                was = previous_cpu.get(name)
                share = (cpu - was[1]) / (now - was[0]) * 100 if was else None
                previous_cpu[name] = (now, cpu)
                s["procs"][name] = {"rss_mib": rss / 2**20, "pss_mib": pss / 2**20,
                                    "cpu_pct": share, "alive": alive}
            s["rate"] = ((s["rows"] - last_rows[1]) / (now - last_rows[0])) if last_rows else None
            last_rows = (now, s["rows"])
            samples.append(s)
            out.write(json.dumps(s, default=str) + "\n")
            out.flush()
            elapsed = now - began
            done = min(1.0, elapsed / max(args.duration_s, 1.0))
            eta = (args.duration_s - elapsed) if done < 1 else 0
            print(f"[{len(samples):3d}] {elapsed / 60:5.1f} min ({done:4.0%}, ETA {eta / 60:4.1f} min) "
                  + line(s), flush=True)
            if elapsed >= args.duration_s:
                break
            deadline = now + args.every_s
            while not stop and time.time() < deadline:
                time.sleep(0.5)
    return samples


def line(s: dict) -> str:
    jobs = " ".join(f"{k[:5]} {v['passes']}p/{_h(v['lag_s'])}" for k, v in sorted(s["jobs"].items()))
    rss = " ".join(f"{k} {v['rss_mib']:.0f}" for k, v in s["procs"].items())
    rate = f"{s['rate']:,.0f}" if s["rate"] is not None else "-"
    return (f"sim {s['sim'][5:16] if s['sim'] else '-'} | {rate} rdg/s | rejects {s['rejects']} | "
            f"state lag {s['state_lag_s']} s | behind clock (wall s) fleet "
            f"{_s(s.get('fleet_behind_wall_s'))} agents {_s(s.get('hosted_behind_wall_s'))} | "
            f"faults {s['faults_open']} | {s['kwh']:,.1f} kWh | "
            f"jobs {jobs} | healthz {_ms(s.get('healthz_ms'))} live {_ms(s.get('live_ms'))} "
            f"{s.get('api_error', '')}| agents {s.get('agents')} | db {s['db_bytes'] / 2**20:,.0f} "
            f"MiB | load {s['load'][0]:.1f} | RSS MiB {rss}")


def _s(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.0f}"


def _h(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds / 3600:.1f}h"


def _ms(ms: float | None) -> str:
    return "-" if ms is None else f"{ms:.0f}ms"


def summary(samples: list[dict], warm_s: float) -> str:
    samples = [s for s in samples  # not those taken once the demo had stopped
               if any(v["alive"] for n, v in s["procs"].items() if n not in ("postgres", "mosquitto"))]
    if not samples:
        return "no samples"
    picks = {"first": samples[0], "middle": samples[len(samples) // 2], "last": samples[-1]}
    names = list(samples[-1]["procs"])
    head = ["", "demo min", "sim", "rdg/s", "rejects", "state lag s", "faults", "kWh",
            "healthz ms", "live ms", "db MiB", "load", *[f"{n} MiB" for n in names],
            *[f"{n} %cpu" for n in names]]
    rows = [head]
    for label, s in picks.items():
        rows.append([label, f"{s['demo_s'] / 60:.1f}", (s["sim"] or "-")[5:16],
                     f"{s['rate']:.0f}" if s["rate"] is not None else "-", str(s["rejects"]),
                     str(s["state_lag_s"]), str(s["faults_open"]), f"{s['kwh']:.1f}",
                     _ms(s.get("healthz_ms")), _ms(s.get("live_ms")),
                     f"{s['db_bytes'] / 2**20:.0f}", f"{s['load'][0]:.1f}",
                     *[f"{s['procs'].get(n, {}).get('rss_mib', 0):.0f}" for n in names],
                     *[_pct(s["procs"].get(n, {}).get("cpu_pct")) for n in names]])
    table = "\n".join(" | ".join(f"{c:>{max(len(r[i]) for r in rows)}}" for i, c in enumerate(r))
                      for r in rows)
    warm = min(samples, key=lambda s: abs(s["demo_s"] - warm_s))
    last = samples[-1]
    growth = ", ".join(f"{n} {last['procs'][n]['rss_mib'] - warm['procs'][n]['rss_mib']:+.0f} "
                       f"(PSS {last['procs'][n]['pss_mib'] - warm['procs'][n]['pss_mib']:+.0f}) MiB"
                       for n in names if n in warm["procs"])
    job_lags = {}
    for s in samples:
        if s["demo_s"] < warm_s:
            continue
        for job, v in s["jobs"].items():
            if v["lag_s"] is not None:
                job_lags[job] = max(job_lags.get(job, 0.0), v["lag_s"])
    lags = ", ".join(f"{j} {_h(v)}" for j, v in sorted(job_lags.items()))
    tables = {t: last["tables"].get(t, 0) - warm["tables"].get(t, 0) for t in last["tables"]}
    grown = ", ".join(f"{t} {b / 2**20:+.0f}" for t, b in sorted(tables.items(), key=lambda x: -x[1])[:5])
    api_errors = sum(1 for s in samples if "api_error" in s or s.get("healthz") != 200)
    fleet_behind = max((s.get("fleet_behind_wall_s") or 0.0 for s in samples), default=0.0)
    loads = [s["load"][0] for s in samples]
    return (f"{table}\n\nverdict over {len(samples)} samples, {samples[0]['wall'][:16]} to "
            f"{last['wall'][:16]} UTC, load {min(loads):.1f}-{max(loads):.1f}: RSS growth from "
            f"{warm['demo_s'] / 60:.0f} min to {last['demo_s'] / 60:.0f} min: {growth}; "
            f"max job lag after warm-up: {lags}; the bulk fleet at most {fleet_behind:.0f} wall s "
            f"behind the clock; rejects {last['rejects']}; API failures "
            f"{api_errors}; largest table growth (MiB): {grown}")


def _pct(p: float | None) -> str:
    return "-" if p is None else f"{p:.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--var-dir", type=Path)
    parser.add_argument("--console", type=Path, help="the demo's console, written to a file")
    parser.add_argument("--out", type=Path, default=Path("demo_soak.jsonl"))
    parser.add_argument("--every-s", type=float, default=60.0)
    parser.add_argument("--duration-s", type=float, default=3700.0)
    parser.add_argument("--warm-s", type=float, default=900.0,
                        help="memory growth is measured from this far into the demo")
    parser.add_argument("--summary", type=Path, help="print a former run's summary and stop")
    args = parser.parse_args()
    if args.summary:
        samples = [json.loads(line) for line in args.summary.read_text().splitlines() if line]
    else:
        if not args.var_dir or not args.console:
            parser.error("--var-dir and --console are needed to sample")
        samples = run(args)
    print(summary(samples, args.warm_s))


if __name__ == "__main__":
    main()
