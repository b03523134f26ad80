"""Accounts on the running broker, managed over MQTT ($CONTROL/dynamic-security/v1) by the admin.

Only the launcher and the command line hold the admin's credentials; the API will use the same
commands to add a controller's account without writing broker files.
"""

from __future__ import annotations

import json
import queue
import threading
import uuid
from types import TracebackType
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from luciole.broker_config import (
    CONTROL_TOPIC,
    BrokerAccount,
    Role,
    device_account_of_role,
    missing_device_acls,
    role_acls,
)

ACL_EXISTS = "ACL with this topic already exists"


class BrokerAdminError(RuntimeError):
    """The broker refused the admin, or a $CONTROL command failed (the message says which)."""


class BrokerAdmin:
    """A short-lived admin connection: `with BrokerAdmin(...) as admin: admin.ensure_account()`."""

    def __init__(self, host: str, port: int, username: str, password: str,
                 timeout_s: float = 15.0) -> None:
        self.host, self.port, self.timeout_s = host, port, timeout_s
        self._responses: queue.Queue[bytes] = queue.Queue()
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self._refused: ReasonCode | None = None
        self._lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5,
                                  client_id=f"luciole-admin-{uuid.uuid4().hex[:8]}")
        self.client.username_pw_set(username, password)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = lambda c, u, m: self._responses.put(bytes(m.payload))

    def _on_connect(self, client: mqtt.Client, userdata: object, flags: object,
                    reason: ReasonCode, props: Properties | None) -> None:
        if reason.is_failure:
            self._refused = reason
        else:
            client.subscribe(f"{CONTROL_TOPIC}/response", qos=1)
        self._connected.set()

    def _on_subscribe(self, client: mqtt.Client, userdata: object, mid: int,
                      codes: list[ReasonCode], props: Properties | None) -> None:
        if any(code.is_failure for code in codes):
            self._refused = codes[0]
        self._subscribed.set()

    def __enter__(self) -> BrokerAdmin:
        try:
            self.client.connect(self.host, self.port, keepalive=30)
        except OSError as exc:
            raise BrokerAdminError(f"broker {self.host}:{self.port} unreachable: {exc}") from exc
        self.client.loop_start()
        if not self._connected.wait(self.timeout_s) or not (
                self._refused is not None or self._subscribed.wait(self.timeout_s)):
            self.close()
            raise BrokerAdminError("no answer from the broker's dynamic-security plugin")
        if self._refused is not None:
            self.close()
            raise BrokerAdminError(f"broker refused the admin: {self._refused}")
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def run(self, commands: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Send commands in one message; return the plugin's responses, in order."""
        with self._lock:
            info = self.client.publish(CONTROL_TOPIC, json.dumps({"commands": commands}), qos=1)
            info.wait_for_publish(self.timeout_s)
            try:
                raw = self._responses.get(timeout=self.timeout_s)
            except queue.Empty:
                raise BrokerAdminError("no response from the dynamic-security plugin") from None
        responses: list[dict[str, Any]] = json.loads(raw)["responses"]
        return responses

    def checked(self, commands: list[dict[str, Any]], tolerated: tuple[str, ...] = ()) -> None:
        for response in self.run(commands):
            error = response.get("error")
            if error and error not in tolerated:
                raise BrokerAdminError(f"{response.get('command')}: {error}")

    def ensure_account(self, account: BrokerAccount, password: str) -> None:
        """Create the account (and a device's own role), or reset its password, client id and
        role. A role held by a client is never deleted: Mosquitto 2.0.11's plugin was seen to
        crash later when that happened."""
        if account.role is Role.DEVICE:
            acls = role_acls(account)
            error = self.run([{"command": "createRole", "rolename": account.rolename,
                               "acls": acls}])[0].get("error")
            if error == "Role already exists":  # re-provisioned: give it what it lacks
                found = self.run([{"command": "getRole", "rolename": account.rolename}])[0]
                owner = device_account_of_role(found.get("data", {}).get("role", {}))
                if owner is None or (owner.tenant, owner.controller) != (account.tenant,
                                                                         account.controller):
                    # role names join tenant and controller with '-', which both may contain
                    raise BrokerAdminError(f"role {account.rolename} belongs to another controller "
                                           f"({owner.tenant if owner else '?'}/"
                                           f"{owner.controller if owner else '?'})")
                self.checked([_add_acl(account.rolename, acl) for acl in acls],
                             tolerated=(ACL_EXISTS,))
            elif error:
                raise BrokerAdminError(f"createRole {account.rolename}: {error}")
        client: dict[str, Any] = {"command": "createClient", "username": account.username,
                                  "password": password,
                                  "roles": [{"rolename": account.rolename}]}
        if account.client_id is not None:
            client["clientid"] = account.client_id
        error = self.run([client])[0].get("error")
        if error is None:
            return
        if error != "Client already exists":
            raise BrokerAdminError(f"createClient {account.username}: {error}")
        commands: list[dict[str, Any]] = [
            {"command": "setClientPassword", "username": account.username, "password": password}]
        if account.client_id is not None:
            commands.append({"command": "setClientId", "username": account.username,
                             "clientid": account.client_id})
        found = self.run([{"command": "getClient", "username": account.username}])[0]
        held = {r["rolename"] for r in found.get("data", {}).get("client", {}).get("roles", [])}
        if account.rolename not in held:
            commands.append({"command": "addClientRole", "username": account.username,
                             "rolename": account.rolename})
        for stale in held - {account.rolename}:
            commands.append({"command": "removeClientRole", "username": account.username,
                             "rolename": stale})
        self.checked(commands)

    def upgrade_device_roles(self) -> int:
        """Give every device role the ACLs today's device role has (controllers provisioned before
        receipts lack their receipt topic). Returns the number of roles upgraded."""
        found = self.run([{"command": "listRoles", "verbose": True}])[0]
        if found.get("error"):
            raise BrokerAdminError(f"listRoles: {found['error']}")
        upgraded = 0
        for role in found.get("data", {}).get("roles", []):
            missing = missing_device_acls(role)
            if missing:
                self.checked([_add_acl(role["rolename"], acl) for acl in missing],
                             tolerated=(ACL_EXISTS,))
                upgraded += 1
        return upgraded

    def delete_account(self, account: BrokerAccount) -> None:
        self.checked([{"command": "deleteClient", "username": account.username}],
                      tolerated=("Client not found",))
        if account.role is Role.DEVICE:
            self.checked([{"command": "deleteRole", "rolename": account.rolename}],
                         tolerated=("Role not found",))

    def create_role(self, rolename: str, acls: list[dict[str, Any]]) -> None:
        self.checked([{"command": "createRole", "rolename": rolename, "acls": acls}],
                     tolerated=("Role already exists",))

    def create_client(self, username: str, password: str, rolename: str,
                      client_id: str | None = None) -> None:
        """A client with any role (tests use it for observer accounts)."""
        command: dict[str, Any] = {"command": "createClient", "username": username,
                                   "password": password, "roles": [{"rolename": rolename}]}
        if client_id is not None:
            command["clientid"] = client_id
        self.checked([command], tolerated=("Client already exists",))


def _add_acl(rolename: str, acl: dict[str, Any]) -> dict[str, Any]:
    return {"command": "addRoleACL", "rolename": rolename, **acl}
