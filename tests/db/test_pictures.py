"""Energy profile and luminaire map: the pivot is right, and the pictures are drawn from the DB."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from controller_fw_sim.fleet_inventory import build_inventory
from luciole.pictures import energy_series, render
from luciole.seed import seed_inventory

T0 = datetime(2026, 1, 5, 17, 0, tzinfo=UTC)


def test_energy_series_pivots_and_fills_gaps() -> None:
    q = timedelta(minutes=15)
    series = energy_series([(T0, "ixelles", 2.0), (T0 + q, "uccle", 3.0), (T0, "uccle", 1.0),
                            (T0 + q, "uccle", 0.5)])
    assert series.tenants == ["ixelles", "uccle"]
    assert series.buckets == [T0, T0 + q]
    np.testing.assert_allclose(series.kwh, [[2.0, 0.0], [1.0, 3.5]])


@pytest.mark.integration
def test_pictures_are_drawn_from_the_database(db_dsn: str, tmp_path: Path) -> None:
    seed_inventory(db_dsn, build_inventory(10, 2, seed=1))
    paths = render(db_dsn, tmp_path)
    assert [p.name for p in paths] == ["energy_profile.png", "luminaire_map.png"]
    for path in paths:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert path.stat().st_size > 10_000
