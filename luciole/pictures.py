"""Pictures people would rather look at than read: energy profiles and a map of luminaires."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no screen
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import psycopg  # noqa: E402

ENERGY_BY_TENANT = """
SELECT e.bucket, sp.tenant_id, sum(e.energy_wh) / 1000.0 AS kwh
FROM energy_15min_supply e JOIN supply_points sp ON sp.ean = e.ean
GROUP BY e.bucket, sp.tenant_id
ORDER BY e.bucket
"""

LUMINAIRE_MAP = """
SELECT l.lon, l.lat, coalesce(s.level, -1), coalesce(s.failure, 0), coalesce(s.power_w, 0)
FROM luminaires l
JOIN controllers c ON c.id = l.controller_id
LEFT JOIN luminaire_state s ON s.controller_key = c.key AND s.luminaire = l.idx
"""


@dataclass(frozen=True)
class EnergySeries:
    buckets: list[datetime]
    tenants: list[str]
    kwh: np.ndarray  # (len(tenants), len(buckets))


def energy_series(rows: list[tuple[datetime, str, float]]) -> EnergySeries:
    """Pivot (bucket, tenant, kWh) rows into one series per tenant, zeros where absent."""
    buckets = sorted({r[0] for r in rows})
    tenants = sorted({r[1] for r in rows})
    b_index = {b: i for i, b in enumerate(buckets)}
    t_index = {t: i for i, t in enumerate(tenants)}
    kwh = np.zeros((len(tenants), len(buckets)))
    for bucket, tenant, value in rows:
        kwh[t_index[tenant], b_index[bucket]] += value
    return EnergySeries(buckets, tenants, kwh)


def plot_energy_profile(series: EnergySeries, path: Path) -> Path:
    """A stacked 15-minute energy profile per municipality, as the grid operator settles it."""
    fig, ax = plt.subplots(figsize=(11, 5), dpi=110)
    if series.buckets:
        # each bucket is drawn over its 15 minutes: repeat the last one at its end
        edges = [*series.buckets, series.buckets[-1] + timedelta(minutes=15)]
        values = np.concatenate([series.kwh, series.kwh[:, -1:]], axis=1)
        ax.stackplot(np.array(edges), values, labels=series.tenants, step="post")
        ax.legend(loc="upper left", fontsize=6, ncol=4, frameon=False)
    else:
        ax.text(0.5, 0.5, "no energy yet", ha="center", va="center", transform=ax.transAxes)
    ax.set_title("Public lighting energy per 15 minutes, by municipality (from the supply-point rollups)")
    ax.set_ylabel("kWh per 15 min")
    ax.set_xlabel("time (UTC)")
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_luminaire_map(rows: list[tuple[float, float, int, int, float]], path: Path) -> Path:
    """Every luminaire at its position, coloured by its live level; faults ringed in red."""
    fig, ax = plt.subplots(figsize=(8, 8), dpi=110)
    if rows:
        data = np.array(rows, dtype=float)
        lon, lat, level, failure = data[:, 0], data[:, 1], data[:, 2], data[:, 3]
        silent = level < 0
        ax.scatter(lon[silent], lat[silent], s=3, c="lightgrey", label="no telemetry yet")
        lit = ~silent
        points = ax.scatter(lon[lit], lat[lit], s=4, c=level[lit], cmap="inferno", vmin=0, vmax=254)
        fig.colorbar(points, ax=ax, shrink=0.7, label="DALI arc level")
        faulty = failure > 0
        if faulty.any():
            ax.scatter(lon[faulty], lat[faulty], s=40, facecolors="none", edgecolors="red",
                       label="failure reported")
        ax.legend(loc="lower left", fontsize=7)
    ax.set_title("Luminaires, live level")
    ax.set_xlabel("longitude")
    ax.set_ylabel("latitude")
    ax.set_aspect(1 / np.cos(np.radians(50.85)))
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def render(dsn: str, out_dir: Path) -> list[Path]:
    """Draw the energy profile and the luminaire map from the database into out_dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with psycopg.connect(dsn) as conn:
        energy = conn.execute(ENERGY_BY_TENANT).fetchall()
        positions = conn.execute(LUMINAIRE_MAP).fetchall()
    return [
        plot_energy_profile(energy_series(energy), out_dir / "energy_profile.png"),
        plot_luminaire_map(positions, out_dir / "luminaire_map.png"),
    ]
