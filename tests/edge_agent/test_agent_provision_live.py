"""Provisioning against a double of the one API endpoint, the real broker and simulated gear."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from agent_harness import WINTER_NIGHT, Watcher, device_account, sync_wait_until, wait_until
from rich.console import Console

from controller_fw_sim.dali import MIXED_BUS, SimulatedDaliBus
from controller_fw_sim.modbus_meter import MeterServer
from edge_agent.agent import Agent, Hardware
from edge_agent.clock import ScaledClock
from edge_agent.provision import PROVISION_PATH, ProvisionRequest, checklist, provision
from edge_agent.settings import load_settings
from edge_agent.store_forward import Outbox
from hardware.dali import InProcessBus
from hardware.modbus import ModbusDevice, load_profile, tcp_client
from luciole.stack import free_port
from wire.messages import ControllerConfig, Event, EventKind, loads
from wire.records import LEVEL_UNKNOWN, LuminaireFailure
from wire.topics import Kind

pytestmark = pytest.mark.integration
TENANT = "etterbeek"
REQUEST = ProvisionRequest(claim_code="CLAIM-7788", pole_id="P-1040-17", lat=50.8333, lon=4.3897,
                           luminaire_model="Schreder Teceo 1", cabinet_id="CAB-1040-2")


def _api(mqtt: dict, seen: list) -> httpx.AsyncClient:
    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        seen.append(body)
        if request.url.path != PROVISION_PATH or request.method != "POST":
            return httpx.Response(404, json={"title": "not found", "status": 404})
        if body["claim_code"] != REQUEST.claim_code:
            return httpx.Response(403, json={"title": "forbidden", "detail": "unknown claim code",
                                             "status": 403})
        return httpx.Response(
            201,
            json={
                "controller_id": "ctl-prov-1",
                "tenant": TENANT,
                "mqtt": mqtt,
                "config": ControllerConfig(telemetry_interval_s=30).model_dump(mode="json"),
            },
        )

    return httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url="http://api.test")


def test_provisioning_passes_every_check_and_writes_the_agent_config(stack, tmp_path):
    e = stack.endpoints
    password = device_account(stack.stack, TENANT, "ctl-prov-1")
    mqtt = dict(host=e.mqtt_host, port=e.mqtt_port, username="ctl-prov-1", password=password, tls=False)
    sim = SimulatedDaliBus.with_gear(3, seed=21, addressed=False)
    seen: list = []

    async def scenario():
        meter = MeterServer()
        port = await meter.start()
        meter.publish({"energy_import_kwh": 42.0})
        device = ModbusDevice(load_profile("eastron_sdm630"), tcp_client("127.0.0.1", port))
        try:
            async with _api(mqtt, seen) as http:
                return await provision(REQUEST, "http://api.test", InProcessBus(sim), device,
                                       tmp_path / "data", tmp_path / "agent.json", http=http)
        finally:
            device.close()
            await meter.stop()

    with Watcher(e.mqtt_host, e.mqtt_port, e.mqtt_username, e.mqtt_password) as watcher:
        watcher.subscribe(f"luciole/v1/{TENANT}/ctl-prov-1/event")
        result = asyncio.run(asyncio.wait_for(scenario(), 60))
        inventory = sync_wait_until(lambda: _inventory(watcher) if len(_inventory(watcher)) == 3 else None,
                                    10, "an inventory event per luminaire")
    assert seen[0]["pole_id"] == "P-1040-17" and seen[0]["lat"] == pytest.approx(50.8333)
    assert result.ok, [c for c in result.checks if not c.ok]
    assert [c.name for c in result.checks] == [
        "registered with the central API", "broker reachable", "DALI gear found",
        "D4i inventory read", "meter read", "inventory published", "first telemetry accepted"]
    assert sorted(g.serial for g in result.inventory) == sorted(g.identity.luminaire_id for g in sim.gear)
    by_luminaire = {ev.luminaire: ev for ev in inventory}
    for gear in result.inventory:
        detail = by_luminaire[gear.luminaire].detail
        assert (detail["gtin"], detail["serial"], detail["model"]) == (gear.gtin, gear.serial, gear.model)
        assert detail["model"] == sim.gear[0].identity.identification, "the model comes from bank 1"
        assert detail["pole_id"] == "P-1040-17"
    assert {(ev.boot_id, ev.seq) for ev in inventory} == {(result.boot_id, k) for k in range(3)}
    settings = load_settings(tmp_path / "agent.json")
    assert (settings.controller_id, settings.tenant, settings.config.telemetry_interval_s) == (
        "ctl-prov-1", TENANT, 30)
    assert (tmp_path / "agent.json").stat().st_mode & 0o077 == 0, "credentials readable by owner only"
    console = Console(record=True, width=120)
    console.print(checklist(result))
    assert "FAIL" not in console.export_text() and password not in console.export_text()


def _inventory(watcher: Watcher) -> list[Event]:
    return [ev for ev in (loads(Event, m.payload) for m in watcher.of(Kind.EVENT))
            if ev.kind is EventKind.INVENTORY]


def test_an_unreachable_broker_leaves_the_inventory_for_the_agent_to_send(stack, tmp_path):
    """The broker is down at commissioning: the inventory waits in the agent's outbox and goes
    up on the agent's first connection."""
    e = stack.endpoints
    controller = "ctl-prov-1"
    password = device_account(stack.stack, TENANT, controller)
    dead = dict(host=e.mqtt_host, port=free_port(e.mqtt_host), username=controller,
                password=password, tls=False)
    sim = SimulatedDaliBus.with_gear(2, seed=22, addressed=False)

    async def commissioning():
        async with _api(dead, []) as http:
            return await provision(REQUEST, "http://api.test", InProcessBus(sim), None,
                                   tmp_path / "data", tmp_path / "agent.json", http=http)

    result = asyncio.run(asyncio.wait_for(commissioning(), 60))
    checks = {c.name: c for c in result.checks}
    assert not checks["broker reachable"].ok and checks["DALI gear found"].ok
    assert not checks["inventory published"].ok and "2 of 2 queued" in checks["inventory published"].detail
    outbox = Outbox(tmp_path / "data" / "outbox.sqlite")
    assert outbox.stats().messages == 2
    outbox.close()

    # the broker is reachable again (here: the right port); the agent sends what waited
    written = load_settings(tmp_path / "agent.json")
    settings = written.model_copy(update={"broker": written.broker.model_copy(update={"port": e.mqtt_port})})

    async def agent_runs(watcher: Watcher) -> None:
        clock = ScaledClock(1.0, WINTER_NIGHT)
        async with Agent(settings, clock=clock, hardware=Hardware([], [])):
            await wait_until(lambda: len(_inventory(watcher)) == 2, 15, "the queued inventory")

    with Watcher(e.mqtt_host, e.mqtt_port, e.mqtt_username, e.mqtt_password) as watcher:
        watcher.subscribe(f"luciole/v1/{TENANT}/{controller}/event")
        asyncio.run(asyncio.wait_for(agent_runs(watcher), 60))
        inventory = _inventory(watcher)
    assert {ev.luminaire for ev in inventory} == {g.luminaire for g in result.inventory}
    assert all(ev.detail["model"] for ev in inventory)


def test_a_refused_claim_fails_the_first_check_with_the_apis_reason(tmp_path):
    sim = SimulatedDaliBus.with_gear(1, seed=1, addressed=False)

    async def scenario():
        async with _api({}, []) as http:
            bad = REQUEST.model_copy(update={"claim_code": "WRONG-000"})
            return await provision(bad, "http://api.test", InProcessBus(sim), None,
                                   tmp_path / "data", tmp_path / "agent.json", http=http)

    result = asyncio.run(scenario())
    assert not result.ok
    assert result.checks[0].name == "registered with the central API"
    assert "403" in result.checks[0].detail and "unknown claim code" in result.checks[0].detail
    assert not (tmp_path / "agent.json").exists()


def test_plain_dali_gear_passes_provisioning_and_its_capabilities_go_up(stack, tmp_path):
    """Most installed gear is not D4i: a plain DT6 driver lacks bank 1, and that is no failure."""
    e = stack.endpoints
    password = device_account(stack.stack, TENANT, "ctl-prov-1")
    mqtt = dict(host=e.mqtt_host, port=e.mqtt_port, username="ctl-prov-1", password=password,
                tls=False)
    sim = SimulatedDaliBus.with_gear(4, seed=23, addressed=False, profiles=MIXED_BUS)

    async def scenario():
        async with _api(mqtt, []) as http:
            return await provision(REQUEST, "http://api.test", InProcessBus(sim), None,
                                   tmp_path / "data", tmp_path / "agent.json", http=http)

    with Watcher(e.mqtt_host, e.mqtt_port, e.mqtt_username, e.mqtt_password) as watcher:
        watcher.subscribe(f"luciole/v1/{TENANT}/ctl-prov-1/#")
        result = asyncio.run(asyncio.wait_for(scenario(), 60))
        inventory = sync_wait_until(lambda: len(_inventory(watcher)) == 4 and _inventory(watcher),
                                    10, "an inventory event per luminaire")
        records = sync_wait_until(watcher.records, 10, "the first telemetry")
    assert result.ok, [c for c in result.checks if not c.ok]
    checks = {c.name: c for c in result.checks}
    by_profile = {gear.profile.name: gear.short_address for gear in sim.gear}
    no_bank_1 = sorted((by_profile["dt6"], by_profile["d4i_252"]))
    assert f"plain DALI) at {no_bank_1}" in checks["D4i inventory read"].detail
    detail = {ev.luminaire: ev.detail for ev in inventory}
    plain = detail[by_profile["dt6"]]
    assert plain["model"] == REQUEST.luminaire_model and "gtin" not in plain
    assert (plain["device_types"], plain["banks"], plain["d4i_parts"]) == ("6", "0", "")
    assert detail[by_profile["d4i_full"]]["d4i_parts"] == "251,252,253"
    assert detail[by_profile["dt8_tc"]]["device_types"] == "8"
    (_, _, first), *_ = records
    assert first["level"] == LEVEL_UNKNOWN and first["failure"] & LuminaireFailure.ABSENT_POWER, (
        "the check message is no reading: no level, no energy to count")
