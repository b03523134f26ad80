"""The composition root's wiring: each service's settings, with its own broker account and
database role, resolved from the local stack. Only the command line (and the demo) call this;
services receive settings objects and never read the stack file."""

from __future__ import annotations

from api.settings import ApiSettings
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


class BrokerDeviceAccounts:
    """Controllers' broker accounts through the dynamic-security plugin (api.provisioning's
    DeviceAccounts): the API holds this object, not the broker admin's module."""

    def __init__(self, host: str, port: int, username: str, password: str) -> None:
        self.host, self.port, self.username, self.password = host, port, username, password

    def create(self, tenant: str, controller: str, password: str) -> None:
        from api.provisioning import DeviceAccountError
        from luciole.broker_admin import BrokerAdmin, BrokerAdminError
        from luciole.broker_config import BrokerAccount

        try:
            with BrokerAdmin(self.host, self.port, self.username, self.password) as admin:
                admin.ensure_account(BrokerAccount(controller, Role.DEVICE, tenant, controller),
                                     password)
        except BrokerAdminError as exc:
            raise DeviceAccountError(str(exc)) from exc


def api_environment(stack: Stack, base: ApiSettings | None = None) -> dict[str, str]:
    """The API workers' settings as LUCIOLE_API_* variables (uvicorn starts each worker afresh):
    what the environment sets wins; one broker account per worker (api-1..N), the luciole_api
    role, a token signing secret kept in the stack's directory (mode 0600), the workers'
    account locks in that directory too, and the broker admin
    for controllers' accounts (LUCIOLE_BROKER_ADMIN_*)."""
    import json
    import secrets

    base = base if base is not None else ApiSettings()
    endpoints = stack.endpoints()
    env: dict[str, str] = {}
    if not base.broker_accounts():
        accounts = [stack.service_account(f"api-{n + 1}", Role.API) for n in range(base.workers)]
        env["LUCIOLE_API_MQTT_ACCOUNTS"] = json.dumps(
            [{"username": u, "password": p} for u, p in accounts])
    if base.mqtt_host is None:
        env["LUCIOLE_API_MQTT_HOST"] = endpoints.mqtt_host
    if base.mqtt_port is None:
        env["LUCIOLE_API_MQTT_PORT"] = str(endpoints.mqtt_port)
    if base.dsn is None:
        env["LUCIOLE_API_DSN"] = endpoints.service_dsn(DbService.API)
    if base.token_secret is None:
        secret_file = stack.var / "api-token.secret"
        if not secret_file.exists():
            secret_file.touch(mode=0o600)
            secret_file.write_text(secrets.token_urlsafe(48))
        env["LUCIOLE_API_TOKEN_SECRET"] = secret_file.read_text().strip()
    if base.run_dir is None:  # the workers' account locks, per stack (not one /tmp for all)
        env["LUCIOLE_API_RUN_DIR"] = str(stack.var / "api-run")
    if base.device_mqtt_port is None and endpoints.mqtt_tls_port:
        env["LUCIOLE_API_DEVICE_MQTT_PORT"] = str(endpoints.mqtt_tls_port)
        env["LUCIOLE_API_DEVICE_MQTT_TLS"] = "true"
        if endpoints.mqtt_ca_file:
            env["LUCIOLE_API_DEVICE_CA_FILE"] = endpoints.mqtt_ca_file
    env.update({"LUCIOLE_BROKER_ADMIN_HOST": endpoints.mqtt_host,
                "LUCIOLE_BROKER_ADMIN_PORT": str(endpoints.mqtt_port),
                "LUCIOLE_BROKER_ADMIN_USERNAME": endpoints.mqtt_username,
                "LUCIOLE_BROKER_ADMIN_PASSWORD": endpoints.mqtt_password})
    return env
