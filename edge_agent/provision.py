"""Provisioning a controller on the pole: register, get credentials, commission, check.

The flow is a fixed sequence of checks, each recorded as pass/fail with a detail, so a field
technician sees one clear checklist (rendered with rich): API registration, broker reachable,
DALI gear found (and its D4i inventory), meter read, inventory published, first telemetry
accepted.

The inventory (GTIN, serial and model of each luminaire, from D4i memory bank 1 where the gear has
one, and what each gear implements: device types, memory banks, D4i parts) goes up as one
INVENTORY event per luminaire, under a boot id of its own taken from the agent's state, so a
later re-commissioning (a driver swapped) is a new message, not a replay. When the broker cannot
be reached the events wait in the agent's outbox and the agent sends them on its first
connection.

The central API contract (one endpoint; until the API issue lands, tests use a double of it)::

    POST {api}/api/v1/provision
    Content-Type: application/json
    request:  {"claim_code": str, "controller_id": str | null, "pole_id": str,
               "lat": float, "lon": float, "luminaire_model": str, "cabinet_id": str}
    201/200 response:
              {"controller_id": str, "tenant": str,
               "mqtt": {"host": str, "port": int, "username": str, "password": str,
                        "tls": bool, "ca_pem": str | null},
               "config": ControllerConfig (wire.messages)}
    errors:   4xx/5xx with an RFC 9457 problem document {"title", "detail", "status"};
              401/403 an unknown or used claim code, 409 a pole already provisioned.

Credentials are written only to the agent's config file (mode 0600), never printed.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time as _time
from datetime import UTC, datetime
from pathlib import Path

import aiomqtt
import httpx
import numpy as np
from pydantic import BaseModel, Field, ValidationError
from rich.console import Console
from rich.table import Table

from edge_agent.settings import AgentSettings, write_settings
from edge_agent.state import AgentState
from edge_agent.store_forward import Outbox
from hardware.dali import (
    DaliBus,
    DaliError,
    DaliServerBus,
    GearCapabilities,
    commission,
    probe,
    read_luminaire_info,
)
from hardware.modbus import ModbusDevice, ModbusError, load_profile, tcp_client
from wire.codec import encode_luminaire
from wire.messages import ControllerConfig, Event, EventKind, Severity, dumps
from wire.records import ABSENT_BITS, LEVEL_UNKNOWN, LUMINAIRE_DTYPE
from wire.topics import Kind, topic

log = logging.getLogger(__name__)

PROVISION_PATH = "/api/v1/provision"


class ProvisionError(RuntimeError):
    """Provisioning cannot go on; the text says why."""


class ProvisionRequest(BaseModel):
    claim_code: str = Field(min_length=4, max_length=64)
    controller_id: str | None = None
    pole_id: str = Field(min_length=1, max_length=64)
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    luminaire_model: str = Field(min_length=1, max_length=128)
    cabinet_id: str = Field(min_length=1, max_length=64)


class MqttCredentials(BaseModel):
    host: str
    port: int = Field(ge=1, le=65535)
    username: str
    password: str
    tls: bool = False
    ca_pem: str | None = None


class ProvisionResponse(BaseModel):
    controller_id: str
    tenant: str
    mqtt: MqttCredentials
    config: ControllerConfig


class GearInventory(BaseModel):
    luminaire: int
    short_address: int
    gtin: int | None
    serial: int | None
    model: str | None = None  # bank 1 luminaire identification, else the technician's model
    capabilities: dict[str, str] = Field(default_factory=dict)  # GearCapabilities.detail()


class Check(BaseModel):
    name: str
    ok: bool
    detail: str = ""


class ProvisionResult(BaseModel):
    controller_id: str | None = None
    tenant: str | None = None
    checks: list[Check] = Field(default_factory=list)
    inventory: list[GearInventory] = Field(default_factory=list)
    config_path: Path | None = None
    boot_id: int | None = None  # the commissioning boot: inventory events and first telemetry

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)


async def register(client: httpx.AsyncClient, api_url: str, request: ProvisionRequest) -> ProvisionResponse:
    """POST the claim to the central API; the controller's identity, credentials and config."""
    try:
        response = await client.post(api_url.rstrip("/") + PROVISION_PATH,
                                     json=request.model_dump(mode="json"))
    except httpx.HTTPError as exc:
        raise ProvisionError(f"API unreachable: {exc}") from None
    if response.status_code not in (200, 201):
        try:
            problem = response.json()
            why = problem.get("detail") or problem.get("title")
        except ValueError:
            why = response.text[:200]
        raise ProvisionError(f"API refused the claim ({response.status_code}): {why}")
    try:
        return ProvisionResponse.model_validate_json(response.content)
    except ValidationError as exc:
        raise ProvisionError(f"API answer does not follow the contract: {exc}") from None


async def provision(request: ProvisionRequest, api_url: str, bus: DaliBus,
                    meter: ModbusDevice | None, data_dir: Path, config_path: Path, *,
                    http: httpx.AsyncClient | None = None,
                    dali_specs: list[dict] | None = None, modbus_specs: list[dict] | None = None
                    ) -> ProvisionResult:
    """Run every step; a failed step is recorded and the steps that need it are skipped."""
    result = ProvisionResult()
    own_http = http is None
    http = http or httpx.AsyncClient(timeout=15)
    try:
        try:
            reg = await register(http, api_url, request)
        except ProvisionError as exc:
            result.checks.append(Check(name="registered with the central API", ok=False, detail=str(exc)))
            return result
    finally:
        if own_http:
            await http.aclose()
    result.controller_id, result.tenant = reg.controller_id, reg.tenant
    result.checks.append(Check(name="registered with the central API", ok=True,
                               detail=f"{reg.tenant}/{reg.controller_id}"))
    tls = None
    if reg.mqtt.tls:
        ca = None
        if reg.mqtt.ca_pem:
            ca = data_dir / "ca.pem"
            data_dir.mkdir(parents=True, exist_ok=True)
            ca.write_text(reg.mqtt.ca_pem)
        tls = {"ca": ca}
    settings = AgentSettings(
        controller_id=reg.controller_id, tenant=reg.tenant, data_dir=data_dir,
        position={"lat": request.lat, "lon": request.lon},
        broker={"host": reg.mqtt.host, "port": reg.mqtt.port, "username": reg.mqtt.username,
                "password": reg.mqtt.password, "tls": tls},
        dali=dali_specs or [], modbus=modbus_specs or [], config=reg.config)
    write_settings(settings, config_path)
    result.config_path = config_path
    state = AgentState(data_dir / "state.sqlite")
    try:
        result.boot_id = state.new_boot(_time.time())
    finally:
        state.close()

    client = aiomqtt.Client(reg.mqtt.host, reg.mqtt.port, username=reg.mqtt.username,
                            # the broker binds the controller's account to its controller id
                            password=reg.mqtt.password, identifier=reg.controller_id,
                            protocol=aiomqtt.ProtocolVersion.V5, timeout=10,
                            tls_params=aiomqtt.TLSParameters(ca_certs=str(tls["ca"]) if tls["ca"] else None)
                            if tls else None)
    try:
        async with client:
            result.checks.append(Check(name="broker reachable", ok=True,
                                       detail=f"{reg.mqtt.host}:{reg.mqtt.port} as {reg.mqtt.username}"))
            await _hardware_checks(result, bus, meter, request.luminaire_model)
            await _publish_inventory(result, client, reg, data_dir, request.pole_id)
            await _first_telemetry(result, client, reg)
    except aiomqtt.MqttError as exc:
        if not any(c.name == "broker reachable" for c in result.checks):
            result.checks.append(Check(name="broker reachable", ok=False, detail=str(exc)))
            await _hardware_checks(result, bus, meter, request.luminaire_model)
        if not any(c.name == "inventory published" for c in result.checks):
            await _publish_inventory(result, None, reg, data_dir, request.pole_id)
        result.checks.append(Check(name="first telemetry accepted", ok=False, detail=str(exc)))
    return result


def inventory_events(result: ProvisionResult, controller: str, pole_id: str | None = None) -> list[Event]:
    """One INVENTORY event per luminaire found, numbered 0.. in the commissioning boot."""
    now = datetime.now(UTC)
    return [Event(controller=controller, boot_id=result.boot_id or 0, seq=seq, kind=EventKind.INVENTORY,
                  severity=Severity.INFO, time=now, luminaire=gear.luminaire,
                  detail={k: v for k, v in dict(gtin=gear.gtin, serial=gear.serial, model=gear.model,
                                                short_address=gear.short_address,
                                                pole_id=pole_id, **gear.capabilities).items()
                          if v is not None})
            for seq, gear in enumerate(result.inventory)]


async def _publish_inventory(result: ProvisionResult, client: aiomqtt.Client | None,
                             reg: ProvisionResponse, data_dir: Path, pole_id: str | None = None) -> None:
    """Publish the inventory (QoS 1, awaiting each PUBACK); what cannot be published now is
    left in the agent's outbox, which the agent drains on its first connection."""
    events = inventory_events(result, reg.controller_id, pole_id)
    if not events:
        return
    where = topic(reg.tenant, reg.controller_id, Kind.EVENT)
    sent = 0
    error = "broker unreachable"
    if client is not None:
        try:
            for event in events:
                await client.publish(where, dumps(event), qos=1, timeout=10)
                sent += 1
        except aiomqtt.MqttError as exc:
            error = str(exc)
    if sent == len(events):
        result.checks.append(Check(name="inventory published", ok=True,
                                   detail=f"{sent} luminaires acknowledged by the broker"))
        return
    outbox = Outbox(data_dir / "outbox.sqlite", reg.config.buffer_max_bytes, reg.config.buffer_max_age_s)
    try:
        for event in events[sent:]:
            outbox.put(where, dumps(event), qos=1)
    finally:
        outbox.close()
    result.checks.append(Check(name="inventory published", ok=False,
                               detail=f"{error}; {len(events) - sent} of {len(events)} queued for the "
                               "agent to send when the broker is reachable"))


async def _hardware_checks(result: ProvisionResult, bus: DaliBus, meter: ModbusDevice | None,
                           luminaire_model: str | None = None) -> None:
    try:
        addresses = await commission(bus)
    except DaliError as exc:
        result.checks.append(Check(name="DALI gear found", ok=False, detail=f"{type(exc).__name__}: {exc}"))
        addresses = []
    else:
        result.checks.append(Check(name="DALI gear found", ok=bool(addresses),
                                   detail=f"{len(addresses)} gear at {addresses}"))
    inventory, silent = await read_inventory(bus, addresses, luminaire_model)
    result.inventory.extend(inventory)
    if addresses:
        plain = [g.short_address for g in inventory
                 if "1" not in g.capabilities["banks"].split(",")]
        result.checks.append(Check(name="D4i inventory read", ok=not silent,
                                   detail=f"{len(inventory)} of {len(addresses)} luminaires"
                                   + (f"; no D4i bank 1 (plain DALI) at {plain}" if plain else "")
                                   + (f"; no answer from {silent}" if silent else "")))
    if meter is None:
        result.checks.append(Check(name="meter read", ok=True, detail="no meter on this controller"))
        return
    try:
        values = await meter.read()
    except ModbusError as exc:
        result.checks.append(Check(name="meter read", ok=False, detail=f"{type(exc).__name__}: {exc}"))
    else:
        kwh = values.get("energy_import_kwh")
        result.checks.append(Check(name="meter read", ok=True,
                                   detail=f"{meter.profile.id}: {len(values)} values, import {kwh} kWh"))


async def read_inventory(bus: DaliBus, addresses: list[int], luminaire_model: str | None = None,
                         ) -> tuple[list[GearInventory], list[int]]:
    """What each gear implements and, where it has D4i bank 1, who made it; the short addresses
    that did not answer come second. A gear without bank 1 (plain DALI) is no failure: its model
    is the technician's."""
    inventory: list[GearInventory] = []
    silent: list[int] = []
    for short in addresses:
        try:
            caps: GearCapabilities = await probe(bus, short)
            info = await read_luminaire_info(bus, short) if 1 in caps.banks else None
        except DaliError:
            silent.append(short)
            continue
        model = (info.identification or "").strip() if info is not None else ""
        inventory.append(GearInventory(
            luminaire=short, short_address=short, gtin=info.gtin if info else None,
            serial=info.serial if info else None, model=model or luminaire_model,
            capabilities=caps.detail()))
    return inventory, silent


async def _first_telemetry(result: ProvisionResult, client: aiomqtt.Client, reg: ProvisionResponse) -> None:
    """Publish one telemetry record (boot 0, seq 0: the commissioning boot) and await its PUBACK."""
    records = np.zeros(max(1, len(result.inventory)), dtype=LUMINAIRE_DTYPE)
    records["time_us"] = int(_time.time() * 1_000_000)
    records["level"] = LEVEL_UNKNOWN  # a check of the path, not a reading: nothing measured
    records["failure"] = int(ABSENT_BITS)
    for i, gear in enumerate(result.inventory):
        records[i]["luminaire"] = gear.luminaire
    try:
        await client.publish(topic(reg.tenant, reg.controller_id, Kind.TELEMETRY),
                             encode_luminaire(result.boot_id or 0, 0, records), qos=1, timeout=10)
    except aiomqtt.MqttError as exc:
        result.checks.append(Check(name="first telemetry accepted", ok=False, detail=str(exc)))
        return
    result.checks.append(Check(name="first telemetry accepted", ok=True,
                               detail=f"{records.shape[0]} records acknowledged by the broker"))


def checklist(result: ProvisionResult) -> Table:
    table = Table(title=f"Provisioning {result.tenant or '?'}/{result.controller_id or '?'}")
    table.add_column("check")
    table.add_column("result")
    table.add_column("detail")
    for check in result.checks:
        table.add_row(check.name, "[green]PASS[/green]" if check.ok else "[red]FAIL[/red]", check.detail)
    if result.inventory:
        table.add_section()
        for gear in result.inventory:
            parts = gear.capabilities.get("d4i_parts") or "none"
            table.add_row(f"luminaire {gear.luminaire}", "",
                          f"GTIN {gear.gtin or '-'}  serial {gear.serial or '-'}  "
                          f"model {gear.model or '?'}  D4i parts {parts}")
    return table


def _host_port(value: str, default_port: int) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    return (host, int(port)) if host else (value, default_port)


async def _run(args: argparse.Namespace) -> ProvisionResult:
    request = ProvisionRequest(claim_code=args.claim_code, controller_id=args.controller_id,
                               pole_id=args.pole_id, lat=args.lat, lon=args.lon,
                               luminaire_model=args.luminaire_model, cabinet_id=args.cabinet_id)
    dali_host, dali_port = _host_port(args.dali, 55825)
    bus = DaliServerBus(dali_host, dali_port)
    meter = None
    modbus_specs = []
    if args.meter:
        host, port = _host_port(args.meter, 502)
        meter = ModbusDevice(load_profile(args.meter_profile), tcp_client(host, port))
        modbus_specs = [dict(profile=args.meter_profile, host=host, port=port)]
    try:
        return await provision(request, args.api, bus, meter, args.data_dir, args.config_out,
                               dali_specs=[dict(kind="daliserver", host=dali_host, port=dali_port)],
                               modbus_specs=modbus_specs)
    finally:
        await bus.close()
        if meter is not None:
            meter.close()


def run_cli(args: argparse.Namespace) -> int:
    result = asyncio.run(_run(args))
    console = Console()
    console.print(checklist(result))
    console.print("[green]controller ready[/green]" if result.ok else "[red]provisioning incomplete[/red]")
    return 0 if result.ok else 1
