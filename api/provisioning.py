"""Provisioning a controller by the claim code on its label (the contract of docs/provisioning.md):
the controller becomes active and gets a broker account of its own, its password shown once."""

from __future__ import annotations

import asyncio
import logging
import secrets
from pathlib import Path
from typing import Annotated, Protocol

from psycopg.types.json import Jsonb
from pydantic import BaseModel, ConfigDict, Field

from api.credentials import claim_code_hash
from api.deps import Conn
from api.problems import Problem
from api.settings import ApiSettings
from wire.messages import ControllerConfig, Text

log = logging.getLogger(__name__)


class DeviceAccounts(Protocol):
    """Creates (or resets) a controller's own broker account; the composition root hands the app
    one backed by the broker's dynamic-security plugin."""

    def create(self, tenant: str, controller: str, password: str) -> None: ...


class DeviceAccountError(RuntimeError):
    """The broker did not create the account; provisioning can be tried again."""


class ProvisionRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    claim_code: Annotated[Text, Field(min_length=4, max_length=64)]
    controller_id: Annotated[Text, Field(max_length=64)] | None = None
    pole_id: Annotated[Text, Field(min_length=1, max_length=64)]
    lat: Annotated[float, Field(ge=-90, le=90)]
    lon: Annotated[float, Field(ge=-180, le=180)]
    luminaire_model: Annotated[Text, Field(min_length=1, max_length=128)]
    cabinet_id: Annotated[Text, Field(min_length=1, max_length=64)]


class MqttCredentials(BaseModel):
    host: str
    port: int
    username: str
    password: str
    tls: bool
    ca_pem: str | None


class ProvisionResponse(BaseModel):
    controller_id: str
    tenant: str
    mqtt: MqttCredentials
    config: ControllerConfig


UNKNOWN = "unknown or already used claim code"


async def provision(conn: Conn, settings: ApiSettings, accounts: DeviceAccounts | None,
                    request: ProvisionRequest, remote: str) -> ProvisionResponse:
    row = await (await conn.execute(
        "SELECT id, tenant_id FROM controllers WHERE claim_code_hash = %s AND status = 'unprovisioned'"
        " FOR UPDATE", (claim_code_hash(request.claim_code),))).fetchone()
    if row is None:
        raise Problem(403, UNKNOWN)
    controller_id, tenant = str(row[0]), str(row[1])
    taken = await (await conn.execute(
        "SELECT id FROM controllers WHERE tenant_id = %s AND pole_id = %s AND status = 'active'"
        " AND id <> %s", (tenant, request.pole_id, controller_id))).fetchone()
    if taken is not None:
        raise Problem(409, f"pole {request.pole_id} is already provisioned (controller {taken[0]})")
    cabinet = await (await conn.execute("SELECT 1 FROM cabinets WHERE tenant_id = %s AND id = %s",
                                        (tenant, request.cabinet_id))).fetchone()
    if cabinet is None:
        raise Problem(422, f"no cabinet {request.cabinet_id!r} in this municipality")
    host = settings.device_mqtt_host or settings.mqtt_host
    port = settings.device_mqtt_port or settings.mqtt_port
    if accounts is None or host is None or port is None:
        raise Problem(503, "this server cannot create broker accounts; ask the operator")
    password = secrets.token_urlsafe(32)
    try:
        await asyncio.to_thread(accounts.create, tenant, controller_id, password)
    except DeviceAccountError as exc:
        log.warning("broker account not created controller=%s error=%s", controller_id, exc)
        raise Problem(503, "the broker did not answer; try again in a minute",
                      headers={"Retry-After": "60"}) from None
    await conn.execute(
        "UPDATE controllers SET status = 'active', claim_code_hash = NULL, pole_id = %s, lat = %s,"
        " lon = %s, cabinet_id = %s WHERE id = %s",
        (request.pole_id, request.lat, request.lon, request.cabinet_id, controller_id))
    await conn.execute("UPDATE luminaires SET model = %s WHERE controller_id = %s AND model IS NULL",
                       (request.luminaire_model, controller_id))
    await conn.execute(
        "INSERT INTO audit_log (tenant_id, action, target, detail, remote) VALUES (%s,"
        " 'controller.provision', %s, %s, %s)",
        (tenant, controller_id, Jsonb({"pole_id": request.pole_id}), remote))
    ca_pem = Path(settings.device_ca_file).read_text() if settings.device_ca_file else None
    return ProvisionResponse(
        controller_id=controller_id, tenant=tenant,
        mqtt=MqttCredentials(host=host, port=port, username=controller_id, password=password,
                             tls=settings.device_mqtt_tls, ca_pem=ca_pem),
        config=ControllerConfig())
