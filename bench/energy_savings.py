"""A year of a Brussels district under four lighting regimes, for docs/energy-savings.md.

The district: 4,000 luminaires in 100 groups drawn like the Brussels fleet (bench/brussels_groups.py,
a fixed seed): classes, designs, traffic. For every night of 2026 (sunset to sunrise, astral), on
15-minute slots, the energy of: full power dusk to dawn; fixed dimming to 70 % and to 50 % from
22:00 to 06:00; the optimiser by class and traffic (EN 13201 classes lowered with the traffic,
CEN/TR 13201-1, at most 4 steps of at least an hour); and presence-adaptive lighting (the dimmest
class of the series by default, the rated class for 60 s after each detection, detections drawn
from the traffic: about 30 an hour at the peak on residential streets, 150 on collectors, 600 on
arterials); and presence-adaptive on residential streets with the optimiser elsewhere. Prints
the energy and savings per regime, and per road kind for presence-adaptive,
and draws one winter night's district power for each regime to docs/energy-savings-night.png.
"""

from __future__ import annotations

import argparse
import dataclasses
from datetime import date, timedelta
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from brussels_groups import brussels_groups  # noqa: E402

from analytics.optimiser import (  # noqa: E402
    Constraints,
    Group,
    PresenceRule,
    Problems,
    build_problems,
    expected_power,
    solve,
)

PEAK_DETECTIONS = {"P": 30.0, "C": 150.0, "M": 150.0}
ARTERIAL_CLASSES = {"M1", "M2", "M3", "C0", "C1", "C2", "C3"}
OUT = Path(__file__).resolve().parent.parent / "docs" / "energy-savings-night.png"


def fixed_dimming(pr: Problems, groups: list[Group], level: float) -> np.ndarray:
    """Group power per slot with `level` of full light from 22:00 to 06:00, full otherwise."""
    night = (pr.minute >= 22 * 60) | (pr.minute < 6 * 60)
    fraction = np.where(night, level, 1.0)
    power = np.zeros(pr.dt_h.shape)
    for g, grp in enumerate(groups):
        rows = pr.group == g
        power[rows] = grp.photometry.power_w(fraction[rows]) * grp.luminaires
    return np.where(pr.dt_h > 0, power, 0.0)


def adaptive(groups: list[Group]) -> list[Group]:
    out = []
    for g in groups:
        peak = 600.0 if g.rated_class in ARTERIAL_CLASSES else PEAK_DETECTIONS[g.rated_class[0]]
        out.append(dataclasses.replace(g, presence=PresenceRule(hold_s=60, adaptive=True),
                                       peak_per_h=peak))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--year", type=int, default=2026)
    ap.add_argument("--night", type=date.fromisoformat, default=date(2026, 1, 14))
    args = ap.parse_args()
    groups = [dataclasses.replace(g, presence=None, peak_per_h=0.0)
              for g in brussels_groups(luminaires=4_000, groups=100)]
    sensed = adaptive(groups)
    # presence where it pays (residential streets), class and traffic elsewhere
    mixed = [a if g.rated_class[0] == "P" else g for g, a in zip(groups, sensed, strict=True)]
    first = date(args.year, 1, 1)
    days = [first + timedelta(days=i) for i in range((date(args.year + 1, 1, 1) - first).days)]
    c = Constraints()
    totals = dict.fromkeys(["full", "dim70", "dim50", "optimised", "adaptive", "mixed"], 0.0)
    kinds = {"residential (P)": 0.0, "collector (M4-M5, C4)": 0.0, "arterial (M2-M3, C3)": 0.0}
    kinds_full = dict.fromkeys(kinds, 0.0)
    curves: dict[str, np.ndarray] = {}
    for b in range(0, len(days), 31):
        batch = days[b:b + 31]
        pr = build_problems(groups, batch, c)
        full = pr.full_w[:, None] * (pr.dt_h > 0)
        per_regime = {"full": full, "dim70": fixed_dimming(pr, groups, 0.7),
                      "dim50": fixed_dimming(pr, groups, 0.5)}
        levels, _ = solve(pr)
        per_regime["optimised"] = expected_power(pr, levels)
        pa = build_problems(sensed, batch, c)
        levels_a, _ = solve(pa)
        per_regime["adaptive"] = expected_power(pa, levels_a)
        pm = build_problems(mixed, batch, c)
        levels_m, _ = solve(pm)
        per_regime["mixed"] = expected_power(pm, levels_m)
        for name, power in per_regime.items():
            totals[name] += float((power * pr.dt_h).sum()) / 1000
        for g, grp in enumerate(groups):
            rows = pr.group == g
            kind = ("residential (P)" if grp.rated_class[0] == "P" else
                    "arterial (M2-M3, C3)" if grp.rated_class in ARTERIAL_CLASSES
                    else "collector (M4-M5, C4)")
            kinds[kind] += float((per_regime["adaptive"][rows] * pr.dt_h[rows]).sum()) / 1000
            kinds_full[kind] += float((full[rows] * pr.dt_h[rows]).sum()) / 1000
        if args.night in batch:
            rows = pr.day == args.night.toordinal()
            for name, power in per_regime.items():
                curves[name] = power[rows].sum(axis=0) / 1000
            curves["minute"] = pr.minute[rows][0]
            curves["n"] = np.array([int(pr.n_slots[rows][0])])
    n_lum = sum(g.luminaires for g in groups)
    labels = {"full": "full power, dusk to dawn", "dim70": "fixed dimming to 70 % 22:00-06:00",
              "dim50": "fixed dimming to 50 % 22:00-06:00",
              "optimised": "optimised by class and traffic", "adaptive": "presence-adaptive",
              "mixed": "presence on residential streets, class and traffic elsewhere"}
    print(f"district: {n_lum:,} luminaires in {len(groups)} groups, {len(days)} nights of "
          f"{args.year}")
    print("| regime | MWh a year | saved |")
    print("| --- | --- | --- |")
    for name, mwh in totals.items():
        print(f"| {labels[name]} | {mwh / 1000:,.1f} | {1 - mwh / totals['full']:.0%} |")
    print("presence-adaptive by road kind:")
    for kind, kwh in kinds.items():
        print(f"| {kind} | {1 - kwh / kinds_full[kind]:.0%} |")
    n = int(curves["n"][0])
    fig, ax = plt.subplots(figsize=(9, 4.5), dpi=110)
    minute = curves["minute"][:n]
    x = np.where(minute >= 12 * 60, minute, minute + 24 * 60) / 60
    for name in labels:
        ax.step(x, curves[name][:n], where="post", label=labels[name])
    ticks = np.arange(np.floor(x.min()), np.ceil(x.max()) + 1, 2)
    ax.set_xticks(ticks, [f"{int(t) % 24:02d}:00" for t in ticks])
    ax.set_xlabel(f"local time, night of {args.night} (Brussels)")
    ax.set_ylabel("district power, kW")
    ax.set_title(f"{n_lum:,} luminaires: one winter night under each regime")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    fig.savefig(OUT)
    print(f"picture: {OUT.relative_to(OUT.parent.parent)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
