"""The composition root's wiring: each service's settings, with its own broker account and
database role, resolved from the local stack. Only the command line (and the demo) call this;
services receive settings objects and never read the stack file."""

from __future__ import annotations

from controller_fw_sim.fleet_cli import FleetTargets
from controller_fw_sim.fleet_publish import MqttTarget
from ingest.settings import IngestSettings
from luciole.broker_config import Role
from luciole.db_roles import DbService
from luciole.stack import Stack

FLEET_COMMANDS_ACCOUNT = "fleet-cmd"


def ingest_account(worker: int) -> str:
    """Worker N logs in as ingest-N, bound to client id ingest-N: workers never knock each
    other off, and no other account can take (or wipe) a worker's session."""
    if worker < 1:
        raise ValueError("ingest workers are numbered from 1")
    return f"ingest-{worker}"


def ingest_settings(stack: Stack, worker: int,
                    base: IngestSettings | None = None) -> IngestSettings:
    """Worker `worker`'s settings: what the environment sets wins; the broker account, database
    role and endpoints it leaves unset come from the local stack."""
    base = base if base is not None else IngestSettings()
    endpoints = stack.endpoints()
    update: dict[str, object] = {}
    if base.mqtt_username is None:
        username, password = stack.service_account(ingest_account(worker), Role.INGEST)
        update.update(mqtt_username=username, mqtt_password=password, client_id=username)
    if base.mqtt_host is None:
        update["mqtt_host"] = endpoints.mqtt_host
    if base.mqtt_port is None:
        update["mqtt_port"] = endpoints.mqtt_port
    if base.dsn is None:
        update["dsn"] = endpoints.service_dsn(DbService.INGEST)
    # validated again: a SecretStr field gets its type back
    return IngestSettings.model_validate({**base.model_dump(), **update})


def fleet_targets(stack: Stack, publishers: int) -> FleetTargets:
    """One account per publisher process (fleet-1..N) and one for the command link: the broker
    binds each account to one client id and has no client-id prefixes, so a fleet of N
    publisher processes is N accounts of the one `fleet` role."""
    endpoints = stack.endpoints()

    def target(username: str) -> MqttTarget:
        name, password = stack.service_account(username, Role.FLEET)
        return MqttTarget(endpoints.mqtt_host, endpoints.mqtt_port, name, password, client_id=name)

    return FleetTargets([target(f"fleet-{w + 1}") for w in range(publishers)],
                        target(FLEET_COMMANDS_ACCOUNT))
