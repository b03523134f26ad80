"""Fixtures of the analytics tests shared across modules."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.analytics.energy_night import Night, build


@pytest.fixture(scope="session")
def energy_night(stack) -> Iterator[Night]:  # type: ignore[no-untyped-def]
    """A simulated district's night, day and night with the energy and settlement jobs run hourly
    (tests/analytics/energy_night.py)."""
    yield from build(stack)
