"""Fleet sensor records without the network: cabinet meters over a night, urban sensors, faults."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from controller_fw_sim.faults import parse_scenario
from controller_fw_sim.fleet import DEFAULT_START, Fleet
from controller_fw_sim.fleet_inventory import build_inventory, sensor_device_id
from controller_fw_sim.fleet_sensors import METER_SENSOR_INDEX, URBAN_QUANTITIES, URBAN_SENSOR_INDEX
from wire.codec import decode_batch, encode_sensor
from wire.records import Quantity
from wire.sensor_channels import METER_QUANTITIES, meter_records

UTC = UTC
FAR_FUTURE_US = int(datetime(2100, 1, 1, tzinfo=UTC).timestamp() * 1e6)
NIGHT_S = 16 * 3600  # 15:55 UTC to 07:55 UTC: sunset to after sunrise
METER_Q = [int(q) for q in METER_QUANTITIES.values()]
URBAN_Q = [int(q) for _, q in URBAN_QUANTITIES]


def run(f: Fleet, seconds: float, tick_s: float):
    """Advance tick by tick; returns (controllers, payload bytes) of luminaire and of sensor messages."""
    lum_c, lum_p, sen_c, sen_p = [], [], [], []
    t = f.t_s
    for _ in range(int(round(seconds / tick_s))):
        t += tick_s
        out = f.advance(t)
        lum_c += out.controllers.tolist()
        lum_p += [r.tobytes() for r in out.payloads]
        for rows in out.sensors:
            sen_c += rows.controllers.tolist()
            sen_p += [r.tobytes() for r in rows.payloads]
    return np.array(lum_c, dtype=np.int64), lum_p, np.array(sen_c, dtype=np.int64), sen_p


def assert_sensor_streams_gap_free(f: Fleet, ctls: np.ndarray, batch) -> None:
    """Per controller, sensor messages number their records 0, 1, 2, ... without gap."""
    for c in np.unique(ctls).tolist():
        mine = np.flatnonzero(ctls == c)
        first = batch.msg_first_seq[mine].astype(np.int64)
        count = batch.msg_count[mine].astype(np.int64)
        assert first[0] == 0 and np.array_equal(first[1:], np.cumsum(count)[:-1]), c
        assert int(f.next_sensor_seq[c]) == int(count.sum())
        assert np.all(batch.msg_boot[mine] == f.boot_id[c])


def test_meter_energy_over_a_night_is_the_luminaires_plus_losses_plus_leakage() -> None:
    inv = build_inventory(60, 2, seed=7)
    leaky = 3  # cabinet index with an earth leakage from 22:00 to 02:00 UTC
    scenario = parse_scenario({"start": DEFAULT_START.isoformat(), "faults": [
        {"fault": "cabinet_leakage", "device": inv.cabinet_ids[leaky], "start": "2025-01-14T22:00:00Z",
         "end": "2025-01-15T02:00:00Z", "params": {"current_a": 0.3}},
    ]})
    f = Fleet(inv, seed=7, scenario=scenario, multifunction_fraction=0.0)
    energy0 = f.state.energy_wh.copy()
    lum_c, lum_p, sen_c, sen_p = run(f, NIGHT_S, tick_s=20.0)

    lum = decode_batch(lum_p, FAR_FUTURE_US)
    sen = decode_batch(sen_p, FAR_FUTURE_US)
    assert len(lum.rejects) == 0 and len(sen.rejects) == 0
    meters = f.meters
    n_cab = len(inv.cabinet_ids)
    assert sorted(set(sen_c.tolist())) == sorted(meters.segment.tolist()), "segment controllers only"
    assert np.all(sen.msg_count == len(METER_QUANTITIES))
    assert np.all(sen.sensor["sensor"] == METER_SENSOR_INDEX)
    assert np.array_equal(sen.sensor["quantity"].reshape(-1, len(METER_Q)), np.tile(METER_Q, (len(sen_p), 1)))
    assert_sensor_streams_gap_free(f, sen_c, sen)
    reads = np.bincount(sen_c, minlength=inv.n_controllers)[meters.segment]
    assert np.all(np.abs(reads - NIGHT_S / 60) <= 1), "one meter reading per telemetry interval"

    # luminaire energy per cabinet: last counter each luminaire reported, less its start
    rec_ctl = lum_c[lum.lum_msg]
    last = {}
    for c, j, e in zip(
        rec_ctl.tolist(),
        lum.luminaire["luminaire"].tolist(),
        lum.luminaire["energy_wh"].tolist(),
        strict=True,
    ):
        last[c * 2 + j] = e  # records come in time order
    lum_wh = np.array([last[g] for g in range(inv.n_luminaires)]) - energy0
    cab_lum_kwh = np.bincount(inv.controller_cabinet[inv.luminaire_controller], weights=lum_wh,
                              minlength=n_cab) / 1000.0
    energy_rec = sen.sensor["quantity"] == Quantity.ENERGY_KWH
    meter_kwh = np.zeros(n_cab)
    for c, v in zip(
        sen_c[sen.sensor_msg[energy_rec]].tolist(), sen.sensor["value"][energy_rec].tolist(), strict=True
    ):
        meter_kwh[meters.cabinet_of[c]] = v
    loss = np.array([m.energy_cable_loss_kwh for m in meters.models])
    leak = np.array([m.energy_leakage_kwh for m in meters.models])

    assert np.all(cab_lum_kwh > 1.0), "a winter night lights every cabinet"
    assert np.all((loss > 1e-4 * cab_lum_kwh) & (loss < 0.1 * cab_lum_kwh)), "cable losses are a few %"
    expected_leak = 230.0 * 0.3 * 4.0 / 1000.0
    assert leak[leaky] == pytest.approx(expected_leak, rel=0.03)
    assert np.all(np.delete(leak, leaky) == 0.0)
    np.testing.assert_allclose(meter_kwh, cab_lum_kwh + loss + leak, rtol=2e-3)
    assert meter_kwh[leaky] - cab_lum_kwh[leaky] - loss[leaky] == pytest.approx(expected_leak, rel=0.1)

    # the segment controller's last message is byte for byte what an agent would send
    c = int(meters.segment[leaky])
    i = int(np.flatnonzero(sen_c == c)[-1])
    values = meters.models[leaky].reading.register_values()
    records = meter_records(int(sen.sensor["time_us"][sen.sensor_msg == i][0]), METER_SENSOR_INDEX, values)
    assert sen_p[i] == encode_sensor(int(f.boot_id[c]), int(sen.msg_first_seq[i]), records)


def test_urban_sensors_on_a_fraction_of_poles_with_stuck_sensors() -> None:
    inv = build_inventory(80, 2, seed=4)
    probe = Fleet(inv, seed=4, multifunction_fraction=0.25)
    multi = probe.urban.controllers
    assert multi.shape[0] == 20
    fixed, frozen = int(multi[0]), int(multi[1])
    scenario = parse_scenario({"start": "2025-01-14T19:00:00Z", "faults": [
        {"fault": "stuck_sensor", "device": sensor_device_id(inv.controller_ids[fixed], "no2"),
         "start": "+3m", "params": {"value": 99.0}},
        {"fault": "stuck_sensor", "device": sensor_device_id(inv.controller_ids[frozen], "temperature"),
         "start": "+3m"},
    ]})
    f = Fleet(inv, start=datetime(2025, 1, 14, 19, 0, tzinfo=UTC), seed=4, scenario=scenario,
              multifunction_fraction=0.25)
    assert np.array_equal(f.urban.controllers, multi), "the same poles for a seed"
    _, _, sen_c, sen_p = run(f, 600, tick_s=5.0)
    sen = decode_batch(sen_p, FAR_FUTURE_US)
    assert len(sen.rejects) == 0
    assert_sensor_streams_gap_free(f, sen_c, sen)

    urban = sen.sensor["sensor"] == URBAN_SENSOR_INDEX
    urban_ctl = sen_c[sen.sensor_msg[urban]]
    assert set(urban_ctl.tolist()) == set(multi.tolist()), "multifunction poles only"
    rec = sen.sensor[urban].reshape(-1, len(URBAN_Q))
    rec_ctl = urban_ctl.reshape(-1, len(URBAN_Q))[:, 0]
    assert np.array_equal(rec["quantity"], np.tile(URBAN_Q, (rec.shape[0], 1)))
    assert np.bincount(rec_ctl, minlength=80)[multi].tolist() == [10] * 20, "one reading per interval"
    noise, pm25, no2, temp, hum = (rec["value"][:, j] for j in range(5))
    assert np.all((noise > 25) & (noise < 100)) and np.all((pm25 > 0) & (pm25 < 100))
    assert np.all((temp > -15) & (temp < 25)) and np.all((hum >= 15) & (hum <= 100))

    t0_us = int(datetime(2025, 1, 14, 19, 3, tzinfo=UTC).timestamp() * 1e6)
    t = rec["time_us"][:, 0]
    mine = rec_ctl == fixed
    assert np.all(no2[mine & (t >= t0_us)] == 99.0) and np.all(no2[mine & (t < t0_us)] != 99.0)
    mine = rec_ctl == frozen
    before, after = temp[mine & (t < t0_us)], temp[mine & (t >= t0_us)]
    assert after.shape[0] >= 6 and np.all(after == before[-1]), "frozen at the value last seen"
    others = rec_ctl == int(multi[2])
    assert np.unique(temp[others]).shape[0] > 5, "healthy sensors keep moving"


def test_meter_and_urban_records_share_one_sensor_stream_and_restart_at_reboot() -> None:
    from wire.messages import Reboot, dumps

    inv = build_inventory(30, 1, seed=2)
    f = Fleet(inv, start=datetime(2025, 1, 14, 19, 0, tzinfo=UTC), seed=2, multifunction_fraction=1.0)
    c = int(f.meters.segment[0])
    _, _, sen_c, sen_p = run(f, 180, tick_s=10.0)
    mine = [p for k, p in zip(sen_c.tolist(), sen_p, strict=True) if k == c]
    batch = decode_batch(mine, FAR_FUTURE_US)
    assert batch.msg_count.tolist() == [6, 5] * 3 and batch.msg_first_seq.tolist() == [0, 6, 11, 17, 22, 28]
    assert f.next_seq[c] == 3, "luminaire records keep their own stream"
    cmd = Reboot(issued_at=f.now, expires_at=f.time_at(f.t_s + 3600), delay_s=0)
    f.handle_command(c, dumps(cmd))
    _, _, sen_c, sen_p = run(f, 60, tick_s=10.0)
    mine = [p for k, p in zip(sen_c.tolist(), sen_p, strict=True) if k == c]
    batch = decode_batch(mine, FAR_FUTURE_US)
    assert batch.msg_first_seq.tolist() == [0, 6] and np.all(batch.msg_boot == f.boot_id[c])
