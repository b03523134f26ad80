"""Rendering of mosquitto.conf and of the dynamic-security accounts and roles (pure)."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

import pytest

from luciole.broker_config import (
    MIN_DEVICE_SECRET_BITS,
    BrokerAccount,
    Role,
    TlsFiles,
    hash_password,
    missing_device_acls,
    new_secret,
    refresh_roles,
    render_dynsec_config,
    render_mosquitto_conf,
    role_acls,
    role_of,
)
from wire.topics import TopicError

CONF: dict[str, Any] = dict(port=1883, data_dir=Path("/d"), dynsec_file=Path("/s.json"),
                            log_file=Path("/l"), max_queued_messages=1000,
                            max_inflight_messages=100)


def _acls(account: BrokerAccount) -> list[tuple[str, str]]:
    return [(a["acltype"], a["topic"]) for a in role_acls(account)]


def test_device_role_lists_exactly_its_own_topics() -> None:
    assert _acls(BrokerAccount("ctl-1", Role.DEVICE, "ixelles", "ctl-1")) == [
        ("publishClientSend", "luciole/v1/ixelles/ctl-1/telemetry"),
        ("publishClientSend", "luciole/v1/ixelles/ctl-1/event"),
        ("publishClientSend", "luciole/v1/ixelles/ctl-1/state"),
        ("publishClientSend", "luciole/v1/ixelles/ctl-1/ack"),
        ("subscribeLiteral", "luciole/v1/ixelles/ctl-1/cmd"),
        ("publishClientReceive", "luciole/v1/ixelles/ctl-1/cmd"),
        ("subscribeLiteral", "luciole/v1/ixelles/ctl-1/config"),
        ("publishClientReceive", "luciole/v1/ixelles/ctl-1/config"),
        ("subscribeLiteral", "luciole/v1/ixelles/ctl-1/receipt"),
        ("publishClientReceive", "luciole/v1/ixelles/ctl-1/receipt"),
    ]


def test_ingest_reads_through_its_shared_group_and_publishes_receipts_only() -> None:
    acls = _acls(BrokerAccount("ingest-1", Role.INGEST))
    assert ("subscribePattern", "$share/ingest/luciole/v1/+/+/telemetry") in acls
    reads = [(k, t) for k, t in acls if k != "publishClientSend"]
    assert {kind for kind, _ in reads} == {"subscribePattern", "publishClientReceive"}
    assert {t.rsplit("/", 1)[1] for _, t in reads} == {"telemetry", "event", "state", "ack"}
    assert [(k, t) for k, t in acls if k == "publishClientSend"] == [
        ("publishClientSend", "luciole/v1/+/+/receipt")]


def test_api_publishes_commands_and_config_only() -> None:
    assert _acls(BrokerAccount("api", Role.API)) == [
        ("publishClientSend", "luciole/v1/+/+/cmd"), ("publishClientSend", "luciole/v1/+/+/config")]


def test_every_account_but_the_admin_is_bound_to_one_client_id() -> None:
    assert BrokerAccount("ctl-1", Role.DEVICE, "ixelles", "ctl-1").client_id == "ctl-1"
    assert BrokerAccount("ingest-2", Role.INGEST).client_id == "ingest-2"
    assert BrokerAccount("fleet-3", Role.FLEET).client_id == "fleet-3"
    assert BrokerAccount("luciole-admin", Role.ADMIN).client_id is None
    config = render_dynsec_config([(BrokerAccount("ingest-2", Role.INGEST), hash_password("x"))])
    assert config["clients"][0]["clientid"] == "ingest-2"
    assert config["defaultACLAccess"] == {"publishClientSend": False, "publishClientReceive": False,
                                          "subscribe": False, "unsubscribe": True}


def test_password_hash_is_pbkdf2_sha512_as_mosquitto_checks_it() -> None:
    h = hash_password("s3cret", iterations=101, salt=b"0123456789ab")
    expected = hashlib.pbkdf2_hmac("sha512", b"s3cret", b"0123456789ab", 101, 64)
    assert base64.b64decode(h.password) == expected
    assert base64.b64decode(h.salt) == b"0123456789ab" and h.iterations == 101


def test_generated_secrets_carry_at_least_128_bits() -> None:
    secrets_ = {new_secret() for _ in range(1000)}
    assert len(secrets_) == 1000
    # URL-safe base64: 6 bits a character
    assert min(len(s) for s in secrets_) * 6 >= 2 * MIN_DEVICE_SECRET_BITS


def test_refresh_keeps_device_roles_and_rewrites_service_roles() -> None:
    device = BrokerAccount("ctl-1", Role.DEVICE, "ixelles", "ctl-1")
    config = render_dynsec_config([(device, hash_password("x"))])
    config["roles"] = [r if r["rolename"] != "ingest" else {"rolename": "ingest", "acls": []}
                       for r in config["roles"]]
    refreshed = refresh_roles(config)
    roles = {r["rolename"]: r for r in refreshed["roles"]}
    assert roles["ingest"]["acls"] == role_acls(BrokerAccount("ingest-1", Role.INGEST))
    assert roles["device-ixelles-ctl-1"]["acls"] == role_acls(device)
    assert refreshed["clients"] == config["clients"]


@pytest.mark.parametrize("bad", ["a/b", "+", "#", "", "x" * 65, "ctl 1"])
def test_accounts_with_unsafe_names_are_refused(bad: str) -> None:
    with pytest.raises(TopicError):
        BrokerAccount("ctl-1", Role.DEVICE, "ixelles", bad)


def test_device_account_needs_its_topics() -> None:
    with pytest.raises(ValueError, match="tenant and controller"):
        BrokerAccount("ctl-1", Role.DEVICE)


def test_conf_refuses_anonymous_runs_unprivileged_and_keeps_queues_finite() -> None:
    conf = render_mosquitto_conf(**CONF)
    assert "allow_anonymous false" in conf
    assert "user mosquitto" in conf.splitlines()
    assert "user root" not in conf
    assert "plugin_opt_config_file /s.json" in conf
    assert "password_file" not in conf and "acl_file" not in conf
    assert "max_queued_messages 1000" in conf
    assert "persistence true" in conf
    assert "listener 1883 127.0.0.1" in conf
    with pytest.raises(ValueError, match="finite"):
        render_mosquitto_conf(**{**CONF, "max_queued_messages": 0})


def test_tls_listener_for_devices_plaintext_stays_on_loopback() -> None:
    with pytest.raises(ValueError, match="certificate"):
        render_mosquitto_conf(**CONF, tls_port=8883)
    conf = render_mosquitto_conf(**CONF, tls_port=8883, tls_bind="0.0.0.0",
                                 tls=TlsFiles(Path("/ca"), Path("/crt"), Path("/key"), True))
    assert "listener 1883 127.0.0.1" in conf
    assert "listener 8883 0.0.0.0\ncafile /ca\ncertfile /crt\nkeyfile /key" in conf
    assert "require_certificate true" in conf


def _without_receipts(role: dict) -> dict:
    return {**role, "acls": [a for a in role["acls"] if not a["topic"].endswith("/receipt")]}


def test_refresh_upgrades_device_roles_made_before_receipts() -> None:
    """Each device role gets the ACLs of today's device role for its own topics, read from the
    role's own ACLs (identifiers may contain '-', so the role name alone is ambiguous)."""
    devices = [BrokerAccount("a-b", Role.DEVICE, "x-y", "a-b"),
               BrokerAccount("c", Role.DEVICE, "x-y-z", "c")]
    config = render_dynsec_config([(d, hash_password("x")) for d in devices])
    config["roles"] = [_without_receipts(r) if r["rolename"].startswith("device-") else r
                       for r in config["roles"]]
    foreign = {"rolename": "device-someone-else", "acls": []}  # no topic of its own: left as is
    config["roles"].append(foreign)
    refreshed = {r["rolename"]: r for r in refresh_roles(config)["roles"]}
    for d in devices:
        assert sorted(map(str, refreshed[d.rolename]["acls"])) == sorted(map(str, role_acls(d)))
    assert refreshed["device-someone-else"] == foreign


@pytest.mark.parametrize(("acls", "missing"), [
    ("all", 0), ("without receipts", 2), ("telemetry only", 9)])
def test_missing_device_acls(acls: str, missing: int) -> None:
    d = BrokerAccount("c", Role.DEVICE, "t", "c")
    full = role_of(d)
    role = {"all": full, "without receipts": _without_receipts(full),
            "telemetry only": {**full, "acls": full["acls"][:1]}}[acls]
    assert len(missing_device_acls(role)) == missing
