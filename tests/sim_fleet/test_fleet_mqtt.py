"""Fleet mode against the real Mosquitto: telemetry in order, retained births, commands, CLI."""

from __future__ import annotations

import json
import math
import queue
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from controller_fw_sim import fleet_cli
from controller_fw_sim.fleet import Fleet
from controller_fw_sim.fleet_inventory import build_inventory
from controller_fw_sim.fleet_publish import CommandLink, MqttTarget, PublisherPool
from controller_fw_sim.fleet_runner import publish_births, run_fleet
from tests.mqtt_probe import Probe
from wire.codec import decode_batch
from wire.messages import Ack, AckStatus, SetLevel, State, dumps, loads
from wire.records import HEADER_SIZE, LUMINAIRE_DTYPE, RecordType
from wire.topics import Kind, parse_topic, subscription, topic

pytestmark = pytest.mark.integration

EVENING = datetime(2025, 1, 14, 19, 0, tzinfo=UTC)
FAR_FUTURE_US = int(datetime(2100, 1, 1, tzinfo=UTC).timestamp() * 1e6)


def target_of(mqtt) -> MqttTarget:
    return MqttTarget(mqtt.mqtt_host, mqtt.mqtt_port, mqtt.mqtt_username, mqtt.mqtt_password)


def probe(mqtt) -> Probe:
    return Probe(mqtt.mqtt_host, mqtt.mqtt_port, mqtt.mqtt_username, mqtt.mqtt_password)


def test_small_fleet_publishes_every_controller_in_order(mqtt) -> None:
    n, m, seed = 40, 3, 11
    inv = build_inventory(n, m, seed=seed)
    tenants, ids = inv.controller_tenant_ids(), list(inv.controller_ids)
    with probe(mqtt) as sub:
        sub.subscribe(subscription(Kind.TELEMETRY))
        with PublisherPool(target_of(mqtt), tenants, ids, workers=2, client_prefix="t-fleet") as pool:
            fleet = Fleet(inv, start=EVENING, seed=seed)
            assert publish_births(fleet, pool, timeout_s=30) == n
            final = run_fleet(fleet, pool, speed=math.inf, duration_s=180.0)
        assert final.messages == 3 * n
        assert final.sensor_messages == 3 * (len(inv.cabinet_ids) + fleet.urban.controllers.shape[0])
        got = sub.drain(3 * n + final.sensor_messages, timeout_s=30)
    payloads = [bytes(g.payload) for g in got]
    batch = decode_batch(payloads, FAR_FUTURE_US)
    assert len(batch.rejects) == 0 and batch.luminaire.shape[0] == 3 * n * m
    by_controller: dict[str, list[int]] = {}
    sensor_seqs: dict[str, list[tuple[int, int]]] = {}
    for message, rtype, first_seq, count, boot in zip(
        got,
        batch.msg_type.tolist(),
        batch.msg_first_seq.tolist(),
        batch.msg_count.tolist(),
        batch.msg_boot.tolist(),
        strict=True,
    ):
        parts = parse_topic(message.topic)
        c = ids.index(parts.controller)
        assert parts.tenant == tenants[c] and boot == int(fleet.boot_id[c])
        if rtype == RecordType.LUMINAIRE:
            by_controller.setdefault(parts.controller, []).append(first_seq)
        else:
            sensor_seqs.setdefault(parts.controller, []).append((first_seq, count))
    assert sorted(by_controller) == ids
    assert all(seqs == [0, m, 2 * m] for seqs in by_controller.values()), "in order, no gap"
    for seqs in sensor_seqs.values():
        firsts = [s for s, _ in seqs]
        assert firsts == list(np.cumsum([0] + [k for _, k in seqs])[:-1]), "sensor stream in order, no gap"

    with probe(mqtt) as late:  # births are retained: a late subscriber gets them all
        late.subscribe(subscription(Kind.STATE, tenants[0]))
        count = tenants.count(tenants[0])
        states = [loads(State, g.payload) for g in late.drain(count, timeout_s=10)]
    assert all(s.online and s.firmware for s in states)
    assert {s.controller for s in states} == {ids[c] for c in range(n) if tenants[c] == tenants[0]}


def _wait_for(what: str, timeout_s: float, poll):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = poll(min(0.5, max(0.0, deadline - time.monotonic())))
        if found is not None:
            return found
    raise TimeoutError(f"no {what} in {timeout_s} s")


def test_set_level_command_changes_telemetry_and_is_acknowledged(mqtt) -> None:
    n, m = 12, 2
    inv = build_inventory(n, m, seed=3)
    tenants, ids = inv.controller_tenant_ids(), list(inv.controller_ids)
    c = 4
    tenant, controller = tenants[c], ids[c]
    target = target_of(mqtt)
    stop = threading.Event()
    errors: list[BaseException] = []
    with probe(mqtt) as sub, PublisherPool(target, tenants, ids, workers=1, client_prefix="t-cmd") as pool:
        sub.subscribe(topic(tenant, controller, Kind.ACK))
        sub.subscribe(topic(tenant, controller, Kind.TELEMETRY))
        commands = CommandLink(target, tenants, ids).start()
        fleet = Fleet(inv, start=EVENING, seed=3)

        def runner() -> None:
            try:  # 1 sim minute every 2 wall seconds, until stopped (bounded by duration_s anyway)
                run_fleet(fleet, pool, commands, speed=30.0, duration_s=3600.0, stop=stop)
            except BaseException as exc:  # noqa: BLE001 - reported by the test thread below
                errors.append(exc)

        thread = threading.Thread(target=runner, daemon=True)
        thread.start()
        try:
            command = SetLevel(issued_at=fleet.start, expires_at=fleet.start + timedelta(days=1),
                               target="all", level=77, duration_s=3600)
            sub.publish(topic(tenant, controller, Kind.CMD), dumps(command))

            def ack_or_none(timeout: float):
                msg = sub.expect(timeout) if timeout > 0 else None
                if msg is not None and parse_topic(msg.topic).kind is Kind.ACK:
                    return loads(Ack, msg.payload)
                return None

            ack = _wait_for("ack", 15, lambda t: _swallow_empty(ack_or_none, t))
            assert ack.command_id == command.id and ack.status is AckStatus.DONE
            assert ack.controller == controller

            def dimmed(timeout: float):
                msg = sub.expect(timeout)
                if parse_topic(msg.topic).kind is Kind.TELEMETRY and msg.payload[3] == RecordType.LUMINAIRE:
                    recs = (
                        np.frombuffer(msg.payload, dtype=np.uint8)[HEADER_SIZE:].copy().view(LUMINAIRE_DTYPE)
                    )
                    if np.all(recs["level"] == 77):
                        return recs
                return None

            recs = _wait_for("telemetry at level 77", 15, lambda t: _swallow_empty(dimmed, t))
            assert np.all(recs["power_w"] < 30), "dimmed lamps draw less"
        finally:
            stop.set()
            thread.join(30)
            commands.stop()
    assert not errors, errors
    assert not thread.is_alive()


def _swallow_empty(fn, timeout):
    try:
        return fn(timeout)
    except queue.Empty:
        return None


def test_cli_runs_a_scenario_and_writes_labels(mqtt, tmp_path: Path) -> None:
    scenario = tmp_path / "scenario.json"
    scenario.write_text(json.dumps({
        "start": "2025-01-14T19:00:00Z",
        "faults": [
            {"fault": "lamp_failure", "device": "ctl-000002:1", "start": "+1m"},
            {"fault": "comm_loss", "device": "ctl-000003", "start": "+0s", "end": "+5m"},
        ],
    }))
    labels = tmp_path / "out" / "labels.csv"
    with probe(mqtt) as sub:
        sub.subscribe(subscription(Kind.TELEMETRY, controller="ctl-000003"))
        rc = fleet_cli.main([
            "--controllers", "20", "--luminaires", "2", "--speed", "max", "--duration-s", "180",
            "--start", "2025-01-14T19:00:00Z", "--scenario", str(scenario), "--labels", str(labels),
            "--progress-s", "60",
        ], targets=fleet_cli.FleetTargets.shared(target_of(mqtt)))
        assert rc == 0
        with pytest.raises((TimeoutError, queue.Empty)):
            sub.drain(1, timeout_s=1.0)  # the controller in comm loss sent nothing
    lines = labels.read_text().splitlines()
    assert lines[0] == "fault,device,start,end"
    assert any(line.startswith("lamp_failure,ctl-000002:1,2025-01-14T19:01:00Z") for line in lines)


def test_cli_refuses_bad_speed() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    fleet_cli.add_arguments(parser)
    assert math.isinf(parser.parse_args(["--speed", "max"]).speed)
    assert parser.parse_args(["--speed", "12.5"]).speed == 12.5
    with pytest.raises(SystemExit):
        parser.parse_args(["--speed", "-3"])
