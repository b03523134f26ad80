"""Agents publish retained birth and death messages on the session broker; ingest, which now
reads `state`, would take them for messages of its own tests (unknown controllers there). Each
agent test that used the session stack clears the retained states it left."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.mqtt_probe import Probe
from wire.topics import Kind, subscription


@pytest.fixture(autouse=True)
def _clear_retained_states(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "stack" not in request.fixturenames:
        return
    e = request.getfixturevalue("stack").endpoints
    marker = f"luciole/v1/cleanup/{uuid.uuid4().hex[:12]}/event"
    with Probe(e.mqtt_host, e.mqtt_port, e.mqtt_username, e.mqtt_password) as probe:
        probe.subscribe(subscription(Kind.STATE), retained=True)  # retained ones come after SUBACK
        probe.subscribe(marker, retained=False)
        probe.publish(marker, b"end")  # one client's messages arrive in order: the marker comes last
        stale = set()
        while (message := probe.expect()).topic != marker:
            if message.retain and message.payload:
                stale.add(message.topic)
        for name in sorted(stale):
            probe.publish(name, b"", retain=True)  # an empty retained message clears it
