"""Controllers played by hosted edge agents: the bulk fleet leaves them out (no telemetry, no
birth, no answer to their commands), the demo picks them away from the fault scenario, and a
hosted list naming a controller outside the region is refused with a clear error."""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from controller_fw_sim import fleet_cli
from controller_fw_sim.fleet import Fleet
from controller_fw_sim.fleet_inventory import build_inventory
from controller_fw_sim.hosted_energy import HostedEnergy, write_snapshot
from luciole import cli
from luciole.demo import demo_scenario, scenario_controllers
from luciole.hosted_agents import pick_hosted
from wire.messages import SetLevel, dumps

EVENING = datetime(2025, 1, 14, 19, 0, tzinfo=UTC)


def test_hosted_controllers_send_nothing_and_get_no_answer_from_the_fleet() -> None:
    inventory = build_inventory(20, 2, seed=5)
    hosted = list(inventory.controller_ids[3:6])
    fleet = Fleet(inventory, start=EVENING, seed=5, hosted=hosted)
    senders: set[int] = set()
    for t in range(1, 181):
        senders.update(fleet.advance(float(t)).controllers.tolist())
    assert senders == set(range(20)) - {3, 4, 5}
    births = [c for c, _ in fleet.state_payloads(True)]
    assert births == [c for c in range(20) if c not in (3, 4, 5)]
    command = SetLevel(target="all", level=10, issued_at=EVENING,
                       expires_at=EVENING + timedelta(hours=1))
    assert fleet.handle_command(4, dumps(command)) is None
    assert fleet.handle_command(6, dumps(command)) is not None


def test_a_hosted_controller_outside_the_inventory_is_refused() -> None:
    with pytest.raises(ValueError, match="not in the inventory"):
        Fleet(build_inventory(5, 1, seed=1), start=EVENING, hosted=["ctl-999999"])


def test_the_demo_hosts_agents_on_unswitched_cabinets_away_from_the_fault_scenario() -> None:
    inventory = build_inventory(200, 4, seed=7, switched_fraction=0.9)
    scenario = demo_scenario(inventory, EVENING)
    avoid = scenario_controllers(scenario)
    hosted = pick_hosted(inventory, 24, avoid)
    index = {c: i for i, c in enumerate(inventory.controller_ids)}
    powered = ~inventory.switched[inventory.controller_cabinet]
    eligible = [c for i, c in enumerate(inventory.controller_ids) if powered[i] and c not in avoid]
    assert len(hosted) == len(set(hosted)) == min(24, len(eligible)) > 0
    assert not set(hosted) & avoid
    assert all(powered[index[c]] for c in hosted)
    assert pick_hosted(inventory, 0, avoid) == []
    assert pick_hosted(inventory, -3, avoid) == []


def _fleet_args(tmp_path: Path, hosted: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    fleet_cli.add_arguments(parser)
    hosted_file = tmp_path / "hosted.txt"
    hosted_file.write_text("\n".join(hosted) + "\n")
    return parser.parse_args(["--controllers", "5", "--hosted", str(hosted_file)])


def test_the_fleet_command_refuses_an_unknown_hosted_controller(tmp_path: Path,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    args = _fleet_args(tmp_path, ["ctl-000001", "ctl-0000x9; rm -rf /"])
    targets = fleet_cli.FleetTargets.shared(fleet_cli.MqttTarget("127.0.0.1", 1, "u", "p"))
    assert fleet_cli.run(args, targets) == 2  # before any connection is tried
    assert "not in the inventory" in caplog.text


def test_the_agents_command_refuses_an_unknown_hosted_controller(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture) -> None:
    hosted = tmp_path / "hosted.txt"
    hosted.write_text("ctl-000002\n\x00ctl-424242\n")
    code = cli.main(["--var-dir", str(tmp_path / "var"), "sim", "agents", "--hosted", str(hosted),
                     "--controllers", "5", "--start", "2025-01-14T16:00:00Z",
                     "--data-dir", str(tmp_path / "agents")])
    assert code == 2
    assert "not in the region" in capsys.readouterr().out


def test_the_fleet_keeps_a_shared_clock() -> None:
    """`wall_origin_s` puts the fleet where a clock started earlier stands: it catches up."""
    from controller_fw_sim.fleet_runner import run_fleet

    class Pool:
        window, workers, acked = 10, 1, 0

        def wait_backlog(self, at_most: int, timeout_s: float) -> None:
            pass

        def submit(self, *args: object, **kw: object) -> None:
            pass

    fleet = Fleet(build_inventory(3, 1, seed=1), start=EVENING, seed=1)
    began = time.monotonic()
    progress = run_fleet(fleet, Pool(), speed=60.0, duration_s=600.0,  # type: ignore[arg-type]
                         wall_origin_s=time.time() - 9.0)
    took = time.monotonic() - began
    assert progress.sim_s == pytest.approx(600.0)
    assert 0.5 < took < 5.0  # 540 of the 600 simulated seconds were due already, 60 were not


@pytest.mark.parametrize(("controllers", "agents"), [(60, 4), (500, 8), (200, 24)])
def test_the_logins_municipality_gets_the_earliest_faults_on_controllers_the_fleet_plays(
        controllers: int, agents: int) -> None:
    """The demo prints the logins of the hosted agents' municipality: the scenario's earliest
    faults (day burning from the start, the lamp failure at +35 min) go to that municipality's
    controllers the fleet plays (day burning only where its cabinet is powered by day), so its
    operator sees a fault within the first minute, and no
    fault goes to a hosted controller (the fleet does not play those)."""
    from luciole.demo import hosted_and_spares

    inventory = build_inventory(controllers, 4, seed=7, switched_fraction=0.9)
    hosted, spare = hosted_and_spares(inventory, agents)
    assert hosted and spare
    scenario = demo_scenario(inventory, EVENING, first=spare, avoid=hosted)
    assert not scenario_controllers(scenario) & set(hosted)
    tenant = inventory.controller_tenant
    index = {c: i for i, c in enumerate(inventory.controller_ids)}
    login_tenant = tenant[index[hosted[0]]]
    switched = inventory.switched[inventory.controller_cabinet]
    earliest = "lamp_failure" if switched[index[spare[0]]] else "day_burning"
    device = next(f["device"] for f in scenario["faults"] if f["fault"] == earliest)
    assert tenant[index[device.split(":")[0]]] == login_tenant, (earliest, device)


def test_the_cabinet_meter_counts_the_hosted_agents_gear(tmp_path: Path) -> None:
    """A cabinet whose first controller (its meter's usual reader) and another are played by
    hosted agents: the meter is read by the fleet's next controller of the cabinet and counts
    the hosted luminaires from their gear's counters (here drawing 5 W each, commanded low),
    not from the fleet's own model of them (full level at night)."""
    inventory = build_inventory(30, 2, seed=5)
    ids = list(inventory.controller_ids)
    cab = int(np.bincount(inventory.controller_cabinet).argmax())
    mine = np.flatnonzero(inventory.controller_cabinet == cab)
    assert mine.shape[0] >= 3
    hosted = [ids[i] for i in mine[:2]]
    path = tmp_path / "hosted_energy.json"
    fleet = Fleet(inventory, start=EVENING, seed=5, hosted=hosted, multifunction_fraction=0.0,
                  hosted_energy=HostedEnergy(path, ids, 2, hosted))
    assert fleet.meters is not None
    assert int(fleet.meters.segment[cab]) == int(mine[2])  # the first controller the fleet plays
    lums = np.concatenate([np.arange(i * 2, i * 2 + 2) for i in mine])
    played = np.concatenate([np.arange(i * 2, i * 2 + 2) for i in mine[2:]])
    fleet_start = fleet.luminaire_energy_wh(lums).copy()
    gear_w, gear_start = 5.0, 1234.0  # the gear's own counters start anywhere

    def snapshot(t_s: float) -> None:
        write_snapshot(path, EVENING.timestamp() + t_s,
                       {c: [gear_start + gear_w * t_s / 3600.0] * 2 for c in hosted})

    reads: list[tuple[int, np.ndarray, np.ndarray]] = []  # (t, hosted, played) at each read
    for t in range(30, 1801, 30):  # half an hour of night in 30 s ticks
        snapshot(t - 30)  # the agents' newest snapshot lags the fleet (at most a period)
        out = fleet.advance(float(t))
        if any(int(mine[2]) in rows.controllers.tolist() for rows in out.sensors):
            reads.append((t, fleet.luminaire_energy_wh(lums[:4]), fleet.luminaire_energy_wh(played)))
    (first, hosted_first, _), (last, _, played_last) = reads[0], reads[-1]
    # the meter counted the fleet's luminaires of the cabinet, the hosted ones as the fleet
    # models them until the first read (no snapshot counted yet), then their gear's 5 W
    gear_wh = 4 * gear_w * (last - first) / 3600.0
    expected_wh = (float((played_last - fleet_start[4:]).sum())
                   + float((hosted_first - fleet_start[:4]).sum()) + gear_wh)
    assert fleet.meters.models[cab].energy_luminaires_kwh * 1000 == pytest.approx(expected_wh,
                                                                                  rel=0.01)
    # the fleet's own model of the hosted luminaires would have counted them at full power
    hosted_model_wh = float((fleet.luminaire_energy_wh(lums[:4]) - fleet_start[:4]).sum())
    assert hosted_model_wh > 10 * gear_wh
