"""Mosquitto's configuration and its dynamic-security accounts and roles, rendered from data.

Pure functions: what each account may publish and subscribe to, the password hash Mosquitto's
dynamic-security plugin checks (PBKDF2-SHA512), the plugin's JSON file and mosquitto.conf.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from wire.topics import (
    INGEST_SHARE_GROUP,
    Kind,
    TopicError,
    parse_topic,
    subscription,
    topic,
    validate_identifier,
)

# What a controller may do on its own topics, and nothing else.
DEVICE_PUBLISHES = (Kind.TELEMETRY, Kind.EVENT, Kind.STATE, Kind.ACK)
DEVICE_SUBSCRIBES = (Kind.CMD, Kind.CONFIG, Kind.RECEIPT)
# Ingest reads what controllers send and publishes nothing but receipts (end-to-end
# confirmation); the API sends what controllers obey.
INGEST_READS = (Kind.TELEMETRY, Kind.EVENT, Kind.STATE, Kind.ACK)
INGEST_PUBLISHES = (Kind.RECEIPT,)
API_PUBLISHES = (Kind.CMD, Kind.CONFIG)

CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
DYNSEC_PLUGIN = Path("/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so")

# PBKDF2-SHA512 rounds: the dynamic-security plugin's own default (Mosquitto 2.0), used for the
# accounts it creates over $CONTROL as for those written here. Device secrets carry 128 bits or
# more of randomness, so a higher cost buys nothing against guessing and would slow the whole
# city reconnecting at dusk (bench/broker_auth.py measures it).
HASH_ITERATIONS = 101
SALT_BYTES = 12
# Every generated broker or database secret: 32 bytes from the OS CSPRNG (256 bits).
SECRET_BYTES = 32
MIN_DEVICE_SECRET_BITS = 128


def new_secret() -> str:
    """A fresh secret of SECRET_BYTES random bytes, URL-safe text (43 characters)."""
    return secrets.token_urlsafe(SECRET_BYTES)


@dataclass(frozen=True)
class TlsFiles:
    """Certificate files of the broker's TLS listener (PEM)."""

    cafile: Path
    certfile: Path
    keyfile: Path
    require_client_certificate: bool = False


class Role(StrEnum):
    """What an account is for; each has its own dynamic-security role."""

    ADMIN = "admin"  # manages accounts over $CONTROL: the launcher and the command line only
    INGEST = "ingest"  # one account per ingest worker process: reads telemetry, event, state, ack;
    # publishes receipts
    API = "api"  # publishes commands and config
    FLEET = "fleet"  # the fleet simulator: one account per publisher process, plus its cmd reader
    DEVICE = "device"  # one controller: its own topics only


# Roles whose access is the same for every account holding them (one shared dynsec role each).
SERVICE_ROLES = (Role.ADMIN, Role.INGEST, Role.API, Role.FLEET)


@dataclass(frozen=True)
class BrokerAccount:
    username: str
    role: Role
    tenant: str | None = None
    controller: str | None = None

    def __post_init__(self) -> None:
        validate_identifier(self.username, "username")
        if self.role is Role.DEVICE:
            if self.tenant is None or self.controller is None:
                raise ValueError("a device account needs its tenant and controller")
            validate_identifier(self.tenant, "tenant")
            validate_identifier(self.controller, "controller")

    @property
    def client_id(self) -> str | None:
        """The only MQTT client id this account may connect with (None: any, the admin only).

        A controller connects as its controller id, a service process as its account name, so
        no account can take over (and wipe the session of) another client's id."""
        if self.role is Role.ADMIN:
            return None
        if self.role is Role.DEVICE:
            return self.controller
        return self.username

    @property
    def rolename(self) -> str:
        if self.role is Role.DEVICE:  # a controller moved to another tenant gets a new role
            return f"device-{self.tenant}-{self.controller}"
        return self.role.value


def _acl(acltype: str, topic_filter: str) -> dict[str, Any]:
    return {"acltype": acltype, "topic": topic_filter, "priority": 0, "allow": True}


def role_acls(account: BrokerAccount) -> list[dict[str, Any]]:
    """The dynamic-security ACLs of an account's role. Everything not listed is denied."""
    acls: list[dict[str, Any]] = []
    if account.role is Role.DEVICE:
        assert account.tenant is not None and account.controller is not None
        for kind in DEVICE_PUBLISHES:
            acls.append(_acl("publishClientSend", topic(account.tenant, account.controller, kind)))
        for kind in DEVICE_SUBSCRIBES:
            own = topic(account.tenant, account.controller, kind)
            acls.append(_acl("subscribeLiteral", own))  # exactly this topic: no wildcard, no $share
            acls.append(_acl("publishClientReceive", own))
    elif account.role is Role.ADMIN:
        acls += [_acl("publishClientSend", CONTROL_TOPIC),
                 _acl("subscribeLiteral", f"{CONTROL_TOPIC}/response"),
                 _acl("publishClientReceive", f"{CONTROL_TOPIC}/response")]
    elif account.role is Role.INGEST:
        for kind in INGEST_READS:
            # only through ingest's own shared group: a plain subscription is refused too
            shared = f"$share/{INGEST_SHARE_GROUP}/{subscription(kind)}"
            acls.append(_acl("subscribePattern", shared))
            acls.append(_acl("publishClientReceive", subscription(kind)))
        for kind in INGEST_PUBLISHES:
            acls.append(_acl("publishClientSend", subscription(kind)))
    elif account.role is Role.API:
        for kind in API_PUBLISHES:
            acls.append(_acl("publishClientSend", subscription(kind)))
    elif account.role is Role.FLEET:
        for kind in DEVICE_PUBLISHES:
            acls.append(_acl("publishClientSend", subscription(kind)))
        for kind in DEVICE_SUBSCRIBES:
            acls.append(_acl("subscribePattern", subscription(kind)))
            acls.append(_acl("publishClientReceive", subscription(kind)))
    return acls


def role_of(account: BrokerAccount) -> dict[str, Any]:
    return {"rolename": account.rolename, "acls": role_acls(account)}


def service_roles() -> list[dict[str, Any]]:
    """The shared roles of the admin and the services (a placeholder account names each)."""
    return [role_of(BrokerAccount(f"x-{role.value}", role)) for role in SERVICE_ROLES]


@dataclass(frozen=True)
class PasswordHash:
    """A password as the dynamic-security plugin stores it (base64 fields)."""

    password: str
    salt: str
    iterations: int


def hash_password(password: str, iterations: int = HASH_ITERATIONS,
                  salt: bytes | None = None) -> PasswordHash:
    """PBKDF2-HMAC-SHA512 of `password`, in the plugin's format; computed in this process, so
    the password never appears on a command line."""
    salt = salt if salt is not None else secrets.token_bytes(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, 64)
    return PasswordHash(base64.b64encode(digest).decode(), base64.b64encode(salt).decode(),
                        iterations)


def dynsec_client(account: BrokerAccount, password: PasswordHash) -> dict[str, Any]:
    client: dict[str, Any] = {
        "username": account.username,
        "roles": [{"rolename": account.rolename}],
        "password": password.password,
        "salt": password.salt,
        "iterations": password.iterations,
    }
    if account.client_id is not None:
        client["clientid"] = account.client_id
    return client


DEFAULT_ACL_ACCESS = {
    "publishClientSend": False,
    "publishClientReceive": False,
    "subscribe": False,
    "unsubscribe": True,
}


def render_dynsec_config(accounts: list[tuple[BrokerAccount, PasswordHash]]) -> dict[str, Any]:
    """The plugin's JSON file: deny by default, the service roles, one role per device."""
    roles = service_roles()
    roles += [role_of(a) for a, _ in accounts if a.role is Role.DEVICE]
    return {
        "defaultACLAccess": dict(DEFAULT_ACL_ACCESS),
        "clients": [dynsec_client(a, h) for a, h in accounts],
        "groups": [],
        "roles": roles,
    }


def device_account_of_role(role: dict[str, Any]) -> BrokerAccount | None:
    """The device account a role was made for, read from the role's own topics (identifiers may
    hold '-', so the role name alone is ambiguous); None for any other role."""
    name = role.get("rolename", "")
    if not name.startswith("device-"):
        return None
    for acl in role.get("acls", []):
        try:
            parts = parse_topic(acl.get("topic", ""))
        except TopicError:
            continue
        account = BrokerAccount(parts.controller, Role.DEVICE, parts.tenant, parts.controller)
        if account.rolename == name:
            return account
    return None


def missing_device_acls(role: dict[str, Any]) -> list[dict[str, Any]]:
    """The ACLs today's device role has and this (older) device role lacks: e.g. the receipt
    topic of a controller provisioned before receipts existed. Only its own topics."""
    account = device_account_of_role(role)
    if account is None:
        return []
    held = {(a.get("acltype"), a.get("topic")) for a in role.get("acls", [])}
    return [a for a in role_acls(account) if (a["acltype"], a["topic"]) not in held]


def refresh_roles(config: dict[str, Any]) -> dict[str, Any]:
    """The same file with today's default access and service roles, and each device role given
    the ACLs it lacks (an upgrade adds; what a device role holds is kept)."""
    current = {r["rolename"]: r for r in service_roles()}
    kept = []
    for role in config.get("roles", []):
        if role.get("rolename") in current:
            continue
        missing = missing_device_acls(role)
        kept.append({**role, "acls": [*role.get("acls", []), *missing]} if missing else role)
    return {**config, "defaultACLAccess": dict(DEFAULT_ACL_ACCESS),
            "roles": list(current.values()) + kept}


def render_mosquitto_conf(
    *,
    port: int,
    data_dir: Path,
    dynsec_file: Path,
    log_file: Path,
    max_queued_messages: int,
    max_inflight_messages: int,
    plugin: Path = DYNSEC_PLUGIN,
    tls_port: int | None = None,
    tls_bind: str = "127.0.0.1",
    tls: TlsFiles | None = None,
) -> str:
    """mosquitto.conf: the plaintext listener on loopback only (local services), an optional TLS
    listener on `tls_bind` (devices), every account and ACL in the dynamic-security plugin."""
    if max_queued_messages <= 0:
        raise ValueError("max_queued_messages must be a large finite number (0 misbehaves)")
    lines = [
        "# generated by luciole; edits are overwritten",
        "per_listener_settings false",
        "allow_anonymous false",
        f"plugin {plugin}",
        f"plugin_opt_config_file {dynsec_file}",
        "persistence true",
        f"persistence_location {data_dir}/",
        "autosave_interval 30",
        f"max_queued_messages {max_queued_messages}",
        "max_queued_bytes 0",
        f"max_inflight_messages {max_inflight_messages}",
        "max_packet_size 1048576",
        "persistent_client_expiration 14d",
        f"log_dest file {log_file}",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "connection_messages true",
        "log_timestamp_format %Y-%m-%dT%H:%M:%S",
        # started as root, Mosquitto drops to this user before it opens any file
        "user mosquitto",
        f"listener {port} 127.0.0.1",
    ]
    if tls_port is not None:
        if tls is None:
            raise ValueError("a TLS listener needs its certificate files")
        lines += [
            f"listener {tls_port} {tls_bind}",
            f"cafile {tls.cafile}",
            f"certfile {tls.certfile}",
            f"keyfile {tls.keyfile}",
            "tls_version tlsv1.2",
        ]
        if tls.require_client_certificate:
            lines.append("require_certificate true")
    return "\n".join(lines) + "\n"
