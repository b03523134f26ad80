"""15-minute energy per luminaire from cumulative counters: measured, estimated or default.

A pure function of arrays (`account`): readings sorted by (luminaire, time), what is known of each
luminaire (power, supply, place, peers) and a ragged grid of cells (see `analytics.energy_kernels`).

* Measured: a step between two good readings at most `short_s` apart whose counter rose by a
  plausible amount (or wrapped over a known modulus) is split over the cells it spans.
* Estimated: a longer step (a gap: lost readings, a silent controller, the supply off by day) is
  spread by the expected power of the level in force (what the luminaire's peers drew in each
  interval, else the level held from the readings on either side), and scaled so that it sums to
  the counter's step: totals from counters stay exact whatever is lost. A step the counter cannot
  measure (reset, implausible jump), the time before a luminaire's first reading and after its
  last one are estimated from the expected power alone, with a wider uncertainty.
* Default: a luminaire that has never reported is counted at its rated power for the burning time
  of the astronomical clock (sunset to sunrise), with a wide uncertainty.

On a switched supply only the night part of a cell is powered: no estimated or default energy by
day; energy measured by day is kept and flagged (day burning).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analytics import energy_kernels as ek
from analytics.kernels import DRIVER_KNEE, STANDBY_W

# cell flags beyond the STEP_* bits of the readings in the cell
CELL_DAY_BURNING = 64  # energy measured while a switched supply should be off
CELL_HELD = 128  # estimated with a level held from a reading: no peer reported then
CELL_DEFAULT = 256  # nothing known: rated power x astronomical burning time
CELL_UNCONSTRAINED = 512  # estimated with no counter step to close it
CELL_EQUIVALENT = 1024  # gear without energy metering: the level reported x the power at that level

MEASURED, ESTIMATED, DEFAULT = 0, 1, 2
SOURCE_NAMES = ("measured", "estimated", "default")

#: input power at full of a luminaire rated `rated_w` (LED load): a typical driver's efficiency
DRIVER_EFFICIENCY = 0.92
#: moduli a counter may roll over (16, 24, 32 and 48-bit Wh counters; 10^6..10^9 Wh registers)
WRAP_MODULI_WH = (float(1 << 16), 1e6, float(1 << 24), 1e7, 1e8, float(1 << 32), 1e9,
                  float(1 << 48))


@dataclass(frozen=True)
class Uncertainty:
    """Relative uncertainty of each kind of energy (a bound meant to cover the error)."""

    measured: float = 0.01  # the driver's own metering, and the split of a step
    constrained: float = 0.03  # a gap closed by the counter: only its shape is estimated
    unconstrained: float = 0.06  # expected power alone
    held: float = 0.30  # a level held across the gap (no peer then): the level may have changed
    # the rated power at a level, for gear that does not meter it: a constant-light-output
    # driver draws up to a fifth less than its rating early in its life
    equivalent: float = 0.25
    # x the energy of `edge_s` at a switching edge in the gap: the cabinet's switching time is
    # known to within its readings' spacing and the astronomical clock
    edge: float = 1.0
    default: float = 0.5  # rated power x burning time: dimming and faults unknown


@dataclass(frozen=True)
class Method:
    """Parameters of the accounting (documented in docs/energy.md)."""

    short_s: float = 900.0  # a step at most this long is measured
    edge_s: float = 600.0  # a switched cabinet's clock may differ from sunset/sunrise this much
    lookback_s: float = 36 * 3600.0  # a gap longer than this is not closed by the counter
    moduli: tuple[float, ...] = WRAP_MODULI_WH
    uncertainty: Uncertainty = Uncertainty()


@dataclass(frozen=True)
class Fleet:
    """What is known of each dense luminaire j."""

    rated_input_w: np.ndarray  # float64: input power at full from the rated power (0: unknown)
    switched: np.ndarray  # bool: its cabinet's supply is off by day
    place: np.ndarray  # int64: index of its sun transitions (Sun)
    peer: np.ndarray  # int64: peer group (e.g. its cabinet); -1 none
    wider: np.ndarray  # int64: wider peer group (e.g. its municipality)


@dataclass(frozen=True)
class Sun:
    """Sunrise, sunset, sunrise... (epoch s) per place, ragged: place p owns trans[off[p]:off[p+1]]."""

    trans: np.ndarray
    off: np.ndarray


@dataclass(frozen=True)
class Grid:
    """Cells of each luminaire: j owns cells off[j]..off[j+1]-1, from bucket b0[j]."""

    b0: np.ndarray
    off: np.ndarray

    @classmethod
    def spans(cls, start_s: np.ndarray, end_s: np.ndarray) -> Grid:
        """Cells covering [start_s[j], end_s[j]) per luminaire (whole buckets)."""
        b0 = np.floor(np.asarray(start_s) / ek.BUCKET_S).astype(np.int64)
        b1 = np.ceil(np.asarray(end_s) / ek.BUCKET_S).astype(np.int64)
        n = np.maximum(b1 - b0, 0)
        return cls(b0, np.concatenate([[0], np.cumsum(n)]).astype(np.int64))

    @property
    def cells(self) -> int:
        return int(self.off[-1])

    def cell_lum(self) -> np.ndarray:
        return np.repeat(np.arange(self.off.shape[0] - 1), np.diff(self.off))

    def cell_bucket(self) -> np.ndarray:
        lum = self.cell_lum()
        return self.b0[lum] + (np.arange(self.cells) - self.off[lum])


@dataclass(frozen=True)
class Readings:
    """Readings sorted by (lum, t); NaN energy or power where the gear does not measure it."""

    lum: np.ndarray
    t: np.ndarray
    energy_wh: np.ndarray
    power_w: np.ndarray
    level: np.ndarray

    @classmethod
    def sorted(cls, lum: np.ndarray, t: np.ndarray, energy_wh: np.ndarray, power_w: np.ndarray,
               level: np.ndarray) -> Readings:
        order = np.lexsort((t, lum))
        return cls(np.asarray(lum, np.int64)[order], np.asarray(t, np.float64)[order],
                   np.asarray(energy_wh, np.float64)[order],
                   np.asarray(power_w, np.float64)[order], np.asarray(level, np.int64)[order])


@dataclass(frozen=True)
class Cells:
    """Per cell of the grid: the energy split by source, its uncertainty and what explains it."""

    energy_wh: np.ndarray
    measured_wh: np.ndarray
    estimated_wh: np.ndarray
    default_wh: np.ndarray
    uncertainty_wh: np.ndarray
    source: np.ndarray  # int8 MEASURED / ESTIMATED / DEFAULT: the least certain source present
    flags: np.ndarray  # int64 STEP_* | CELL_* bits
    covered_s: np.ndarray  # seconds spanned by measured steps
    powered_s: np.ndarray  # seconds the supply is on (night seconds on a switched supply)
    burning_s: np.ndarray  # seconds lit (measured steps at a level > 0, or expected lit)
    level_s: np.ndarray  # sum of level x seconds over the measured steps (mean = / covered)
    samples: np.ndarray  # readings in the cell


def light_share(level: np.ndarray) -> np.ndarray:
    """Share of full input power above standby at an arc level (log curve, driver knee)."""
    n = np.asarray(level, dtype=np.float64)
    light = np.where(n <= 0, 0.0, np.power(10.0, (n - 1.0) / (253.0 / 3.0) - 1.0) / 100.0)
    return np.where(n <= 0, 0.0, DRIVER_KNEE + (1.0 - DRIVER_KNEE) * light)


def learned_full_w(r: Readings, n_lum: int, prior_w: np.ndarray) -> np.ndarray:
    """Per luminaire, the median full-level input power its lit readings imply (prior where
    none)."""
    share = light_share(r.level)
    ok = np.isfinite(r.power_w) & (r.power_w > STANDBY_W) & (share > 0.2)
    est = STANDBY_W + (r.power_w[ok] - STANDBY_W) / share[ok]
    lum = r.lum[ok]
    out = np.asarray(prior_w, np.float64).copy()
    if lum.shape[0]:  # readings are sorted by luminaire: one segment each
        heads = np.flatnonzero(np.concatenate([[True], lum[1:] != lum[:-1]]))
        out[lum[heads]] = ek.segment_medians(heads, est)
    return out


def sun_of(places: list[np.ndarray]) -> Sun:
    """A `Sun` from per-place transition arrays."""
    lens = np.array([p.shape[0] for p in places], dtype=np.int64)
    trans = np.concatenate(places) if places else np.zeros(0)
    return Sun(trans.astype(np.float64), np.concatenate([[0], np.cumsum(lens)]).astype(np.int64))


def share_above_standby(power_w: np.ndarray, full_w: np.ndarray) -> np.ndarray:
    """The share of full power above standby that `power_w` is: 0 at or below standby (a
    controller on a cut supply, or one whose standby is below the model's, draws no negative
    light: a negative share made negative estimates that broke the table's CHECK and stopped the
    job), NaN where the rating is unknown or not above standby."""
    with np.errstate(invalid="ignore", divide="ignore"):
        share = (power_w - STANDBY_W) / np.maximum(full_w - STANDBY_W, 1e-9)
    return np.where(full_w > STANDBY_W, np.maximum(share, 0.0), np.nan)


def _peer_fraction(grid: Grid, fleet: Fleet, full_w: np.ndarray, measured: np.ndarray,
                   covered: np.ndarray) -> np.ndarray:
    """Per cell, the median share of full power above standby the luminaire's peers drew in
    that interval while measured; NaN where no peer was measured for at least 5 minutes of it."""
    lum = grid.cell_lum()
    bucket = grid.cell_bucket()
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = share_above_standby(measured * 3600.0 / covered, full_w[lum])
    ok = (covered >= 300.0) & np.isfinite(frac) & (full_w[lum] > STANDBY_W)
    out = np.full(grid.cells, np.nan)
    for groups in (fleet.wider[lum], fleet.peer[lum]):  # the narrower group wins
        has = ok & (groups >= 0)
        if not has.any():
            continue
        key = groups[has] * (1 << 40) + bucket[has]
        order = np.argsort(key, kind="stable")
        k, f = key[order], frac[has][order]
        heads = np.flatnonzero(np.concatenate([[True], k[1:] != k[:-1]]))
        med = ek.segment_medians(heads, f)
        all_key = groups * (1 << 40) + bucket
        pos = np.clip(np.searchsorted(k[heads], all_key), 0, heads.shape[0] - 1)
        hit = (groups >= 0) & (k[heads][pos] == all_key)
        out[hit] = med[pos[hit]]
    return out


def observed_supply(r: Readings, fleet: Fleet, sun: Sun,
                    window_s: float = 3600.0) -> tuple[Sun, np.ndarray]:
    """Switching times of each switched cabinet as its readings bound them, per luminaire place.

    A switched cabinet cuts all its controllers at once, so near a sunrise the cut came after
    the cabinet's last reading and before the earliest time one of its luminaires was due to
    report again (its last reading + its own reporting interval); near a sunset the power came
    on before the first reading and after the latest time a luminaire would have reported had
    it been on. The astronomical time, clipped into those bounds, is the switching time. Where
    the cabinet is silent near an edge, the astronomical time stays. Returns the transitions
    and the place index of each luminaire in them (unswitched luminaires keep theirs).
    """
    groups = np.unique(fleet.peer[fleet.switched & (fleet.peer >= 0)])
    if groups.shape[0] == 0:
        return sun, fleet.place
    trans = [sun.trans[sun.off[p]:sun.off[p + 1]] for p in range(sun.off.shape[0] - 1)]
    place = fleet.place.copy()
    lum_group = np.where(fleet.switched, fleet.peer, -1)
    read_group = lum_group[r.lum]
    for g in groups.tolist():
        members = np.flatnonzero(lum_group == g)
        tr = trans[int(fleet.place[members[0]])].copy()
        mine = read_group == g
        t_g, l_g = r.t[mine], r.lum[mine]
        for k in range(tr.shape[0]):
            near = (t_g >= tr[k] - window_s) & (t_g <= tr[k] + window_s)
            if np.count_nonzero(near) < 2:
                continue
            t_n, l_n = t_g[near], l_g[near]
            order = np.lexsort((t_n, l_n))
            t_n, l_n = t_n[order], l_n[order]
            same = l_n[1:] == l_n[:-1]
            steps = np.diff(t_n)[same]
            every = float(np.median(steps)) if steps.shape[0] else window_s
            if k % 2 == 0:  # sunrise: the cut
                lo, hi = float(t_n.max()), float(t_n.max()) + every
            else:  # sunset: the power on
                lo, hi = float(t_n.min()) - every, float(t_n.min())
            tr[k] = min(max(tr[k], lo), hi)
        place[members] = len(trans)
        trans.append(np.maximum.accumulate(tr))
    return sun_of(trans), place


def equivalent_counter(r: Readings, rated_input_w: np.ndarray, short_s: float
                       ) -> tuple[Readings, np.ndarray, np.ndarray, np.ndarray]:
    """Readings of gear that reports its level but meters no energy (NaN energy and power), made
    into an equivalent meter: power = the rated power at the level; a step between two readings
    counts the mean of their powers (the level changed at an unknown time between them: half
    the difference is the step's ambiguity, Wh). A step longer than ``short_s`` counts nothing:
    what happened in it is not known, and it is filled as a gap the counter does not close.
    Returns the readings, which luminaires were so treated (those with no metered reading at
    all), the ambiguity per reading and which readings end such a long step."""
    n_lum = rated_input_w.shape[0]
    metered = np.zeros(n_lum, dtype=bool)
    metered[r.lum[np.isfinite(r.energy_wh)]] = True
    equiv = ~metered & (rated_input_w > 0)
    rows = equiv[r.lum] & (r.level >= 0) & (r.level <= 254)
    ambiguity = np.zeros(r.lum.shape[0])
    long_step = np.zeros(r.lum.shape[0], dtype=bool)
    if not rows.any():
        return r, equiv & False, ambiguity, long_step
    power = STANDBY_W + (rated_input_w[r.lum] - STANDBY_W) * light_share(r.level)
    idx = np.flatnonzero(rows)
    lum, t, p = r.lum[idx], r.t[idx], power[idx]
    step = np.zeros(idx.shape[0])
    same = np.concatenate([[False], lum[1:] == lum[:-1]])
    short = same[1:] & (np.diff(t) <= short_s)
    step[1:] = np.where(short, 0.5 * (p[:-1] + p[1:]) * np.diff(t) / 3600.0, 0.0)
    ambiguity[idx[1:]] = np.where(short, 0.5 * np.abs(p[1:] - p[:-1]) * np.diff(t) / 3600.0, 0.0)
    long_step[idx[1:]] = same[1:] & ~short
    heads = np.flatnonzero(~same)
    run = np.cumsum(step)
    run -= np.repeat(run[heads], np.diff(np.concatenate([heads, [idx.shape[0]]])))
    energy, pw = r.energy_wh.copy(), r.power_w.copy()
    energy[idx], pw[idx] = run, p
    return Readings(r.lum, r.t, energy, pw, r.level), equiv, ambiguity, long_step


def account(r: Readings, fleet: Fleet, sun: Sun, grid: Grid, t_end: float,
            method: Method | None = None) -> Cells:
    """The energy of every cell of the grid up to t_end (epoch s) from the readings (see module)."""
    method = method or Method()
    n_lum = grid.off.shape[0] - 1
    keep = (r.t <= t_end) & np.isfinite(r.t)  # a reading from the future is no evidence
    r = Readings(r.lum[keep], r.t[keep], r.energy_wh[keep], r.power_w[keep], r.level[keep])
    r, equiv, ambiguity, long_step = equivalent_counter(r, fleet.rated_input_w, method.short_s)
    full_w = learned_full_w(r, n_lum, fleet.rated_input_w)
    prior = np.where(fleet.rated_input_w > 0, fleet.rated_input_w, full_w)
    bound_w = np.maximum(full_w, prior) * 1.5 + 5.0
    delta, bits = ek.counter_steps(r.lum, r.t, r.energy_wh, bound_w,
                                   np.array(sorted(method.moduli)), method.short_s)
    delta[long_step] = np.nan  # an equivalent meter knows nothing of a long step
    n = r.lum.shape[0]
    good = (bits & ek.STEP_BAD) == 0
    gidx = np.flatnonzero(good)
    glum = r.lum[gidx]
    prev = np.full(n, -1, dtype=np.int64)
    same = np.concatenate([[False], glum[1:] == glum[:-1]])
    prev[gidx[1:][same[1:]]] = gidx[:-1][same[1:]]
    power = np.where(np.isfinite(r.power_w) & (r.power_w >= 0), r.power_w, np.nan)

    cells = grid.cells
    measured = np.zeros(cells)
    covered = np.zeros(cells)
    level_s = np.zeros(cells)
    burning_h = np.zeros(cells)
    lost = ek.STEP_RESET | ek.STEP_IMPLAUSIBLE | ek.STEP_GAP | ek.STEP_FIRST | ek.STEP_BAD
    steps = np.flatnonzero(good & (prev >= 0) & ((bits & lost) == 0) & np.isfinite(delta))
    if steps.shape[0]:
        a = prev[steps]
        dt = r.t[steps] - r.t[a]
        mean_w = delta[steps] * 3600.0 / np.maximum(dt, 1e-9)
        p0 = np.where(np.isnan(power[a]), mean_w, power[a])
        p1 = np.where(np.isnan(power[steps]), mean_w, power[steps])
        ek.spread_steps(r.lum[steps], r.t[a], r.t[steps], p0, p1, delta[steps], grid.b0,
                        grid.off, measured, covered)
        ones = np.ones(steps.shape[0])
        scratch = np.zeros(cells)
        ek.spread_steps(r.lum[steps], r.t[a], r.t[steps], ones, ones,
                        r.level[steps] * dt / 3600.0, grid.b0, grid.off, level_s, scratch)
        ek.spread_steps(r.lum[steps], r.t[a], r.t[steps], ones, ones,
                        (r.level[steps] > 0) * dt / 3600.0, grid.b0, grid.off, burning_h, scratch)
        level_s *= 3600.0
    ambiguous = np.zeros(cells)
    amb = steps[ambiguity[steps] > 0] if steps.shape[0] else steps
    if amb.shape[0]:
        ones = np.ones(amb.shape[0])
        ek.spread_steps(r.lum[amb], r.t[prev[amb]], r.t[amb], ones, ones, ambiguity[amb],
                        grid.b0, grid.off, ambiguous, np.zeros(cells))

    # gaps: (lum, t0, t1, counter step or NaN, power fraction before, after, flags)
    frac = share_above_standby(power, full_w[r.lum])
    gap_steps = np.flatnonzero(good & (prev >= 0) & ((bits & (lost & ~ek.STEP_FIRST)) != 0))
    ga = prev[gap_steps]
    closes = np.isfinite(delta[gap_steps]) & (r.t[gap_steps] - r.t[ga] <= method.lookback_s)
    g_lum = [r.lum[gap_steps]]
    g_t0 = [r.t[ga]]
    g_t1 = [r.t[gap_steps]]
    g_delta = [np.where(closes, delta[gap_steps], np.nan)]
    g_h0 = [frac[ga]]
    g_h1 = [frac[gap_steps]]
    # before the first reading (provisioning, or the first reading of this grid with no
    # anchor) and after the last one, up to t_end
    if gidx.shape[0]:
        heads = np.flatnonzero(np.concatenate([[True], glum[1:] != glum[:-1]]))
        tails = np.concatenate([heads[1:] - 1, [gidx.shape[0] - 1]])
        first, last = gidx[heads], gidx[tails]
        lf, ll = r.lum[first], r.lum[last]
        g_lum += [lf, ll]
        g_t0 += [grid.b0[lf] * ek.BUCKET_S, r.t[last]]
        g_t1 += [r.t[first], np.full(ll.shape[0], t_end)]
        g_delta += [np.full(lf.shape[0], np.nan), np.full(ll.shape[0], np.nan)]
        g_h0 += [frac[first], frac[last]]
        g_h1 += [frac[first], frac[last]]
    gl = np.concatenate(g_lum).astype(np.int64)
    gt0, gt1 = np.concatenate(g_t0), np.concatenate(g_t1)
    gd = np.concatenate(g_delta)
    h0, h1 = np.concatenate(g_h0), np.concatenate(g_h1)
    h0 = np.where(np.isnan(h0), h1, h0)
    h1 = np.where(np.isnan(h1), h0, h1)
    h0 = np.nan_to_num(h0, nan=1.0)
    h1 = np.nan_to_num(h1, nan=1.0)
    peer_frac = _peer_fraction(grid, fleet, full_w, measured, covered)
    supply, supply_place = observed_supply(r, fleet, sun)
    constrained = np.isfinite(gd)
    est = {}
    for name, sel in (("c", constrained), ("u", ~constrained)):
        e_, edge_, held_ = np.zeros(cells), np.zeros(cells), np.zeros(cells)
        s = np.flatnonzero(sel)
        ek.fill_gaps(gl[s], gt0[s], gt1[s], gd[s], h0[s], h1[s], full_w, fleet.switched,
                     supply_place, supply.trans, supply.off, peer_frac, grid.b0, grid.off,
                     method.edge_s, STANDBY_W, e_, edge_, held_)
        est[name] = (e_, edge_, held_)

    # default: luminaires with no good reading at all
    lum_of = grid.cell_lum()
    reported = np.zeros(n_lum, dtype=bool)
    reported[glum] = True
    night = ek.cell_night_seconds(grid.b0, grid.off, fleet.place, sun.trans, sun.off)
    cell_start = grid.cell_bucket() * ek.BUCKET_S
    known_s = np.clip(t_end - cell_start, 0.0, ek.BUCKET_S)
    night_known = np.minimum(night, known_s)
    default = np.where(~reported[lum_of], prior[lum_of] * night_known / 3600.0, 0.0)

    u = method.uncertainty
    # the equivalent meter's "measured" energy is the rated power at the level: estimated
    lum_equiv = equiv[lum_of]
    est["c"] = (est["c"][0] + np.where(lum_equiv, measured, 0.0), est["c"][1], est["c"][2])
    equiv_wh = np.where(lum_equiv, est["c"][0], 0.0)
    measured = np.where(lum_equiv, 0.0, measured)
    ec, edge_c, held_c = est["c"]
    eu, edge_u, held_u = est["u"]
    estimated = ec + eu
    energy = measured + estimated + default
    unc = (u.measured * measured + u.constrained * (ec - held_c - equiv_wh)
           + u.equivalent * equiv_wh + ambiguous + u.held * (held_c + held_u)
           + u.unconstrained * (eu - held_u) + u.edge * (edge_c + edge_u) + u.default * default)
    unc = np.maximum(unc, 0.0)  # terms are differences of sums: never below 0 but for rounding

    flags = np.zeros(cells, dtype=np.int64)
    in_cell = grid.off[r.lum] + (np.floor(r.t / ek.BUCKET_S).astype(np.int64) - grid.b0[r.lum])
    valid = (in_cell >= grid.off[r.lum]) & (in_cell < grid.off[r.lum + 1])
    np.bitwise_or.at(flags, in_cell[valid], bits[valid])
    samples = np.bincount(in_cell[valid], minlength=cells)
    powered = np.where(fleet.switched[lum_of], ek.cell_night_seconds(
        grid.b0, grid.off, supply_place, supply.trans, supply.off), ek.BUCKET_S)
    day_burning = fleet.switched[lum_of] & (covered > night + 60.0) & (measured > 0)
    flags |= np.where(day_burning, CELL_DAY_BURNING, 0)
    flags |= np.where(held_c + held_u > 0, CELL_HELD, 0)
    flags |= np.where(default > 0, CELL_DEFAULT, 0)
    flags |= np.where(eu > 0, CELL_UNCONSTRAINED, 0)
    flags |= np.where(lum_equiv, CELL_EQUIVALENT, 0)
    source = np.where(default > 0, DEFAULT, np.where(
        (estimated > 1e-9) | (lum_equiv & (powered > 0)), ESTIMATED, MEASURED))
    lit_expected = np.where(estimated > 0, np.minimum(powered, np.maximum(known_s - covered, 0.0)), 0.0)
    burning = burning_h * 3600.0 + np.where(
        (estimated + default) > STANDBY_W * 2 * ek.BUCKET_S / 3600.0, lit_expected, 0.0)
    burning += np.where(default > 0, night_known, 0.0)
    return Cells(energy, measured, estimated, default, unc, source.astype(np.int8), flags,
                 covered, powered, np.minimum(burning, ek.BUCKET_S), level_s,
                 samples.astype(np.int64))
