"""Luminaire photometry and power: from a class minimum to a light fraction, from a light fraction
to input power and to a DALI arc level.

Input power follows the driver model of the fleet simulator: ``P = standby + rated / eta_max *
(k + (1 - k) x)`` at drive x (the driver's efficiency falls at low load, which makes power affine
in drive). The group's design photometry says what the road gets at 100 % with new LEDs; the
maintenance factor (lumen depreciation and dirt) is what the design must still meet at the end of
the maintenance cycle, so a class minimum M needs light fraction ``M / (design * MF)``. With
constant light output (CLO) the driver holds the output at ``MF`` of new and draws that much less
while the LEDs are young; without it the luminaire is planned for its end-of-cycle output.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: DALI arc level 254 is 100 %; the logarithmic curve of IEC 62386-102
FULL_ARC = 254


def log_curve_fraction(arc: np.ndarray) -> np.ndarray:
    """Light fraction 0..1 of DALI arc levels on the logarithmic curve (0 is off)."""
    n = np.asarray(arc, dtype=np.float64)
    return np.where(n <= 0, 0.0, np.power(10.0, (n - 1.0) / (253.0 / 3.0) - 1.0) / 100.0)


def arc_at_least(fraction: np.ndarray) -> np.ndarray:
    """The lowest arc level whose light is at least `fraction` (0 for 0, 254 at most)."""
    x = np.clip(np.asarray(fraction, dtype=np.float64), 0.0, 1.0)
    with np.errstate(divide="ignore"):
        n = np.ceil(1.0 + (253.0 / 3.0) * (np.log10(np.maximum(x, 1e-12) * 100.0) + 1.0) - 1e-9)
    n = np.clip(n, 1, FULL_ARC).astype(np.int64)
    return np.where(x <= 0.0, 0, n)


@dataclass(frozen=True)
class Photometry:
    """One luminaire type with its road geometry's design value at 100 %."""

    rated_w: float = 60.0           # LED load at 100 %, W
    standby_w: float = 0.5
    eta_max: float = 0.92
    eta_knee: float = 0.05
    lm_per_w: float = 140.0         # luminous efficacy at 100 %, lm per LED watt
    design_at_full: float = 1.5     # cd/m² (M) or lx (C, P) at 100 %, new LEDs
    maintenance_factor: float = 0.8
    clo: bool = False
    min_fraction: float = 0.10      # the driver's lowest stable output

    def __post_init__(self) -> None:
        checks = {
            "rated_w": 0 < self.rated_w <= 2000, "standby_w": 0 <= self.standby_w <= 50,
            "eta_max": 0 < self.eta_max <= 1, "eta_knee": 0 <= self.eta_knee < 1,
            "lm_per_w": 0 < self.lm_per_w <= 300, "design_at_full": self.design_at_full > 0,
            "maintenance_factor": 0 < self.maintenance_factor <= 1,
            "min_fraction": 0 < self.min_fraction <= 1,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"photometry out of range: {', '.join(bad)}")

    @property
    def full_w(self) -> float:
        return self.power_w(np.array(1.0)).item()

    def power_w(self, fraction: np.ndarray) -> np.ndarray:
        """Input power at light fraction x of new output (0: standby). With CLO the driver is
        under-driven to the maintained output, on average over the cycle (MF + 1) / 2 of new."""
        x = np.asarray(fraction, dtype=np.float64)
        drive = x * ((1.0 + self.maintenance_factor) / 2.0 if self.clo else 1.0)
        lit = self.rated_w / self.eta_max * (self.eta_knee + (1.0 - self.eta_knee) * drive)
        return np.where(x > 0, self.standby_w + lit, self.standby_w)

    def fraction_for(self, minimum: np.ndarray) -> np.ndarray:
        """Light fraction that keeps a maintained `minimum` (cd/m² or lx); above 1 when the
        design cannot reach it."""
        need = np.asarray(minimum, dtype=np.float64) / (self.design_at_full
                                                        * self.maintenance_factor)
        return np.maximum(need, self.min_fraction)

    def lumens(self, fraction: np.ndarray) -> np.ndarray:
        return np.asarray(fraction, dtype=np.float64) * self.rated_w * self.lm_per_w


def level_grid(n_levels: int, min_fraction: float = 0.10) -> tuple[np.ndarray, np.ndarray]:
    """`n_levels` arc levels from the driver's minimum to 254 (about evenly spaced in light),
    and their exact light fractions on the logarithmic curve."""
    if n_levels < 2:
        raise ValueError("at least two levels")
    target = np.linspace(min_fraction, 1.0, n_levels)
    arcs = arc_at_least(target)
    arcs = np.unique(arcs)
    return arcs, log_curve_fraction(arcs)
