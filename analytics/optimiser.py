"""The dimming-schedule optimiser: least-energy nightly plans per group of luminaires that keep
each road lit to its EN 13201 class in force, as calendars the edge agent runs.

Pure core: `build_problems` turns groups (class, traffic profile, photometry, presence) and nights
(sunset and sunrise, astral) into arrays on 15-minute slots aligned to the quarter hours; the
kernel solves every group-night by dynamic programming (`analytics.optimiser_kernels`);
`solve_capped` couples the groups of a supply point under a grid operator's power cap with a
Lagrangian price per quarter hour (projected subgradient, a primal repair from the plans seen) and
reports the duality gap; `to_calendar` writes the plans as a `wire.messages.Calendar` with an
explanation per step. `propose_for_group` is the entry point for one group.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np

from analytics import sun
from analytics.optimiser_kernels import solve_nights
from analytics.photometry import Photometry, level_grid
from analytics.road_classes import CLASS_MINIMUM, SERIES, TRAFFIC_BOUNDS, LightingClass
from wire.messages import (
    Anchor,
    Calendar,
    PresenceBoost,
    Program,
    ScheduleStep,
    SpecialDay,
)

log = logging.getLogger(__name__)

SLOT_S = 900
MAX_SLOTS = 88  # noon UTC to 10:00 UTC the next day: any night at Brussels' latitude fits
SERIES_NAMES = ("M", "C", "P")
#: class minimum by (series, rank), the order of road_classes.SERIES
CLASS_TABLE = np.array([[CLASS_MINIMUM[c] for c in SERIES[s]] for s in SERIES_NAMES])


class OptimiserError(ValueError):
    """A group or a cap the optimiser cannot plan for; the text says why."""


@dataclass(frozen=True)
class PresenceRule:
    """Presence boost to the rated class's level for hold_s after each detection. Adaptive: the
    base level may fall to the dimmest class of the series (the boost restores the class when
    someone comes), where the road's authority allows it."""

    hold_s: int = 60
    adaptive: bool = False


@dataclass(frozen=True)
class Group:
    """Luminaires of one type on one road segment."""

    id: str
    luminaires: int
    rated_class: str
    photometry: Photometry
    traffic: np.ndarray  # (2, 24) share of the peak hour: [workday, weekend][local hour]
    peak_per_h: float = 0.0  # presence detections per hour at the peak
    planned_classes: tuple[str, ...] | None = None  # the energy manager's class per local hour
    presence: PresenceRule | None = None
    supply_point: str | None = None
    lat: float = 50.85
    lon: float = 4.35
    timezone: str = "Europe/Brussels"

    def __post_init__(self) -> None:
        LightingClass(self.rated_class)
        if self.luminaires < 1:
            raise OptimiserError(f"group {self.id}: at least one luminaire")
        t = np.asarray(self.traffic, dtype=np.float64)
        if t.shape != (2, 24) or not np.all(np.isfinite(t)) or t.min() < 0 or t.max() > 1:
            raise OptimiserError(f"group {self.id}: traffic must be (2, 24) shares in 0..1")
        if self.planned_classes is not None:
            if len(self.planned_classes) != 24:
                raise OptimiserError(f"group {self.id}: a planned class per local hour (24)")
            for name in self.planned_classes:
                if LightingClass(name).series != self.rated_class[0]:
                    raise OptimiserError(f"group {self.id}: planned class {name} is not of the "
                                         f"series of {self.rated_class}")
        if not (-90 <= self.lat <= 90 and -180 <= self.lon <= 180):
            raise OptimiserError(f"group {self.id}: position not on Earth")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise OptimiserError(f"group {self.id}: unknown IANA time zone "
                                 f"{self.timezone!r}") from None


@dataclass(frozen=True)
class Constraints:
    max_steps: int = 4  # dimming steps a night after switch-on
    min_step_min: int = 60  # shortest run at one level
    n_levels: int = 24

    def __post_init__(self) -> None:
        if not 0 <= self.max_steps <= 46:
            raise OptimiserError("max_steps must be 0..46 (a program has at most 48 steps)")
        if not SLOT_S // 60 <= self.min_step_min <= 720:
            raise OptimiserError("min_step_min must be 15..720")
        if not 20 <= self.n_levels <= 254:
            raise OptimiserError("n_levels must be 20..254")

    @property
    def min_slots(self) -> int:
        return math.ceil(self.min_step_min * 60 / SLOT_S)


@dataclass(frozen=True)
class PowerCap:
    """The grid operator's cap on a supply point's aggregate power, in a local window."""

    supply_point: str
    cap_w: float
    start: time
    end: time


@dataclass
class Problems:
    """P group-nights as arrays on S quarter-hour slots (slot t of problem p is the quarter
    q0[p] + t since the epoch; the first and last slots are cut by sunset and sunrise)."""

    group: np.ndarray  # (P,) index into the groups
    day: np.ndarray  # (P,) local date of the evening, as a date ordinal
    q0: np.ndarray  # (P,)
    n_slots: np.ndarray  # (P,)
    sunset: np.ndarray  # (P,) epoch s
    sunrise: np.ndarray
    dt_h: np.ndarray  # (P, S)
    hour: np.ndarray  # (P, S) local hour of the slot's start
    minute: np.ndarray  # (P, S) local minute of the day of the slot's start
    traffic: np.ndarray  # (P, S) share of the peak
    klass: np.ndarray  # (P, S) rank of the class in force in its series
    req: np.ndarray  # (P, S) int16 lowest level index allowed
    short: np.ndarray  # (P, S) bool: the design cannot reach the class at 100 %
    boost: np.ndarray  # (P, S) expected share of the slot under a presence boost
    power: np.ndarray  # (P, L) group input power per level, W
    boost_w: np.ndarray  # (P,)
    full_w: np.ndarray  # (P,) group input power at 100 %
    max_segments: np.ndarray
    min_len: np.ndarray
    arcs: np.ndarray  # (L,) arc level of each level index
    fractions: np.ndarray  # (L,) light fraction of each level index

    @property
    def count(self) -> int:
        return int(self.group.shape[0])


def _sun_nights(lat: float, lon: float, days: Sequence[date]) -> tuple[np.ndarray, np.ndarray]:
    """Sunset of each local evening and the sunrise after it, epoch seconds (UTC dates, which
    are the local ones wherever sunset and sunrise fall between 00:00 and 24:00 UTC)."""
    if not days:
        return np.zeros(0), np.zeros(0)
    first, last = min(days), max(days)
    t0 = datetime(first.year, first.month, first.day, 12, tzinfo=UTC).timestamp()
    t1 = datetime(last.year, last.month, last.day, 12, tzinfo=UTC).timestamp()
    trans = sun.transitions(lat, lon, t0, t1)  # rise, set per UTC day from first - 1
    base = first.toordinal() - 1
    i = np.array([d.toordinal() - base for d in days], dtype=np.int64)
    return trans[2 * i + 1], trans[2 * i + 2]


def _utc_offsets(tz: str, t0: float, t1: float) -> tuple[float, np.ndarray]:
    """UTC offset (s) of each whole UTC hour from t0 to t1, for local hours by lookup."""
    zone = ZoneInfo(tz)
    h0 = math.floor(t0 / 3600) - 1
    hours = range(h0, math.ceil(t1 / 3600) + 2)
    offs = np.array([datetime.fromtimestamp(h * 3600, zone).utcoffset().total_seconds()  # type: ignore[union-attr]
                     for h in hours])
    return float(h0), offs


def build_problems(groups: Sequence[Group], days: Sequence[date],
                   constraints: Constraints) -> Problems:
    """Every (group, night) as one DP problem, vectorised over both."""
    arcs, fractions = level_grid(constraints.n_levels)
    n_g, n_d = len(groups), len(days)
    g_idx = np.repeat(np.arange(n_g), n_d)
    d_ord = np.tile(np.array([d.toordinal() for d in days], dtype=np.int64), n_g)
    sunset = np.zeros(n_g * n_d)
    sunrise = np.zeros(n_g * n_d)
    places: dict[tuple[float, float], tuple[np.ndarray, np.ndarray]] = {}
    for g, grp in enumerate(groups):
        key = (round(grp.lat, 1), round(grp.lon, 1))
        if key not in places:
            places[key] = _sun_nights(grp.lat, grp.lon, days)
        sunset[g * n_d:(g + 1) * n_d], sunrise[g * n_d:(g + 1) * n_d] = places[key]
    q0 = np.floor(sunset / SLOT_S).astype(np.int64)
    q1 = np.ceil(sunrise / SLOT_S).astype(np.int64)
    n_slots = q1 - q0
    width = int(n_slots.max()) if n_slots.size else 1
    if width > MAX_SLOTS:
        raise OptimiserError("a night longer than 22 h: polar places are not supported")
    t = np.arange(width)
    start = (q0[:, None] + t) * float(SLOT_S)
    inside = t[None, :] < n_slots[:, None]
    dt_h = np.where(inside, (np.minimum(start + SLOT_S, sunrise[:, None])
                             - np.maximum(start, sunset[:, None])) / 3600.0, 0.0)
    np.maximum(dt_h, 0.0, out=dt_h)
    # local clock of each slot's start (the quarter hour), per group's time zone
    local = start.copy()
    zones = [grp.timezone for grp in groups]
    for tz in set(zones):
        if len(set(zones)) == 1:  # the usual case: no copies of the slot arrays
            h0, offs = _utc_offsets(tz, float(start.min()), float(start.max()))
            local += offs[np.clip((start // 3600 - h0).astype(np.int64), 0, offs.shape[0] - 1)]
            break
        rows = np.array([z == tz for z in zones])[g_idx]
        h0, offs = _utc_offsets(tz, float(start[rows].min()), float(start[rows].max()))
        hi = np.clip((start[rows] // 3600 - h0).astype(np.int64), 0, offs.shape[0] - 1)
        local[rows] += offs[hi]
    day_no = (local // 86_400).astype(np.int64)
    minute = ((local - day_no * 86_400.0) // 60).astype(np.int64)
    hour = minute // 60
    weekend = ((day_no + 3) % 7) >= 5
    # everything that depends only on (group, day type, local hour), once per group
    share_tab = np.stack([np.asarray(g.traffic, dtype=np.float64) for g in groups])  # (G, 2, 24)
    series = np.array([SERIES_NAMES.index(g.rated_class[0]) for g in groups])
    rated = np.array([LightingClass(g.rated_class).rank for g in groups])
    steps = np.zeros(share_tab.shape, dtype=np.int64)
    for bound in TRAFFIC_BOUNDS:  # CEN/TR 13201-1: the class falls with the traffic
        steps += share_tab < bound
    klass_tab = np.minimum(rated[:, None, None] + steps, 5)
    planned = np.array([[LightingClass(c).rank for c in g.planned_classes]
                        if g.planned_classes is not None else [-1] * 24 for g in groups])
    klass_tab = np.where(planned[:, None, :] >= 0,
                         np.maximum(planned[:, None, :], rated[:, None, None]), klass_tab)
    adaptive = np.array([g.presence is not None and g.presence.adaptive for g in groups])
    base = np.where(adaptive[:, None, None], 5, klass_tab)
    minimum = CLASS_TABLE[series[:, None, None], base]
    design = np.array([g.photometry.design_at_full * g.photometry.maintenance_factor
                       for g in groups])
    floor = np.array([g.photometry.min_fraction for g in groups])
    need = np.maximum(minimum / design[:, None, None], floor[:, None, None])
    short_tab = need > 1.0 + 1e-9
    req_tab = np.minimum(np.searchsorted(fractions, np.minimum(need, 1.0) - 1e-9),
                         fractions.shape[0] - 1).astype(np.int16)
    n_lum = np.array([g.luminaires for g in groups], dtype=np.float64)
    power_g = np.stack([g.photometry.power_w(fractions) for g in groups]) * n_lum[:, None]
    full_g = np.array([g.photometry.full_w for g in groups]) * n_lum
    boost_w_g = np.zeros(n_g)
    hold_h = np.zeros(n_g)
    peak = np.array([g.peak_per_h for g in groups])
    for i, grp in enumerate(groups):
        if grp.presence is not None:
            level = grp.photometry.fraction_for(np.array(CLASS_MINIMUM[grp.rated_class]))
            boost_w_g[i] = float(grp.photometry.power_w(np.minimum(level, 1.0))) * n_lum[i]
            hold_h[i] = grp.presence.hold_s / 3600.0
    boost_tab = 1.0 - np.exp(-share_tab * (peak * hold_h)[:, None, None])
    cell = (g_idx[:, None] * 2 + weekend) * 24 + hour
    share = share_tab.ravel()[cell]
    klass = klass_tab.ravel()[cell]
    short = short_tab.ravel()[cell] & inside
    req = np.where(inside, req_tab.ravel()[cell], 0).astype(np.int16)
    boost = np.where(inside, boost_tab.ravel()[cell], 0.0)
    return Problems(
        group=g_idx, day=d_ord, q0=q0, n_slots=n_slots, sunset=sunset, sunrise=sunrise,
        dt_h=dt_h, hour=hour, minute=minute, traffic=share, klass=klass, req=req, short=short,
        boost=boost, power=power_g[g_idx], boost_w=boost_w_g[g_idx], full_w=full_g[g_idx],
        max_segments=np.full(g_idx.shape[0], constraints.max_steps + 1, dtype=np.int64),
        min_len=np.full(g_idx.shape[0], constraints.min_slots, dtype=np.int64),
        arcs=arcs, fractions=fractions,
    )


def expected_power(pr: Problems, levels: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """Expected group power per slot (W) of plans (level index per slot; 0 past the night)."""
    rows = np.arange(pr.count) if rows is None else rows
    lv = np.maximum(levels, 0).astype(np.int64)
    p = np.take_along_axis(pr.power[rows], lv, axis=1)
    b = pr.boost[rows]
    out = (1.0 - b) * p + b * np.maximum(pr.boost_w[rows][:, None], p)
    return np.where(levels >= 0, out, 0.0)


def distinct_nights(pr: Problems, rows: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray,
                                                                                 np.ndarray]:
    """Rows whose DP problems are the same up to an affine change of the power scale, as
    (one row of each, which one each row takes). Power is affine in light
    (`Photometry.power_w`), so two groups with the same requirements, slot weights, boost shares
    and steps' rules have the same least-cost plan, whatever their wattage and count."""
    power = pr.power[rows]
    span = np.maximum(power[:, -1] - power[:, 0], 1e-12)
    y_boost = np.where(pr.boost_w[rows] > 0, (pr.boost_w[rows] - power[:, 0]) / span, -1.0)
    if weight is pr.dt_h or (weight.shape == pr.dt_h[rows].shape
                             and np.array_equal(weight, pr.dt_h[rows])):
        # slot lengths: a quarter hour but the first and the last, which sunset and sunrise cut
        n = pr.n_slots[rows]
        weight = np.stack([weight[:, 0], weight[np.arange(rows.shape[0]), np.maximum(n - 1, 0)]],
                          axis=1)
    key = np.concatenate([
        pr.req[rows].astype(np.float64), np.round(weight * 1e6), np.round(pr.boost[rows] * 1e9),
        np.round(y_boost * 1e9)[:, None], pr.max_segments[rows][:, None].astype(np.float64),
        pr.min_len[rows][:, None].astype(np.float64),
        pr.n_slots[rows][:, None].astype(np.float64)], axis=1)
    # group by two random projections of the key, then check every row against the one it
    # took: a row that differs (a collision) becomes a problem of its own, so this stays exact
    proj = np.random.default_rng(0).uniform(-1.0, 1.0, (key.shape[1], 2))
    h = key @ proj
    _, first, which = np.unique(h[:, 0] + 1j * h[:, 1], return_index=True, return_inverse=True)
    which = which.ravel()
    differs = np.flatnonzero(np.any(key[first][which] != key, axis=1))
    if differs.size:
        which[differs] = first.shape[0] + np.arange(differs.size)
        first = np.concatenate([first, differs])
    return first, which


def solve(pr: Problems, rows: np.ndarray | None = None,
          weight: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Plans (level index per slot) and their energy (Wh) of the rows, least cost under
    `weight` (default: the slot lengths, i.e. least energy). Each distinct problem is solved
    once (`distinct_nights`)."""
    rows = np.arange(pr.count) if rows is None else rows
    w = pr.dt_h[rows] if weight is None else weight
    first, which = distinct_nights(pr, rows, w)
    pick = rows[first]
    levels, _ = solve_nights(pr.req[pick], np.ascontiguousarray(w[first]), pr.boost[pick],
                             pr.n_slots[pick], pr.power[pick], pr.boost_w[pick],
                             pr.max_segments[pick], pr.min_len[pick])
    levels = levels[which]
    energy = (expected_power(pr, levels, rows) * pr.dt_h[rows]).sum(axis=1)
    return levels, energy


def baseline_wh(pr: Problems) -> np.ndarray:
    """Full power from dusk to dawn, per problem (Wh)."""
    return pr.full_w * pr.dt_h.sum(axis=1)


# ---------------------------------------------------------------------------- power caps
@dataclass(frozen=True)
class CapResult:
    levels: np.ndarray  # plans of the rows, as `solve`
    energy_wh: np.ndarray
    primal_wh: float  # energy of the best plans found that meet the cap
    dual_wh: float  # best Lagrangian lower bound on the least energy under the cap
    uncapped_wh: float  # least energy without the cap
    gap: float  # (primal - dual) / dual
    iterations: int
    met: bool  # False: below the class minima or what the step rules allow (the classes win)
    peak_w: float  # highest aggregate power in the window, of the returned plans
    price: np.ndarray = field(repr=False)  # final price per quarter of the window, Wh/W


def window_mask(pr: Problems, rows: np.ndarray, cap: PowerCap) -> np.ndarray:
    """(rows, S) bool: the slot starts inside the cap's local window (which may cross midnight)."""
    a = cap.start.hour * 60 + cap.start.minute
    b = cap.end.hour * 60 + cap.end.minute
    m = pr.minute[rows]
    inside = (m >= a) & (m < b) if a < b else (m >= a) | (m < b)
    return inside & (np.arange(pr.dt_h.shape[1])[None, :] < pr.n_slots[rows][:, None])


def solve_capped(pr: Problems, rows: np.ndarray, cap: PowerCap, *, max_iter: int = 60,
                 target_gap: float = 0.005) -> CapResult:
    """Plans of one night's groups on one supply point whose summed power stays under the cap in
    its window, by a Lagrangian price per quarter hour (projected subgradient with a Polyak step)
    and a repair that moves groups to plans seen at higher prices until the cap holds."""
    rows = np.asarray(rows, dtype=np.int64)
    if np.unique(pr.day[rows]).shape[0] > 1:
        raise OptimiserError("solve_capped couples the groups of one night")
    win = window_mask(pr, rows, cap)
    qbase = int(pr.q0[rows].min())
    qrel = (pr.q0[rows][:, None] - qbase) + np.arange(pr.dt_h.shape[1])[None, :]
    n_q = int(qrel[win].max()) + 1 if win.any() else 1
    qidx = np.where(win, qrel, n_q)  # n_q: outside the window

    def aggregate(power: np.ndarray) -> np.ndarray:
        return np.bincount(qidx.ravel(), weights=power.ravel(), minlength=n_q + 1)[:n_q]

    levels, energy = solve(pr, rows)
    uncapped = float(energy.sum())
    floor_power = expected_power(pr, pr.req[rows].astype(np.int64), rows)
    need = aggregate(floor_power)
    if win.any() and need.max() > cap.cap_w * (1 + 1e-9):
        log.warning("cap below the class minima supply_point=%s cap_w=%.0f minimum_w=%.0f",
                    cap.supply_point, cap.cap_w, need.max())
        peak = float(aggregate(expected_power(pr, levels, rows)).max())
        return CapResult(levels, energy, uncapped, uncapped, uncapped, 0.0, 0, False, peak,
                         np.zeros(n_q))
    lam = np.zeros(n_q)
    best_dual, best_primal = -np.inf, np.inf
    best_levels, best_energy = levels, energy
    cand_levels: list[np.ndarray] = []
    cand_energy: list[np.ndarray] = []
    cand_window: list[np.ndarray] = []
    theta = 1.0
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007
        weight = pr.dt_h[rows] + np.where(win, np.append(lam, 0.0)[qidx], 0.0)
        levels, energy = solve(pr, rows, weight)
        power = expected_power(pr, levels, rows)
        load = aggregate(power)
        dual = float(energy.sum() + (np.append(lam, 0.0)[qidx] * power).sum() - lam.sum() * cap.cap_w)
        best_dual = max(best_dual, dual)
        cand_levels.append(levels)
        cand_energy.append(energy)
        per_group = np.bincount((np.arange(rows.shape[0])[:, None] * (n_q + 1) + qidx).ravel(),
                                weights=power.ravel(), minlength=rows.shape[0] * (n_q + 1))
        cand_window.append(per_group.reshape(rows.shape[0], n_q + 1)[:, :n_q])
        if load.max() <= cap.cap_w * (1 + 1e-9) and energy.sum() < best_primal:
            best_primal, best_levels, best_energy = float(energy.sum()), levels, energy
        if best_primal < np.inf and best_primal - best_dual <= target_gap * best_dual:
            break
        g = load - cap.cap_w
        g = np.where((lam <= 0) & (g < 0), 0.0, g)
        norm = float((g * g).sum())
        if norm == 0.0:
            break
        upper = best_primal if best_primal < np.inf else float(energy.sum()) * 1.02
        step = theta * max(upper - dual, 1e-6 * upper) / norm
        lam = np.maximum(lam + step * g, 0.0)
        if it % 10 == 0:
            theta *= 0.5
    # no plan seen meets the cap yet: raise the prices until one does (a dual ascent overshoot
    # costs energy, never the class minima, which are known to fit)
    for _ in range(30):
        if best_primal < np.inf or _repair(cand_levels, cand_energy, cand_window,
                                           cap.cap_w) is not None:
            break
        lam = np.maximum(lam * 2.0, float(np.max(pr.dt_h[rows])) * 0.01)
        weight = pr.dt_h[rows] + np.where(win, np.append(lam, 0.0)[qidx], 0.0)
        levels, energy = solve(pr, rows, weight)
        power = expected_power(pr, levels, rows)
        per_group = np.bincount((np.arange(rows.shape[0])[:, None] * (n_q + 1) + qidx).ravel(),
                                weights=power.ravel(), minlength=rows.shape[0] * (n_q + 1))
        cand_levels.append(levels)
        cand_energy.append(energy)
        cand_window.append(per_group.reshape(rows.shape[0], n_q + 1)[:, :n_q])
        if aggregate(power).max() <= cap.cap_w * (1 + 1e-9) and energy.sum() < best_primal:
            best_primal, best_levels, best_energy = float(energy.sum()), levels, energy
    repaired = _repair(cand_levels, cand_energy, cand_window, cap.cap_w)
    if repaired is not None and float(repaired[1].sum()) < best_primal:
        best_primal, best_levels, best_energy = float(repaired[1].sum()), repaired[0], repaired[1]
    met = best_primal < np.inf
    if not met:  # the class minima fit, but the step rules (runs of a minimum length) do not
        log.warning("cap not met under the step rules supply_point=%s cap_w=%.0f",
                    cap.supply_point, cap.cap_w)
        best_primal = float(best_energy.sum())
    peak = float(aggregate(expected_power(pr, best_levels, rows)).max())
    gap = (best_primal - best_dual) / best_dual if best_dual > 0 else 0.0
    log.debug("cap supply_point=%s iterations=%d primal_wh=%.1f dual_wh=%.1f gap=%.4f",
              cap.supply_point, it, best_primal, best_dual, gap)
    return CapResult(best_levels, best_energy, best_primal, best_dual, uncapped, gap, it, met,
                     peak, lam)


def _repair(levels: list[np.ndarray], energy: list[np.ndarray], window: list[np.ndarray],
            cap_w: float) -> tuple[np.ndarray, np.ndarray] | None:
    """From each group's cheapest plan seen, move groups one at a time to another plan seen,
    the one that removes the most excess power per Wh added, until the cap holds (None if the
    plans seen cannot meet it)."""
    if not levels:
        return None
    e = np.stack(energy)  # (C, G)
    w = np.stack(window)  # (C, G, Q)
    n_c, n_g = e.shape
    choice = np.argmin(e, axis=0)
    load = w[choice, np.arange(n_g)].sum(axis=0)
    for _ in range(n_c * n_g):
        excess = np.maximum(load - cap_w, 0.0).sum()
        if excess <= cap_w * 1e-9:
            lv = np.stack([levels[c][g] for g, c in enumerate(choice)])
            en = np.array([energy[c][g] for g, c in enumerate(choice)])
            return lv, en
        now_w = w[choice, np.arange(n_g)]  # (G, Q)
        new_load = load[None, None, :] - now_w[None, :, :] + w  # (C, G, Q)
        gain = excess - np.maximum(new_load - cap_w, 0.0).sum(axis=2)
        cost = e - e[choice, np.arange(n_g)][None, :]
        score = np.where(gain > 1e-9, gain / np.maximum(cost, 1e-9), -np.inf)
        c, g = np.unravel_index(int(np.argmax(score)), score.shape)
        if not np.isfinite(score[c, g]):
            return None
        load = load - now_w[g] + w[c, g]
        choice[g] = c
    return None


# ---------------------------------------------------------------------------- output
@dataclass(frozen=True)
class Step:
    """One run of a plan: from `start` (local HH:MM; 'sunset' for the first) at `arc`."""

    start: str
    arc: int
    light_pct: float
    why: str


def _clock(minute: int) -> time:
    return time(minute // 60, minute % 60)


def explain(pr: Problems, row: int, levels: np.ndarray, constraints: Constraints,
            groups: Sequence[Group], price: np.ndarray | None = None) -> list[Step]:
    """The runs of a plan with what set each: the class in force and traffic at the slot that
    needs the run's level, or the constraint that holds the level over slots that need less."""
    n = int(pr.n_slots[row])
    lv = levels[:n].astype(np.int64)
    req = pr.req[row, :n].astype(np.int64)
    series = groups[int(pr.group[row])].rated_class[0]
    cuts = np.concatenate([[0], np.flatnonzero(np.diff(lv) != 0) + 1, [n]])
    steps = []
    for s, e in zip(cuts[:-1].tolist(), cuts[1:].tolist(), strict=True):
        j = int(lv[s])
        at = s + int(np.argmax(req[s:e] == j)) if (req[s:e] == j).any() else s
        name = SERIES[series][int(pr.klass[row, at])]
        when = _clock(int(pr.minute[row, at]))
        adaptive = groups[int(pr.group[row])].presence
        if pr.short[row, at]:
            why = (f"class {name} needs more than the design gives at 100 % "
                   f"(traffic {pr.traffic[row, at]:.0%} of peak at {when:%H:%M})")
        elif adaptive is not None and adaptive.adaptive:
            why = (f"presence-adaptive: base level of the dimmest class {SERIES[series][5]}, "
                   f"boost to {groups[int(pr.group[row])].rated_class} on detection")
        else:
            why = (f"class {name} minimum at {when:%H:%M} (traffic "
                   f"{pr.traffic[row, at]:.0%} of peak)")
        lower = req[s:e] < j
        if lower.any():
            first_low = _clock(int(pr.minute[row, s + int(np.argmax(lower))]))
            # a stretch needing less that is long enough for a run of its own would have been
            # dimmed but for the number of steps; a shorter one, but for the minimum duration
            edges = np.diff(np.concatenate([[0], lower.astype(np.int64), [0]]))
            longest = int((np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)).max())
            held = (f"the limit of {constraints.max_steps} steps a night"
                    if longest >= constraints.min_slots
                    else f"the minimum step of {constraints.min_step_min} min")
            why += f"; held from {first_low:%H:%M} where less would do, by {held}"
        if price is not None and (price[s:e] > 0).any():
            why += "; the supply point's power cap is priced in this run"
        start = "sunset" if s == 0 else f"{_clock(int(pr.minute[row, s])):%H:%M}"
        steps.append(Step(start, int(pr.arcs[j]), round(float(pr.fractions[j]) * 100, 1), why))
    return steps


def program_of(pr: Problems, row: int, levels: np.ndarray, group: Group) -> Program:
    """A plan as the program the agent runs: on at sunset, clock steps on the quarter hours,
    off at sunrise; the presence boost when the group has one.

    On the night the clocks go back, a wall time of the repeated hour names its first
    occurrence (as the agent reads it): a step planned in the second occurrence is written at
    03:00 when it dims (later: more light, never less) and at its wall time when it brightens
    (an hour early: more light again)."""
    n = int(pr.n_slots[row])
    lv = levels[:n].astype(np.int64)
    cuts = np.concatenate([[0], np.flatnonzero(np.diff(lv) != 0) + 1])
    zone = ZoneInfo(group.timezone)
    steps = [ScheduleStep(anchor=Anchor.SUNSET, level=int(pr.arcs[lv[0]]))]
    for c in cuts[1:].tolist():
        at = _clock(int(pr.minute[row, c]))
        instant = datetime.fromtimestamp(float((pr.q0[row] + c) * SLOT_S), zone)
        if instant.fold == 1 and lv[c] < lv[c - 1]:
            at = time(3, 0)
        steps.append(ScheduleStep(anchor=Anchor.CLOCK, at=at, level=int(pr.arcs[lv[c]])))
    steps.append(ScheduleStep(anchor=Anchor.SUNRISE, level=0))
    presence = None
    if group.presence is not None:
        frac = group.photometry.fraction_for(np.array(CLASS_MINIMUM[group.rated_class]))
        arcs, fractions = pr.arcs, pr.fractions
        k = min(int(np.searchsorted(fractions, min(float(frac), 1.0) - 1e-9)), arcs.shape[0] - 1)
        presence = PresenceBoost(level=int(arcs[k]), hold_s=group.presence.hold_s)
    return Program(steps=tuple(steps), presence=presence)


def to_calendar(programs: Sequence[tuple[date, Program]], *, timezone: str,
                clo: bool, revision: int = 1) -> Calendar:
    """Nights' programs (consecutive local evenings) as one calendar valid over those nights:
    each weekday runs the program of its first night; nights that differ are special days."""
    if not programs:
        raise OptimiserError("no nights to write")
    days = [d for d, _ in programs]
    distinct: list[Program] = []
    for _, p in programs:
        if p not in distinct:
            distinct.append(p)
    if len(distinct) > 32:
        raise OptimiserError(f"{len(distinct)} distinct programs; a calendar holds 32")
    name = {i: f"plan-{i + 1}" for i in range(len(distinct))}
    week: dict[int, int] = {}
    special: list[SpecialDay] = []
    for d, p in programs:
        i = distinct.index(p)
        if d.weekday() not in week:
            week[d.weekday()] = i
        elif week[d.weekday()] != i:
            special.append(SpecialDay(name=f"night {d}", first=d, program=name[i]))
    default = week.get(days[0].weekday(), 0)
    return Calendar(
        revision=revision, timezone=timezone, valid_from=min(days), valid_until=max(days),
        programs={name[i]: p for i, p in enumerate(distinct)},
        week=tuple(name[week.get(wd, default)] for wd in range(7)),
        special_days=tuple(special), clo=clo,
    )


@dataclass(frozen=True)
class NightPlan:
    day: date
    program: str
    energy_kwh: float
    baseline_kwh: float
    steps: tuple[Step, ...]

    @property
    def savings_kwh(self) -> float:
        return self.baseline_kwh - self.energy_kwh


@dataclass(frozen=True)
class Proposal:
    group: str
    calendar: Calendar
    nights: tuple[NightPlan, ...]

    @property
    def energy_kwh(self) -> float:
        return sum(n.energy_kwh for n in self.nights)

    @property
    def baseline_kwh(self) -> float:
        return sum(n.baseline_kwh for n in self.nights)

    def explanations(self) -> list[dict[str, object]]:
        return [{"night": n.day.isoformat(), "program": n.program,
                 "energy_kwh": round(n.energy_kwh, 3), "baseline_kwh": round(n.baseline_kwh, 3),
                 "steps": [{"from": s.start, "level": s.arc, "light_pct": s.light_pct,
                            "why": s.why} for s in n.steps]} for n in self.nights]


def propose(groups: Sequence[Group], first: date, nights: int,
            constraints: Constraints | None = None, caps: Sequence[PowerCap] = (),
            revision: int = 1) -> tuple[list[Proposal], list[CapResult]]:
    """Calendars for every group over `nights` evenings from `first`, under the caps."""
    constraints = constraints or Constraints()
    if not 1 <= nights <= 31:
        raise OptimiserError("propose over 1..31 nights")
    days = [first + timedelta(days=i) for i in range(nights)]
    pr = build_problems(groups, days, constraints)
    levels, energy = solve(pr)
    price = np.zeros(pr.dt_h.shape)
    cap_results = []
    for cap in caps:
        members = np.array([g.supply_point == cap.supply_point for g in groups])[pr.group]
        for d in np.unique(pr.day[members]).tolist():
            rows = np.flatnonzero(members & (pr.day == d))
            result = solve_capped(pr, rows, cap)
            levels[rows], energy[rows] = result.levels, result.energy_wh
            win = window_mask(pr, rows, cap)
            qrel = (pr.q0[rows][:, None] - pr.q0[rows].min()) + np.arange(pr.dt_h.shape[1])
            lam = np.append(result.price, 0.0)
            price[rows] = np.where(win, lam[np.minimum(qrel, lam.shape[0] - 1)], 0.0)
            cap_results.append(result)
    base = baseline_wh(pr)
    out = []
    for g, group in enumerate(groups):
        rows = np.flatnonzero(pr.group == g)
        plans = [(date.fromordinal(int(pr.day[r])), program_of(pr, r, levels[r], group))
                 for r in rows.tolist()]
        cal = to_calendar(plans, timezone=group.timezone, clo=group.photometry.clo,
                          revision=revision)
        night_plans = tuple(
            NightPlan(day, cal.program_name(day) or "", float(energy[r]) / 1000.0,
                      float(base[r]) / 1000.0,
                      tuple(explain(pr, r, levels[r], constraints, groups, price[r])))
            for (day, _), r in zip(plans, rows.tolist(), strict=True))
        out.append(Proposal(group.id, cal, night_plans))
    return out, cap_results


def propose_for_group(group: Group, first: date, nights: int = 7,
                      constraints: Constraints | None = None) -> Proposal:
    """"Propose for this group": its calendar for the coming nights, with predicted energy,
    savings and an explanation per step. Pure: the caller supplies the group's data."""
    proposals, _ = propose([group], first, nights, constraints)
    return proposals[0]
