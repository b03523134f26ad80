"""A real edge agent on a switched supply (controller_fw_sim.switched_supply): its power is cut at
sunrise, it boots at sunset; the outbox survives the cut, and the silence by day is no fault."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from agent_harness import Watcher, device_account, outbox_telemetry, sync_wait_until

from analytics.detector_state import DetectorState
from analytics.fleet_rules import contactor_events, silence_events
from analytics.luminaire_rules import LuminaireReadings
from analytics.registry import LUM_STRIDE, Registry
from controller_fw_sim.dali import DaliServerThread, SimulatedDaliBus
from controller_fw_sim.switched_supply import SwitchedAgent, SwitchedSupply

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TENANT = "schaerbeek"
REPO = Path(__file__).resolve().parents[2]
LAT, LON = 50.85, 4.35
EVENING = datetime(2024, 12, 16, 21, 0, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(("t", "on"), [
    (datetime(2024, 12, 16, 21, 0, tzinfo=UTC).timestamp(), True),
    (datetime(2024, 12, 17, 3, 0, tzinfo=UTC).timestamp(), True),
    (datetime(2024, 12, 17, 12, 0, tzinfo=UTC).timestamp(), False),
    (datetime(2024, 6, 21, 19, 0, tzinfo=UTC).timestamp(), False),  # 21:00 in June: still light
    (datetime(2024, 6, 21, 21, 0, tzinfo=UTC).timestamp(), True),
])
def test_the_supply_is_on_from_sunset_to_sunrise(t: float, on: bool) -> None:
    supply = SwitchedSupply(LAT, LON)
    assert supply.is_on(t) is on
    change = supply.next_switch(t)
    assert 0 < change - t < 24 * 3600
    assert supply.is_on(change + 60) is not on and supply.is_on(change - 60) is on


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _buffered(db: Path) -> set[tuple[int, int, float]]:
    """(boot, seq, time) of the luminaire readings in the agent's outbox file."""
    return {(d.boot_id, d.first_seq + k, float(r["time_us"]) / 1e6)
            for d in outbox_telemetry(db) if d.record_type.name == "LUMINAIRE"
            for k, r in enumerate(d.records)}


def _registry(luminaires: int) -> Registry:
    """The controller on a switched cabinet, as the detectors see it."""
    return Registry(cab_id=("cab-switched",), cab_tenant=(TENANT,), cab_switched=np.array([True]),
                    ctl_key=np.array([1]), ctl_id=("ctl-switched-1",), ctl_tenant=(TENANT,),
                    ctl_tz=("Europe/Brussels",), ctl_cab=np.array([0]),
                    ctl_lat=np.array([LAT]), ctl_lon=np.array([LON]),
                    lum_key=LUM_STRIDE + np.arange(luminaires), lum_ctl=np.zeros(luminaires, int),
                    lum_idx=np.arange(luminaires), lum_rated_w=np.full(luminaires, 60.0))


def test_a_switched_night_cuts_the_agent_by_day_its_outbox_survives_and_no_fault_is_raised(
        stack, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    e = stack.endpoints
    controller = "ctl-switched-1"
    password = device_account(stack.stack, TENANT, controller)
    supply = SwitchedSupply(LAT, LON)
    sunrise = supply.next_switch(EVENING)
    sunset = supply.next_switch(sunrise)
    db = tmp_path / "data" / "outbox.sqlite"
    ports = {"broker": _free_port()}  # before dawn the link is down: readings stay in the outbox

    with DaliServerThread(SimulatedDaliBus.with_gear(2, seed=7)) as dali, \
            Watcher(e.mqtt_host, e.mqtt_port, e.mqtt_username, e.mqtt_password) as watcher:

        def boot(t: float) -> subprocess.Popen[bytes]:
            config = tmp_path / "agent.json"
            config.write_text(json.dumps(dict(
                controller_id=controller, tenant=TENANT, data_dir=str(tmp_path / "data"),
                broker=dict(host=e.mqtt_host, port=ports["broker"], username=controller,
                            password=password),
                dali=[dict(kind="daliserver", host="127.0.0.1", port=dali.port)],
                config=dict(telemetry_interval_s=60, dali_poll_interval_s=10),
                clock_factor=30.0, clock_start=t, reconnect_min_s=1, reconnect_max_s=5,
                confirm_timeout_s=600.0, confirm_timeout_max_s=600.0)))
            return subprocess.Popen([sys.executable, "-m", "edge_agent", "run", "--config",
                                     str(config)], cwd=REPO, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE)

        watcher.subscribe(f"luciole/v1/{TENANT}/{controller}/#")
        agent = SwitchedAgent(supply, boot)
        try:
            agent.power(sunrise - 720)  # the last twelve minutes of the night
            assert agent.boots == 1
            # the agent's clock (30 times real time, a reading a minute) reaches dawn
            sync_wait_until(lambda: max((t for _, _, t in _buffered(db)), default=0.0)
                            >= sunrise - 60, 120, "readings kept up to dawn")
            agent.power(sunrise)  # dawn: the contactor opens, the agent's power is cut
            assert agent.process is None and agent.boots == 1
            kept = _buffered(db)  # what the outbox holds after the cut, on disk
            assert len(kept) >= 8 and max(t for _, _, t in kept) < sunrise
            agent.power((sunrise + sunset) / 2)  # midday: still unpowered, nothing sent
            assert agent.process is None and not watcher.records()

            ports["broker"] = e.mqtt_port  # the link is back by dusk
            agent.power(sunset + 60)  # dusk: the agent boots afresh
            assert agent.boots == 2
            sync_wait_until(lambda: {(b, s) for b, s, _ in kept}
                            <= {(b, s) for b, s, _ in watcher.records()}, 60,
                            "every reading kept over the day to arrive after dusk")
            (old_boot,) = {b for b, _, _ in kept}
            sync_wait_until(lambda: any(b != old_boot for b, _, _ in watcher.records()), 60,
                            "a reading of the boot at dusk")
        finally:
            agent.close()

    received = watcher.records()
    times = np.array([float(r["time_us"]) / 1e6 for _, _, r in received])
    assert not ((times > sunrise) & (times < sunset)).any(), "nothing measured by day"
    assert (times > sunset).any() and (times < sunrise).any()

    # the detectors over those readings, in passes of 30 minutes from the night to after dusk:
    # the silence from sunrise to sunset is the supply switched off, not a fault
    lum = np.array([int(r["luminaire"]) for _, _, r in received])
    order = np.lexsort((times, lum))
    columns = {name: np.array([float(r[source]) for _, _, r in received]) for name, source in (
        ("level", "level"), ("status", "status"), ("power", "power_w"), ("voltage", "voltage_v"),
        ("current", "current_a"), ("pf", "power_factor"), ("temp", "driver_temp_c"),
        ("failure", "failure"))}
    for name in ("level", "status", "failure"):
        columns[name] = columns[name].astype(np.int64)
    reg = _registry(int(lum.max()) + 1)
    st = DetectorState.fresh(reg)
    events = []
    t0 = float(times.min()) - 1.0
    while t0 < times.max():
        t1 = t0 + 1800.0
        pick = order[(times[order] > t0) & (times[order] <= t1)]
        r = LuminaireReadings.sorted(lum=lum[pick], t=times[pick], **{
            name: field[pick] for name, field in columns.items()})
        events += silence_events(reg, st, r, t0, t1, 900.0)
        events += contactor_events(reg, st, r, t1)
        t0 = t1
    assert events == [], [(ev.kind.name, ev.at) for ev in events]
