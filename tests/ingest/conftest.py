"""Fixtures of the ingest tests (helpers live in ingest_helpers)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from ingest_helpers import Publisher

from luciole.stack import Endpoints


@pytest.fixture
def publisher(mqtt: Endpoints) -> Iterator[Publisher]:
    pub = Publisher(mqtt)
    yield pub
    pub.close()
