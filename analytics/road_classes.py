"""EN 13201 lighting classes as data, and CEN/TR 13201-1's lowering of a class as traffic falls.

EN 13201-2 gives each class a maintained minimum: average road-surface luminance (cd/m²) for the
M classes (motorised traffic), average horizontal illuminance (lx) for the C classes (conflict
areas) and the P classes (pedestrians, low-speed areas). A smaller number is a brighter class.
CEN/TR 13201-1 selects the class from weighted parameters, among them the traffic volume; when the
volume falls at night the weighted sum falls and a lower (dimmer) class applies. The optimiser
only ever lowers a road's rated class, never raises it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: maintained minimum of each class (EN 13201-2): M in cd/m², C and P in lx
CLASS_MINIMUM: dict[str, float] = {
    "M1": 2.0, "M2": 1.5, "M3": 1.0, "M4": 0.75, "M5": 0.5, "M6": 0.3,
    "C0": 50.0, "C1": 30.0, "C2": 20.0, "C3": 15.0, "C4": 10.0, "C5": 7.5,
    "P1": 15.0, "P2": 10.0, "P3": 7.5, "P4": 5.0, "P5": 3.0, "P6": 2.0,
}
SERIES = {"M": ("M1", "M2", "M3", "M4", "M5", "M6"),
          "C": ("C0", "C1", "C2", "C3", "C4", "C5"),
          "P": ("P1", "P2", "P3", "P4", "P5", "P6")}
UNIT = {"M": "cd/m²", "C": "lx", "P": "lx"}

#: CEN/TR 13201-1 traffic-volume weighting, as the share of the road's peak-hour volume: at or
#: above the first bound the volume counts as at design (no lowering); each bound crossed
#: downwards lowers the class by one more step (the TR's "high / moderate / low" volume).
TRAFFIC_BOUNDS = (0.65, 0.35, 0.15)


class ClassError(ValueError):
    """A lighting class that EN 13201-2 does not define."""


@dataclass(frozen=True)
class LightingClass:
    name: str

    def __post_init__(self) -> None:
        if self.name not in CLASS_MINIMUM:
            raise ClassError(f"unknown EN 13201 class {self.name!r}; one of "
                             f"{', '.join(CLASS_MINIMUM)}")

    @property
    def series(self) -> str:
        return self.name[0]

    @property
    def rank(self) -> int:
        """Position in its series, 0 the brightest."""
        return SERIES[self.series].index(self.name)

    @property
    def minimum(self) -> float:
        return CLASS_MINIMUM[self.name]

    def lowered(self, steps: int) -> LightingClass:
        """This class lowered by `steps` (>= 0), stopping at the dimmest of its series."""
        if steps < 0:
            raise ValueError("a class is never raised above the road's rated class")
        series = SERIES[self.series]
        return LightingClass(series[min(self.rank + steps, len(series) - 1)])


def lowering_steps(traffic: np.ndarray) -> np.ndarray:
    """Class steps to lower by, for traffic as a share of the peak hour (0..1)."""
    t = np.asarray(traffic, dtype=np.float64)
    steps = np.zeros(t.shape, dtype=np.int64)
    for bound in TRAFFIC_BOUNDS:
        steps += t < bound
    return steps


def class_in_force(rated: LightingClass, traffic: np.ndarray,
                   planned: tuple[str, ...] | None = None) -> list[LightingClass]:
    """The class per period: the energy manager's planned class per period if given, else the
    rated class lowered by the traffic; never above the rated class either way."""
    steps = lowering_steps(traffic)
    out = []
    for i, s in enumerate(steps.tolist()):
        by_traffic = rated.lowered(int(s))
        if planned is not None:
            chosen = LightingClass(planned[i])
            if chosen.series != rated.series:
                raise ClassError(f"planned class {chosen.name} is not of the rated class's "
                                 f"series {rated.series}")
            by_traffic = chosen if chosen.rank >= rated.rank else rated
        out.append(by_traffic)
    return out
