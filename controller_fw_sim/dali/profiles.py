"""Gear profiles of the field: which device types and memory banks a simulated gear implements.

Most installed DALI gear is a plain device type 6 LED driver with bank 0 only; D4i drivers add
some of bank 1 (Part 251), 202-204 (Part 252 energy) and 205-207 (Part 253 diagnostics); colour
temperature drivers are device type 8 (IEC 62386-209, Tc). A bus, or a fleet, mixes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from wire.records import LuminaireFailure

DEVICE_TYPE_LED = 6
DEVICE_TYPE_COLOUR = 8


@dataclass(frozen=True)
class GearProfile:
    """What one kind of gear implements. `tc_range_mirek`: the colour temperature range of a DT8
    Tc gear (coolest, warmest), None for gear without colour control."""

    name: str
    device_types: tuple[int, ...]
    banks: frozenset[int]
    tc_range_mirek: tuple[int, int] | None = None

    @property
    def d4i(self) -> bool:
        return 202 in self.banks

    def has(self, device_type: int) -> bool:
        return device_type in self.device_types

    def absent(self) -> LuminaireFailure:
        """The ABSENT_* bits of a luminaire record of this gear: what it does not measure."""
        bits = LuminaireFailure.NONE
        if 202 not in self.banks:
            bits |= LuminaireFailure.ABSENT_POWER
        if not self.banks & {205, 206}:
            bits |= LuminaireFailure.ABSENT_DIAGNOSTICS
        return bits


PLAIN_DT6 = GearProfile("dt6", (DEVICE_TYPE_LED,), frozenset({0}))
"""A plain DALI-2 LED driver: bank 0, no D4i."""
D4I_ENERGY = GearProfile("d4i_252", (DEVICE_TYPE_LED,), frozenset({0, 202}))
"""A D4i driver with energy reporting only (Part 252 bank 202), no Part 251 or 253."""
D4I_FULL = GearProfile("d4i_full", (DEVICE_TYPE_LED,),
                       frozenset({0, 1, 202, 203, 204, 205, 206, 207}))
"""A full D4i driver: Parts 251, 252 (202-204) and 253 (205-207)."""
DT8_TC = GearProfile("dt8_tc", (DEVICE_TYPE_COLOUR,), frozenset({0, 1, 202}), (153, 370))
"""A tunable-white colour temperature driver (DT8 Tc, 6500 K to 2700 K) with D4i 251 and 252."""

PROFILES: dict[str, GearProfile] = {p.name: p for p in (PLAIN_DT6, D4I_ENERGY, D4I_FULL, DT8_TC)}
MIXED_BUS: tuple[GearProfile, ...] = (PLAIN_DT6, D4I_ENERGY, D4I_FULL, DT8_TC)
"""One of each, as a bus mixing the gear of several renovations."""


def profile(name_or_profile: str | GearProfile) -> GearProfile:
    """A profile by name (one of PROFILES), or the profile itself."""
    if isinstance(name_or_profile, GearProfile):
        return name_or_profile
    try:
        return PROFILES[name_or_profile]
    except KeyError:
        raise ValueError(f"unknown gear profile {name_or_profile!r}; one of "
                         f"{sorted(PROFILES)}") from None


def parse_mix(text: str) -> tuple[GearProfile, ...]:
    """Profiles from a comma-separated list of names ("dt6,d4i_full"); ValueError names an
    unknown one."""
    return tuple(profile(name.strip()) for name in text.split(",") if name.strip()) or (
        D4I_FULL,)


def mix(n: int, profiles: Sequence[str | GearProfile]) -> list[GearProfile]:
    """Profiles for `n` gear, cycling through `profiles` (gear i gets profiles[i % len])."""
    if not profiles:
        raise ValueError("a gear mix needs at least one profile")
    chosen = [profile(p) for p in profiles]
    return [chosen[i % len(chosen)] for i in range(n)]
