"""Energy accounting: per-interval error against the simulator's exact energy, and how long a day
takes.

A simulated district (default 1,250 controllers x 4 luminaires across the 19 municipalities, 80 %
of the cabinets switched off by day) runs from a winter dusk to the next evening with readings
every five minutes; 2 % of the readings are lost at random and one controller in 50 is silent for
three hours of the night. The pure accounting (analytics.energy_intervals.account) then books
every luminaire's 15-minute intervals, and the bench prints the error distribution per source
(measured, estimated, default) and whether each uncertainty covers its error. Then the day's
readings are tiled to the Brussels fleet (83,420 luminaires) and accounted again, timed.

Last line: `energy: S s for N luminaires x 1 day (ceiling 60 s)`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
from rich.console import Console

from analytics.energy_intervals import SOURCE_NAMES, Grid, Readings, account
from controller_fw_sim.fleet_inventory import TENANTS, build_inventory
from tests.analytics.energy_sim import BUCKET, Run, simulate

BRUSSELS = 83_420
CEILING_S = 60.0
console = Console(stderr=True)


def damaged(run: Run, seed: int) -> Run:
    rng = np.random.default_rng(seed)
    r = run.readings
    lost = rng.random(r.t.shape[0]) < 0.02
    silent = np.flatnonzero(rng.random(run.inventory.n_controllers) < 0.02)
    t_night = run.b0 * BUCKET + 6 * 3600.0
    lost |= np.isin(r.lum // 4, silent) & (r.t > t_night) & (r.t < t_night + 3 * 3600.0)
    return run.drop(lost)


def tiled(run: Run, n: int) -> tuple[Readings, Grid, np.ndarray]:
    """The run's readings repeated to n luminaires (luminaire j behaves as j mod the district)."""
    r = run.readings
    m = run.truth_wh.shape[0]
    copies = -(-n // m)
    lum = (r.lum[None, :] + m * np.arange(copies)[:, None]).ravel()
    keep = lum < n
    rep = Readings.sorted(lum[keep], np.tile(r.t, copies)[keep], np.tile(r.energy_wh, copies)[keep],
                          np.tile(r.power_w, copies)[keep], np.tile(r.level, copies)[keep])
    cells = run.truth_wh.shape[1]
    grid = Grid(np.full(n, run.b0, dtype=np.int64), np.arange(n + 1, dtype=np.int64) * cells)
    return rep, grid, np.arange(n) % m


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--controllers", type=int, default=1250)
    ap.add_argument("--hours", type=float, default=26.2)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    inv = build_inventory(args.controllers, 4, seed=args.seed, tenants=TENANTS,
                          switched_fraction=0.8)
    t0 = time.perf_counter()
    console.print(f"simulating {inv.n_luminaires} luminaires for {args.hours} h ...")
    run = damaged(simulate(inv, args.hours), args.seed)
    print(f"simulated: {inv.n_luminaires} luminaires, {run.readings.t.shape[0]} readings kept, "
          f"{run.truth_wh.shape[1]} intervals, {time.perf_counter() - t0:.1f} s")
    fleet, sun, grid = run.fleet(), run.sun(), run.grid()
    account(run.readings, fleet, sun, grid, run.t_end)  # compiles the kernels (cached after)
    t1 = time.perf_counter()
    cells = account(run.readings, fleet, sun, grid, run.t_end)
    district_s = time.perf_counter() - t1
    truth = run.truth_wh.ravel()
    err = np.abs(cells.energy_wh - truth)
    edge = (cells.powered_s > 0) & (cells.powered_s < BUCKET)
    # lit intervals, after the first hour (the simulation has no history before its start)
    lit = (truth > 0.1 * fleet.rated_input_w[grid.cell_lum()] * BUCKET / 3600.0) & (
        grid.cell_bucket() >= run.b0 + 4)
    print("per-interval error against the simulator's exact energy (lit intervals, from the "
          "second hour):")
    for s, name in enumerate(SOURCE_NAMES):
        m = (cells.source == s) & lit
        if not m.any():
            print(f"  {name:9s}: none")
            continue
        rel = err[m] / truth[m]
        inner = m & ~edge
        rel_inner = err[inner] / truth[inner] if inner.any() else np.zeros(1)
        cover = np.mean(err[m] <= cells.uncertainty_wh[m] + 1e-9)
        print(f"  {name:9s}: {m.sum():7d} intervals  median {np.median(rel):.2e}  "
              f"p95 {np.quantile(rel, 0.95):.2e}  max {rel.max():.2e}  "
              f"(not at a dusk/dawn edge: p95 {np.quantile(rel_inner, 0.95):.2e}, "
              f"max {rel_inner.max():.2e})  uncertainty covers {cover:.1%}")
    print(f"  totals: booked {cells.energy_wh.sum() / 1000:.1f} kWh, "
          f"truth {truth.sum() / 1000:.1f} kWh")
    print(f"district accounting: {district_s:.2f} s for {inv.n_luminaires} luminaires x "
          f"{run.truth_wh.shape[1]} intervals")
    rep, big_grid, src = tiled(run, BRUSSELS)
    from analytics.energy_intervals import Fleet
    big = Fleet(fleet.rated_input_w[src], fleet.switched[src], fleet.place[src], fleet.peer[src],
                fleet.wider[src])
    t2 = time.perf_counter()
    account(rep, big, sun, big_grid, run.t_end)
    brussels_s = time.perf_counter() - t2
    print(f"brussels accounting: {rep.t.shape[0]} readings, {big_grid.cells} intervals")
    print(f"energy: {brussels_s:.1f} s for {BRUSSELS} luminaires x 1 day (ceiling {CEILING_S:.0f} s)")


if __name__ == "__main__":
    main()
