"""Controllers provisioned before receipts existed hold broker roles without their receipt topic;
`luciole stack up` brings every device role up to date, on a running broker and on a restarted one,
so their agents receive what ingest stored."""

from __future__ import annotations

import json
import uuid

import pytest

from luciole.broker_admin import BrokerAdminError
from luciole.broker_config import BrokerAccount, Role, new_secret, role_acls
from luciole.stack import Stack
from tests.conftest import RunningStack
from tests.mqtt_probe import Probe
from wire.topics import Kind, topic

pytestmark = pytest.mark.integration

TENANT = "etterbeek"


def _provision_before_receipts(stack: Stack, controller: str) -> str:
    """A device account whose role has the ACLs of the days before receipts."""
    account = BrokerAccount(controller, Role.DEVICE, TENANT, controller)
    old = [a for a in role_acls(account) if not a["topic"].endswith(f"/{Kind.RECEIPT.value}")]
    password = new_secret()
    with stack.broker_admin() as admin:
        admin.create_role(account.rolename, old)
        admin.create_client(controller, password, account.rolename, client_id=controller)
    return password


def _reads_its_receipts(stack: Stack, controller: str, password: str) -> bool:
    e = stack.endpoints()
    with Probe(e.mqtt_host, e.mqtt_port, controller, password, client_id=controller) as probe:
        assert probe.accepted
        codes = probe.subscribe(topic(TENANT, controller, Kind.RECEIPT), retained=False)
        return not codes[0].is_failure


def test_stack_up_upgrades_old_device_roles_on_a_running_and_a_restarted_broker(
        own_stack: Stack) -> None:
    own_stack.up()
    running, restarted = "ctl-old-running", "ctl-old-restarted"
    passwords = {name: _provision_before_receipts(own_stack, name) for name in (running, restarted)}
    assert not _reads_its_receipts(own_stack, running, passwords[running])  # the old role

    own_stack.up()  # the broker is running: roles are upgraded over $CONTROL
    assert _reads_its_receipts(own_stack, running, passwords[running])
    # and nothing more than its own receipts: the upgrade adds the role's own topics only
    e = own_stack.endpoints()
    with Probe(e.mqtt_host, e.mqtt_port, running, passwords[running], client_id=running) as probe:
        codes = probe.subscribe(topic(TENANT, restarted, Kind.RECEIPT), retained=False)
        assert codes[0].is_failure

    own_stack.down()
    # a role left behind in the plugin's file by an older Luciole: upgraded before the broker starts
    path = own_stack.dynsec_file()
    config = json.loads(path.read_text())
    for role in config["roles"]:
        if role["rolename"] == f"device-{TENANT}-{restarted}":
            role["acls"] = [a for a in role["acls"]
                            if not a["topic"].endswith(f"/{Kind.RECEIPT.value}")]
    path.write_text(json.dumps(config))
    own_stack.up()
    assert _reads_its_receipts(own_stack, restarted, passwords[restarted])


def test_a_device_role_name_shared_by_two_controllers_is_refused(stack: RunningStack) -> None:
    """device-{tenant}-{controller} is ambiguous ('x-y' + 'a-b' and 'x-y-a' + 'b'): the second
    controller must not be given (or add its topics to) the first one's role, in another tenant."""
    suffix = uuid.uuid4().hex[:6]
    first = BrokerAccount(f"a-{suffix}", Role.DEVICE, f"t-{suffix}", f"a-{suffix}")
    second = BrokerAccount(f"{suffix}", Role.DEVICE, f"t-{suffix}-a", f"{suffix}")
    assert first.rolename == second.rolename
    stack.stack.add_broker_account(first, new_secret())
    with pytest.raises(BrokerAdminError, match="belongs to another controller"):
        stack.stack.add_broker_account(second, new_secret())
    with stack.stack.broker_admin() as admin:
        role = admin.run([{"command": "getRole", "rolename": first.rolename}])[0]["data"]["role"]
    assert sorted(a["topic"] for a in role["acls"]) == sorted(a["topic"] for a in role_acls(first))
