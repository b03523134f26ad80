"""Fleet core without the network: wire rows, sequences, staggering, schedule, faults, commands."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from controller_fw_sim.faults import parse_scenario
from controller_fw_sim.fleet import (
    DIM_LEVEL,
    FULL_LEVEL,
    Fleet,
    arc_level_of_fraction,
    scheduled_level,
)
from controller_fw_sim.fleet_inventory import build_inventory
from controller_fw_sim.physics import log_curve_percent
from wire.codec import decode_batch, encode_luminaire
from wire.messages import AckStatus, Identify, Reboot, ScheduleCommand, SetLevel, State, dumps, loads
from wire.records import HEADER_DTYPE, HEADER_SIZE, LUMINAIRE_DTYPE, LuminaireFailure
from wire.topics import Kind

UTC = UTC
EVENING = datetime(2025, 1, 14, 19, 0, tzinfo=UTC)  # 20:00 in Brussels: full level
NOON = datetime(2025, 6, 21, 10, 0, tzinfo=UTC)
FAR_FUTURE_US = int(datetime(2100, 1, 1, tzinfo=UTC).timestamp() * 1e6)


def fleet(n: int = 120, m: int = 4, start: datetime = EVENING, **kw) -> Fleet:
    return Fleet(build_inventory(n, m, seed=5), start=start, seed=5, **kw)


def run(f: Fleet, seconds: int, tick_s: float = 1.0):
    """Advance tick by tick; returns (controllers, payload rows) of every message in order."""
    ctls, rows = [], []
    t = f.t_s
    for _ in range(int(seconds / tick_s)):
        t += tick_s
        out = f.advance(t)
        ctls.append(out.controllers)
        rows.append(out.payloads)
    return np.concatenate(ctls), np.concatenate(rows)


def headers(rows: np.ndarray) -> np.ndarray:
    return rows[:, :HEADER_SIZE].copy().view(HEADER_DTYPE)[:, 0]


def records(rows: np.ndarray, i: int) -> np.ndarray:
    return rows[i, HEADER_SIZE:].copy().view(LUMINAIRE_DTYPE)


# --- wire rows --------------------------------------------------------------------------

def test_rows_are_exactly_what_encode_luminaire_makes_and_decode_cleanly() -> None:
    f = fleet(60, 4)
    ctls, rows = run(f, 130)
    hdr = headers(rows)
    for i in range(0, rows.shape[0], 7):
        encoded = encode_luminaire(int(hdr["boot_id"][i]), int(hdr["first_seq"][i]), records(rows, i))
        assert rows[i].tobytes() == encoded
    batch = decode_batch([r.tobytes() for r in rows], FAR_FUTURE_US)
    assert len(batch.rejects) == 0
    assert batch.luminaire.shape[0] == rows.shape[0] * 4
    assert np.array_equal(batch.msg_boot, f.boot_id[ctls])


def test_sequences_are_gap_free_per_controller_and_advance_by_m() -> None:
    m = 3
    f = fleet(90, m)
    ctls, rows = run(f, 300)
    hdr = headers(rows)
    for c in range(90):
        seqs = hdr["first_seq"][ctls == c].astype(np.int64)
        assert seqs[0] == 0 and np.all(np.diff(seqs) == m), c
        assert np.all(hdr["boot_id"][ctls == c] == f.boot_id[c])
    assert np.array_equal(f.next_seq, np.bincount(ctls, minlength=90).astype(np.uint64) * m)


def test_reports_are_staggered_and_every_interval() -> None:
    n = 600
    f = fleet(n, 2)
    per_tick = [len(f.advance(float(t))) for t in range(1, 181)]
    assert sum(per_tick) == 3 * n
    assert max(per_tick) - min(per_tick) <= 1, "publishing should be smooth: n/60 per second"
    ctls, rows = run(f, 120)
    times = np.array([records(rows, i)["time_us"][0] for i in range(rows.shape[0])])
    for c in (0, 1, 299, 599):
        assert np.all(np.diff(times[ctls == c]) == 60_000_000)


# --- firmware schedule -----------------------------------------------------------------

@pytest.mark.parametrize("elevation, hour, level", [
    (-10.0, 20.0, FULL_LEVEL),  # evening, after sunset
    (-30.0, 1.5, DIM_LEVEL),  # late night
    (-5.0, 6.5, FULL_LEVEL),  # morning before sunrise
    (-0.5, 17.0, 0),  # sun still up (upper limb above the horizon)
    (25.0, 12.0, 0),  # day
])
def test_default_profile(elevation: float, hour: float, level: int) -> None:
    assert int(scheduled_level(elevation, hour)) == level


def test_levels_and_power_follow_night_and_day() -> None:
    night, day = fleet(60, 4, start=EVENING), fleet(60, 4, start=NOON)
    _, night_rows = run(night, 60)
    _, day_rows = run(day, 60)
    nr = np.concatenate([records(night_rows, i) for i in range(night_rows.shape[0])])
    dr = np.concatenate([records(day_rows, i) for i in range(day_rows.shape[0])])
    assert np.all(nr["level"] == FULL_LEVEL) and np.all(nr["power_w"] > 25)
    assert np.all(nr["status"] & 0x04) and np.all(nr["ambient_lux"] < 5)
    assert np.all(dr["level"] == 0) and np.all(dr["power_w"] < 1) and np.all(dr["ambient_lux"] > 1000)


def test_energy_counters_grow_with_the_power_played() -> None:
    f = fleet(60, 2)
    ctls, rows = run(f, 181)
    c = 10
    mine = [records(rows, i) for i in np.flatnonzero(ctls == c)]
    e = np.array([r["energy_wh"] for r in mine])
    p = np.array([r["power_w"] for r in mine])
    assert np.all(np.diff(e, axis=0) > 0)
    assert np.allclose(np.diff(e, axis=0), p[1:] / 60.0, rtol=0.02)  # 1 minute at ~constant power


def test_sunset_switches_every_luminaire_on() -> None:
    f = fleet(60, 2, start=datetime(2025, 1, 14, 15, 55, tzinfo=UTC))
    assert f.schedule_level == 0
    run(f, 900)
    assert f.schedule_level == FULL_LEVEL
    assert np.all(f.state.level == FULL_LEVEL)


def test_arc_level_of_fraction_inverts_the_log_curve() -> None:
    levels = np.arange(0, 255)
    assert np.array_equal(arc_level_of_fraction(log_curve_percent(levels) / 100.0), levels)


# --- commands ----------------------------------------------------------------------------

def cmd(model, f: Fleet, **kw) -> bytes:
    base = {"issued_at": f.now, "expires_at": f.now + timedelta(hours=1)}
    return dumps(model(**{**base, **kw}))


def last_records(f: Fleet, c: int, seconds: int = 60) -> np.ndarray:
    ctls, rows = run(f, seconds)
    i = np.flatnonzero(ctls == c)[-1]
    return records(rows, i)


def test_set_level_all_with_duration_then_back_to_schedule() -> None:
    f = fleet(60, 4)
    run(f, 10)
    ack = f.handle_command(7, cmd(SetLevel, f, target="all", level=120, duration_s=150))
    assert ack.status is AckStatus.DONE and ack.controller == "ctl-000008"
    assert np.all(last_records(f, 7)["level"] == 120)
    assert np.all(last_records(f, 8)["level"] == FULL_LEVEL), "other controllers keep the schedule"
    run(f, 100)
    assert np.all(last_records(f, 7)["level"] == FULL_LEVEL), "after duration_s the schedule is back"
    out = f.drain_json()
    assert [(o.kind, o.controller, o.retain) for o in out] == [(Kind.ACK, 7, False)]
    assert json.loads(out[0].payload)["status"] == "done"


def test_set_level_one_luminaire_and_a_group() -> None:
    f = fleet(60, 4)
    run(f, 5)
    f.handle_command(3, cmd(SetLevel, f, target={"luminaire": 2}, level=0))
    f.handle_command(4, cmd(SetLevel, f, target={"group": 2}, level=200))
    assert list(last_records(f, 3)["level"]) == [FULL_LEVEL, FULL_LEVEL, 0, FULL_LEVEL]
    assert list(last_records(f, 4)["level"]) == [FULL_LEVEL, 200, FULL_LEVEL, 200]


@pytest.mark.parametrize("payload_kw, reason", [
    ({"target": {"luminaire": 9}, "level": 10}, "no luminaire 9"),
    ({"target": {"group": 7}, "level": 10}, "group 7 is empty"),
])
def test_impossible_targets_are_refused(payload_kw, reason) -> None:
    f = fleet(60, 4)
    ack = f.handle_command(1, cmd(SetLevel, f, **payload_kw))
    assert ack.status is AckStatus.REFUSED and reason in ack.reason


def test_expired_command_is_refused_and_changes_nothing() -> None:
    f = fleet(60, 4)
    run(f, 120)
    payload = dumps(SetLevel(issued_at=f.start, expires_at=f.start + timedelta(seconds=60),
                             target="all", level=5))
    ack = f.handle_command(2, payload)
    assert ack.status is AckStatus.REFUSED and ack.reason == "expired"
    assert np.all(last_records(f, 2)["level"] == FULL_LEVEL)


def test_identify_and_unsupported_and_invalid_commands() -> None:
    f = fleet(60, 2)
    assert f.handle_command(0, cmd(Identify, f, target="all", duration_s=30)).status is AckStatus.DONE
    sched = json.loads(cmd(SetLevel, f, target="all", level=1))
    sched.update(type="schedule", schedule={"steps": [{"anchor": "sunset", "level": 254}]})
    for k in ("target", "level", "duration_s", "fade_s"):
        sched.pop(k, None)
    ScheduleCommand.model_validate(sched)
    refused = f.handle_command(0, json.dumps(sched))
    assert refused.status is AckStatus.REFUSED and "not simulated" in refused.reason
    bad = f.handle_command(0, json.dumps({"id": "abc-1", "type": "set_level", "level": 999}))
    assert bad.status is AckStatus.REFUSED and bad.command_id == "abc-1"
    assert f.handle_command(0, b"not json") is None


def test_reboot_gives_a_new_boot_id_and_restarts_sequences() -> None:
    f = fleet(60, 4)
    run(f, 61)
    old_boot = int(f.boot_id[5])
    assert f.next_seq[5] > 0
    ack = f.handle_command(5, cmd(Reboot, f, delay_s=0))
    assert ack.status is AckStatus.ACCEPTED and ack.boot_id == old_boot
    f.drain_json()
    ctls, rows = run(f, 61)
    hdr = headers(rows)
    mine = hdr[ctls == 5]
    assert int(mine["boot_id"][0]) != old_boot and int(mine["first_seq"][0]) == 0
    assert np.all(np.diff(mine["first_seq"].astype(np.int64)) == 4)
    states = [loads(State, o.payload) for o in f.drain_json() if o.kind is Kind.STATE]
    assert [(s.online, s.reason and s.reason.value) for s in states] == [(False, "reboot"), (True, None)]
    assert states[1].boot_id == int(mine["boot_id"][0]) and all(o for o in states)


def test_birth_messages_are_valid_states_one_per_controller() -> None:
    f = fleet(50, 3)
    births = f.state_payloads(True)
    assert [c for c, _ in births] == list(range(50))
    parsed = [loads(State, p) for _, p in births]
    assert all(s.online and s.luminaires == 3 for s in parsed)
    assert [s.controller for s in parsed] == list(f.inventory.controller_ids)
    assert len({s.id for s in parsed}) == 50


# --- faults -------------------------------------------------------------------------------

def scenario(f: Fleet):
    return parse_scenario({
        "start": f.start.isoformat(),
        "faults": [
            {"fault": "lamp_failure", "device": "ctl-000002:1", "start": "+2m"},
            {"fault": "comm_loss", "device": "ctl-000003", "start": "+2m", "end": "+4m"},
            {"fault": "tilt", "device": "ctl-000004", "start": "+0s"},
            {"fault": "over_voltage", "device": "ctl-000005:0", "start": "+0s", "params": {"factor": 1.15}},
            {"fault": "stuck_sensor", "device": "ctl-000006:lux", "start": "+0s", "params": {"value": 42}},
            {"fault": "lamp_failure", "device": "lum-0003", "start": "+0s"},  # not in this fleet
        ],
    })


def test_faults_change_the_faulted_devices_only() -> None:
    probe = fleet(60, 2)
    f = fleet(60, 2, scenario=scenario(probe))
    ctls, rows = run(f, 300)
    def recs(c):
        return [records(rows, i) for i in np.flatnonzero(ctls == c)]
    lamp = recs(1)
    assert lamp[0]["failure"][1] == 0 and lamp[-1]["failure"][1] == LuminaireFailure.LAMP
    assert lamp[-1]["power_w"][1] < 1 and lamp[-1]["power_w"][0] > 25 and not lamp[-1]["status"][1] & 0x04
    times = [r["time_us"][0] for r in recs(2)]
    gap = np.diff(times) // 60_000_000
    assert gap.max() >= 2, "comm loss silences the controller for its window"
    assert len(times) < len(recs(0))
    assert np.all(recs(3)[-1]["failure"] & LuminaireFailure.TILT)
    over = recs(4)[-1]
    assert over["voltage_v"][0] > 253 and over["failure"][0] & LuminaireFailure.OVER_VOLTAGE
    assert not over["failure"][1]
    assert np.all(recs(5)[-1]["ambient_lux"] == 42)
    healthy = recs(10)[-1]
    assert np.all(healthy["failure"] == 0)
    hdr = headers(rows)
    seqs = hdr["first_seq"][ctls == 2].astype(np.int64)
    assert np.all(np.diff(seqs) == 2), "a silent controller sends nothing, and skips no sequence"
