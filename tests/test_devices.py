"""The simulated controllers of the command tests: one left connected takes the session over
from a later device of the same controller id (the cause of a dashboard test's lost command
after the API tests ran); the harness names and closes it."""

from __future__ import annotations

import pytest

from tests.conftest import RunningStack
from tests.devices import Device

pytestmark = pytest.mark.integration


def test_a_device_left_connected_takes_the_session_of_the_next_one(stack: RunningStack) -> None:
    old = Device(stack, "town-dev", "ctl-town-dev-0")
    old.connect(first=True)
    old.disconnect()
    old.connect()  # reconnected at dusk, then forgotten by its test
    new = Device(stack, "town-dev", "ctl-town-dev-0")
    try:
        new.connect(first=True)
        # the broker closes the older connection; paho reconnects it, which closes the newer one...
        assert old.dropped.wait(10) and new.dropped.wait(10)
        with pytest.raises(AssertionError, match="dropped by the broker"):
            new.expect(timeout_s=0.5)
    finally:
        assert sorted(Device.leaked()) == ["ctl-town-dev-0", "ctl-town-dev-0"]
    assert not Device.connected
