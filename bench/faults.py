"""Fault detection scored against ground truth: a simulated week of a 5,000-luminaire district.

For each seed: a district (1,250 controllers x 4 luminaires, 80 % of cabinets on a supply
switched off by day) gets every fault kind injected at random times with labels
(`controller_fw_sim.fleet_district`), confounders on healthy luminaires (dimming steps, presence
boosts, fast constant-light-output drift, 1 % of records and 0.2 % of messages lost, the supply
switching off at dawn); the fleet's vectorised model writes its telemetry straight into a fresh
database (no broker), an hour at a time, and the fault-detection job runs after each hour as it
does in production (passes of at most 30 minutes of records). Prints per fault kind: labels,
precision, recall and median detection delay. Floor: 0.95 precision and recall for every kind.
Last line: `faults: min precision P, min recall R`.
"""

# ruff: noqa: E402
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import timedelta
from pathlib import Path

# this folder holds scripts named like the packages they measure (bench/ingest.py): leave it out
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import numpy as np
import psycopg
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from analytics.fault_job import FaultDetectionJob
from analytics.fault_scoring import Detected, Label, Score, score, to_epoch
from analytics.runner import Scheduled, run_once
from controller_fw_sim.fleet import DEFAULT_START, Fleet
from controller_fw_sim.fleet_district import Confounders, district_scenario
from controller_fw_sim.fleet_inventory import build_inventory
from controller_fw_sim.fleet_sensors import DEFAULT_MULTIFUNCTION_FRACTION, UrbanSensors
from controller_fw_sim.fleet_store import FleetStore, mark_switched
from ingest.copy_binary import write
from ingest.writer import LUMINAIRE_ROWS, SENSOR_ROWS
from luciole.db_roles import create_database
from luciole.migrate import migrate
from luciole.seed import seed_inventory
from luciole.settings import StackSettings
from luciole.stack import Endpoints, Stack

FLOOR = 0.95
console = Console()
#: the COPY layouts ingest writes with, built from wire.records.RECORD_COLUMNS
LAYOUTS = {layout.table: layout for layout in (LUMINAIRE_ROWS, SENSOR_ROWS)}


def copy_columns(cur: psycopg.Cursor, table: str, columns: dict[str, np.ndarray]) -> int:
    """Binary COPY of numpy columns (the fleet store's writer)."""
    return write(cur, LAYOUTS[table], columns)

_DETECTED = """
SELECT kind, cabinet_id, controller_id, luminaire_idx, sensor, quantity,
       extract(epoch FROM raised_at)::float8, cause
FROM faults
"""


def run_seed(ep: Endpoints, seed: int, args: argparse.Namespace, progress: Progress | None = None,
             task: int = 0, done: int = 0) -> tuple[list[Label], list[Detected], int]:
    """One district week; returns its labels, the faults raised, and the records stored."""
    name = f"faults_seed_{seed}"
    with psycopg.connect(ep.admin_dsn(), autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    create_database(ep.admin_dsn(), name)
    dsn = ep.dsn(name)
    migrate(dsn)
    inv = build_inventory(args.controllers, 4, seed=seed, switched_fraction=0.8)
    seed_inventory(dsn, inv)
    multifunction = UrbanSensors(inv, DEFAULT_MULTIFUNCTION_FRACTION, seed=seed).controllers
    start = DEFAULT_START
    scenario = district_scenario(inv, start, args.days, args.per_kind, multifunction, seed=seed)
    fleet = Fleet(inv, start=start, interval_s=args.interval_s, scenario=scenario, seed=seed)
    faulted = {f.device.partition(":")[0] for f in scenario.faults}
    cabinets = {inv.cabinet_ids[c] for c in range(len(inv.cabinet_ids))} & faulted
    healthy = np.array([i for i, c in enumerate(inv.controller_ids) if c not in faulted
                        and inv.cabinet_ids[inv.controller_cabinet[i]] not in cabinets])
    confounders = Confounders(fleet, healthy, seed=seed)
    job = Scheduled(FaultDetectionJob(silence_s=3 * args.interval_s), every_s=0.0, settle_s=0.0,
                    max_window_s=1800.0)
    ticks_per_hour = int(round(3600 / args.interval_s))
    hours = args.days * 24
    with psycopg.connect(dsn, autocommit=True) as conn:
        mark_switched(conn, inv)
        store = FleetStore(conn, inv, copy_columns, seed=seed, record_loss=0.01, message_loss=0.002)
        for h in range(hours):
            boxes = []
            for k in range(ticks_per_hour):
                t_s = (h * ticks_per_hour + k + 1) * args.interval_s
                boxes.append(fleet.advance(t_s))
                fleet.drain_json()
                confounders.tick(args.interval_s)
            store.write(boxes)
            while run_once(conn, job, ignore_schedule=True) is not None:
                pass
            if progress is not None:
                elapsed = progress.tasks[task].elapsed or 1.0
                stored = done + store.luminaire_rows + store.sensor_rows
                progress.update(task, advance=1, rate=f"{stored / elapsed:,.0f} records/s")
        rows = conn.execute(_DETECTED).fetchall()
    end = to_epoch(start + timedelta(days=args.days))
    labels = [Label(f.fault.value, f.device, f.start.timestamp(), min(to_epoch(f.end), end))
              for f in scenario.faults]
    detected = [Detected(*r[:7]) for r in rows]
    if args.explain:
        explain(labels, detected, [r[7] for r in rows], args.explain)
    with psycopg.connect(ep.admin_dsn(), autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    return labels, detected, store.luminaire_rows + store.sensor_rows


def explain(labels: list[Label], detected: list[Detected], causes: list[str], n: int) -> None:
    """Print up to n false raises and missed labels per kind (to see what the detectors do)."""
    from analytics.fault_scoring import EXPECTED, IMPLIED, IMPLIED_ONLY, label_device

    rows = [*EXPECTED.items(), *((f"(implied) {k}", (k, "luminaire")) for k in IMPLIED_ONLY)]
    for fault, (name, scope) in rows:
        mine = [lab for lab in labels if lab.fault == fault]
        shared = [lab for lab in labels if EXPECTED[lab.fault] == (name, scope)
                  or name in IMPLIED.get(lab.fault, ())]
        raised = [(d, c) for d, c in zip(detected, causes, strict=True)
                  if d.kind == name and d.scope == scope]
        false = [(d, c) for d, c in raised if not any(
            label_device(lab.fault, lab.device) == d.device
            and lab.start - 60 <= d.raised_at <= lab.end + 1800 for lab in shared)]
        missed = [lab for lab in mine if not any(
            d.device == label_device(fault, lab.device)
            and lab.start - 60 <= d.raised_at <= lab.end + 1800 for d, _ in raised)]
        for d, c in false[:n]:
            there = [f"{lab.fault} {lab.start:.0f}..{lab.end:.0f}" for lab in labels
                     if lab.device.partition(":")[0] == str(d.device[0])]
            console.print(f"[yellow]false {name}[/yellow] {d.device} at {d.raised_at:.0f}: {c}"
                          f" (labels on its controller: {', '.join(there) or 'none'})")
        by_device: dict[tuple[object, ...], list[float]] = {}
        for d, _ in raised:
            by_device.setdefault(d.device, []).append(d.raised_at)
        again = [(dev, sorted(ts)) for dev, ts in by_device.items() if len(ts) > 1]
        for dev, ts in again[:n]:
            episodes = [f"{lab.start:.0f}..{lab.end:.0f}" for lab in shared
                        if label_device(lab.fault, lab.device) == dev]
            console.print(f"[yellow]{name} raised {len(ts)} times[/yellow] on {dev} at "
                          f"{', '.join(f'{t:.0f}' for t in ts)} (episodes {', '.join(episodes)})")
        for lab in missed[:n]:
            console.print(f"[red]missed {fault}[/red] {lab.device} {lab.start:.0f}..{lab.end:.0f}")


def report(scores: list[Score]) -> tuple[float, float]:
    table = Table(title="fault detection against ground truth")
    for col in ("simulated fault", "raised as", "labels", "found", "raised", "raised again",
                "precision", "recall", "median delay"):
        table.add_column(col, justify="right" if col not in ("simulated fault", "raised as")
                         else "left")
    for s in scores:
        delay = "-" if np.isnan(s.median_delay_s) else f"{s.median_delay_s / 60:.0f} min"
        table.add_row(s.fault, s.raised_as, str(s.labels), str(s.found), str(s.detections),
                      str(s.duplicates), f"{s.precision:.3f}", f"{s.recall:.3f}", delay)
    console.print(table)
    # kinds raised only as implied by other faults have no labels of their own: no recall
    scored = [s for s in scores if s.labels]
    precision = min(np.nan_to_num(s.precision, nan=0.0) for s in scores
                    if s.labels or s.detections)
    recall = min(np.nan_to_num(s.recall, nan=0.0) for s in scored)
    below = [s.fault for s in scores if (s.labels or s.detections)
             and not (np.nan_to_num(s.precision, nan=0.0) >= FLOOR
                      and (not s.labels or s.recall >= FLOOR))]
    console.print(f"floor {FLOOR}: min precision {precision - FLOOR:+.3f}, min recall "
                  f"{recall - FLOOR:+.3f} from it; below it: {', '.join(below) or 'none'}")
    return precision, recall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--controllers", type=int, default=1250, help="x 4 luminaires")
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--per-kind", type=int, default=20,
                        help="instances of each fault kind per seed")
    parser.add_argument("--interval-s", type=float, default=300.0, help="reporting interval")
    parser.add_argument("--parallel", action="store_true",
                        help="run the seeds at once, a process (and database) each; no progress")
    parser.add_argument("--explain", type=int, default=0,
                        help="print up to this many false raises and misses per kind")
    args = parser.parse_args()
    labels: list[Label] = []
    detected: list[Detected] = []
    records = 0
    with tempfile.TemporaryDirectory(prefix="bench-faults-") as tmp:
        stack = Stack(StackSettings(var_dir=Path(tmp) / "var", mqtt_port=0, pg_port=0,
                                    pg_fsync=False, pg_shared_buffers="512MB"))
        ep = stack.up()
        try:
            console.print(f"stack up in {tmp}; {os.cpu_count()} cores shared by all; "
                          f"{args.seeds} seeds x {args.controllers * 4} luminaires x "
                          f"{args.days} days, reports every {args.interval_s:.0f} s")
            columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                       TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
                       TimeRemainingColumn())
            results = []
            started = time.monotonic()
            if args.parallel:
                with ProcessPoolExecutor(max_workers=args.seeds) as pool:
                    futures = [pool.submit(run_seed, ep, seed, args)
                               for seed in range(args.seeds)]
                    results = [f.result() for f in futures]
            else:
                with Progress(*columns, console=console) as progress:
                    task = progress.add_task("simulated hours",
                                             total=args.seeds * args.days * 24, rate="")
                    for seed in range(args.seeds):
                        results.append(run_seed(ep, seed, args, progress, task, records))
                        records += results[-1][2]
            records = 0
            for seed, (lab, det, n) in enumerate(results):
                labels += [Label(x.fault, f"{seed}/{x.device}", x.start, x.end) for x in lab]
                detected += [Detected(d.kind, _tag(seed, d.cabinet_id),
                                      _tag(seed, d.controller_id), d.luminaire_idx, d.sensor,
                                      d.quantity, d.raised_at) for d in det]
                records += n
            wall = time.monotonic() - started
        finally:
            stack.down()
    precision, recall = report(score(labels, detected))
    console.print(f"{records:,} records stored and examined in {wall / 60:.1f} min "
                  f"({records / wall:,.0f} records/s; load average {os.getloadavg()[0]:.1f} on "
                  f"{os.cpu_count()} cores); {len(labels)} labelled faults")
    print(f"faults: min precision {precision:.3f}, min recall {recall:.3f}")  # noqa: T201


def _tag(seed: int, device: str | None) -> str | None:
    return None if device is None else f"{seed}/{device}"


if __name__ == "__main__":
    main()
