"""Fleet inventory: deterministic for a seed, and every id, EAN and value valid for the contract."""

from __future__ import annotations

import numpy as np
import pytest

from controller_fw_sim.fleet_inventory import (
    MODELS,
    TENANTS,
    build_inventory,
    ean18_check_digit,
    is_valid_ean18,
)
from wire.topics import Kind, topic, validate_identifier


def _gs1_ok(ean: str) -> bool:
    """Independent form of the GS1 rule: with weights 3,1,3,... from the left over all 18
    digits (the check digit weighs 1), the sum is a multiple of 10."""
    return sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(ean)) % 10 == 0


def _arrays(inv):
    return {k: v for k, v in vars(inv).items() if isinstance(v, np.ndarray | tuple)}


def test_same_seed_same_region_other_seed_other_region() -> None:
    a, b, c = (
        build_inventory(500, 4, seed=7),
        build_inventory(500, 4, seed=7),
        build_inventory(500, 4, seed=8),
    )
    for name, value in _arrays(a).items():
        other = getattr(b, name)
        assert (np.array_equal(value, other) if isinstance(value, np.ndarray) else value == other), name
    assert not np.array_equal(a.controller_lat, c.controller_lat)
    assert a.cabinet_ean != c.cabinet_ean


def test_ids_are_valid_topic_identifiers_and_unique() -> None:
    inv = build_inventory(2000, 2, seed=1)
    assert inv.controller_ids[0] == "ctl-000001" and inv.controller_ids[-1] == "ctl-002000"
    assert len(set(inv.controller_ids)) == 2000 and len(set(inv.cabinet_ids)) == len(inv.cabinet_ids)
    for name in (*inv.controller_ids, *inv.cabinet_ids, *(t.id for t in inv.tenants)):
        validate_identifier(name)
    assert topic(inv.tenant_of_controller(0), inv.controller_ids[0], Kind.TELEMETRY).startswith("luciole/v1/")


def test_nineteen_municipalities_all_used() -> None:
    inv = build_inventory(1000, 4, seed=0)
    assert len(TENANTS) == 19
    assert np.all(np.bincount(inv.controller_tenant, minlength=19) > 0)
    assert {"anderlecht", "ixelles", "uccle", "schaerbeek"} <= {t.id for t in inv.tenants}


def test_cabinets_have_valid_unique_eans_and_feed_their_own_tenant() -> None:
    inv = build_inventory(3000, 4, seed=3)
    assert all(is_valid_ean18(e) and _gs1_ok(e) and e.startswith("54") for e in inv.cabinet_ean)
    assert len(set(inv.cabinet_ean)) == len(inv.cabinet_ean)
    assert np.array_equal(inv.cabinet_tenant[inv.controller_cabinet], inv.controller_tenant)
    assert np.bincount(inv.controller_cabinet).max() <= 40


@pytest.mark.parametrize("body", ["54140000000000000", "54149876543210123", "00000000000000001"])
def test_ean_check_digit_and_validation(body: str) -> None:
    good = body + str(ean18_check_digit(body))
    assert is_valid_ean18(good) and _gs1_ok(good)
    wrong = body + str((int(good[-1]) + 1) % 10)
    assert not is_valid_ean18(wrong)
    assert not is_valid_ean18(good[:-1]) and not is_valid_ean18(good + "0")
    assert not is_valid_ean18(good[:-1] + "x")


def test_luminaires_are_controller_major_with_plausible_data() -> None:
    m = 5
    inv = build_inventory(400, m, seed=2)
    assert inv.n_luminaires == 400 * m
    assert np.array_equal(inv.luminaire_controller, np.repeat(np.arange(400), m))
    assert np.array_equal(inv.luminaire_index, np.tile(np.arange(m), 400))
    assert inv.luminaire_rated_w.min() >= 30 and inv.luminaire_rated_w.max() <= 120
    assert set(np.unique(inv.luminaire_model)) <= set(range(len(MODELS)))
    assert abs(inv.luminaire_lat.mean() - 50.85) < 0.05 and abs(inv.luminaire_lon.mean() - 4.35) < 0.06
    assert set(np.unique(inv.controller_road_class)) <= {0, 1, 2, 3}


@pytest.mark.parametrize("n, m", [(0, 4), (10, 0), (10, 1025)])
def test_out_of_range_sizes_are_refused(n: int, m: int) -> None:
    with pytest.raises(ValueError):
        build_inventory(n, m)
