"""A synthetic but plausible Brussels lighting stock for the optimiser: 83,420 luminaires in about
2,000 groups over the 19 municipalities, with EN 13201 classes in the proportions of a European
capital (mostly residential P and M4-M5 streets, some arterials and conflict areas), designs that
meet their class with a margin, published-shape traffic profiles, presence sensors on a share of
the residential streets, and supply points of about 40 groups each. A fixed seed gives the same
fleet every run."""

from __future__ import annotations

import numpy as np

from analytics.optimiser import Group, PresenceRule
from analytics.photometry import Photometry
from analytics.road_classes import CLASS_MINIMUM
from analytics.traffic import typical_profile

LUMINAIRES = 83_420
GROUPS = 2_000
#: class, share of groups, road kind (traffic shape), LED watts range
CLASS_MIX = (
    ("M2", 0.03, "arterial", (90, 150)), ("M3", 0.12, "arterial", (60, 110)),
    ("M4", 0.20, "collector", (40, 80)), ("M5", 0.15, "collector", (30, 60)),
    ("C3", 0.05, "arterial", (60, 110)), ("C4", 0.05, "collector", (40, 80)),
    ("P2", 0.12, "residential", (25, 50)), ("P3", 0.15, "residential", (20, 40)),
    ("P4", 0.13, "residential", (15, 35)),
)
#: centres of the 19 municipalities (approximate)
PLACES = np.array([
    (50.846, 4.352), (50.867, 4.371), (50.833, 4.367), (50.827, 4.372), (50.848, 4.392),
    (50.855, 4.332), (50.853, 4.318), (50.824, 4.339), (50.799, 4.344), (50.812, 4.378),
    (50.836, 4.405), (50.851, 4.426), (50.848, 4.453), (50.873, 4.430), (50.879, 4.391),
    (50.868, 4.340), (50.861, 4.291), (50.837, 4.307), (50.816, 4.421),
])


def brussels_groups(seed: int = 13_201, *, luminaires: int = LUMINAIRES,
                    groups: int = GROUPS) -> list[Group]:
    rng = np.random.default_rng(seed)
    shares = np.array([c[1] for c in CLASS_MIX])
    kinds = rng.choice(len(CLASS_MIX), size=groups, p=shares / shares.sum())
    sizes = rng.multinomial(luminaires - groups, rng.dirichlet(np.full(groups, 4.0))) + 1
    out = []
    for i in range(groups):
        klass, _, road, (lo, hi) = CLASS_MIX[kinds[i]]
        place = PLACES[i % len(PLACES)] + rng.normal(0, 0.01, 2)
        profile = typical_profile(road)
        weekend = np.clip(profile * rng.uniform(0.7, 0.95) + np.where(
            (np.arange(24) < 3) | (np.arange(24) >= 22), 0.1, 0.0), 0, 1)
        traffic = np.stack([profile, weekend / weekend.max()])
        residential = klass[0] == "P"
        sensed = residential and rng.random() < 0.25
        design = CLASS_MINIMUM[klass] * rng.uniform(1.05, 1.6) / 0.8
        out.append(Group(
            id=f"g{i:04d}", luminaires=int(sizes[i]), rated_class=klass,
            photometry=Photometry(rated_w=float(rng.uniform(lo, hi)), design_at_full=design,
                                  clo=bool(rng.random() < 0.4)),
            traffic=traffic, peak_per_h=float(rng.uniform(20, 120)) if sensed else 0.0,
            presence=PresenceRule(hold_s=60, adaptive=True) if sensed else None,
            supply_point=f"5414490000{i // 40:08d}", lat=float(place[0]), lon=float(place[1]),
        ))
    return out
