"""Rendering of mosquitto.conf and the ACL (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest

from luciole.broker_config import BrokerAccount, Role, TlsFiles, render_acl, render_mosquitto_conf
from wire.topics import TopicError

CONF = dict(bind="127.0.0.1", port=1883, data_dir=Path("/d"), password_file=Path("/p"),
            acl_file=Path("/a"), log_file=Path("/l"), max_queued_messages=1000,
            max_inflight_messages=100, run_as_root=False)


def test_device_acl_lists_exactly_its_own_topics() -> None:
    acl = render_acl([BrokerAccount("ctl-1", Role.DEVICE, "ixelles", "ctl-1")])
    assert acl.split("user ctl-1\n")[1].strip().splitlines() == [
        "topic write luciole/v1/ixelles/ctl-1/telemetry",
        "topic write luciole/v1/ixelles/ctl-1/event",
        "topic write luciole/v1/ixelles/ctl-1/state",
        "topic write luciole/v1/ixelles/ctl-1/ack",
        "topic read luciole/v1/ixelles/ctl-1/cmd",
        "topic read luciole/v1/ixelles/ctl-1/config",
    ]


def test_service_acl_covers_the_tree() -> None:
    assert "user ingest\ntopic readwrite luciole/#" in render_acl([BrokerAccount("ingest", Role.SERVICE)])


@pytest.mark.parametrize("bad", ["a/b", "+", "#", "", "x" * 65, "ctl 1"])
def test_accounts_with_unsafe_names_are_refused(bad: str) -> None:
    with pytest.raises(TopicError):
        BrokerAccount("ctl-1", Role.DEVICE, "ixelles", bad)


def test_device_account_needs_its_topics() -> None:
    with pytest.raises(ValueError, match="tenant and controller"):
        BrokerAccount("ctl-1", Role.DEVICE)


def test_conf_refuses_anonymous_and_keeps_queues_finite() -> None:
    conf = render_mosquitto_conf(**CONF)
    assert "allow_anonymous false" in conf
    assert "max_queued_messages 1000" in conf
    assert "persistence true" in conf
    assert "listener 1883 127.0.0.1" in conf
    with pytest.raises(ValueError, match="finite"):
        render_mosquitto_conf(**{**CONF, "max_queued_messages": 0})


def test_tls_listener_needs_its_files() -> None:
    with pytest.raises(ValueError, match="certificate"):
        render_mosquitto_conf(**CONF, tls_port=8883)
    conf = render_mosquitto_conf(**CONF, tls_port=8883,
                                 tls=TlsFiles(Path("/ca"), Path("/crt"), Path("/key"), True))
    assert "listener 8883 127.0.0.1\ncafile /ca\ncertfile /crt\nkeyfile /key" in conf
    assert "require_certificate true" in conf
