"""The simulated cabinet meter: read through pymodbus with the SDM630 profile; energy integration."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from pymodbus.client import AsyncModbusTcpClient

from controller_fw_sim.modbus_meter import MeterConfig, MeterModel, MeterServer, phase_currents
from hardware.modbus import ModbusDevice, load_profile, tcp_client

SDM630 = load_profile("eastron_sdm630")


def test_plain_pymodbus_client_reads_the_meter_through_the_sdm630_profile():
    """Read as any pymodbus user would: read_input_registers + convert_from_registers."""
    model = MeterModel(MeterConfig(seed=3), 24)
    for _ in range(30):
        reading = model.update(60.0, np.full(24, 48.0))

    async def scenario():
        async with MeterServer() as server:
            server.publish(reading)
            client = AsyncModbusTcpClient("127.0.0.1", port=server.port, timeout=1)
            assert await client.connect()
            got = {}
            for name in (
                "voltage_l1",
                "voltage_l2",
                "voltage_l3",
                "power_total",
                "energy_import_kwh",
                "frequency",
            ):
                reg = SDM630.register(name)
                rr = await client.read_input_registers(reg.address, count=2, device_id=1)
                assert not rr.isError()
                got[name] = client.convert_from_registers(
                    rr.registers, client.DATATYPE.FLOAT32, word_order="big"
                )
            client.close()
            return got

    got = asyncio.run(scenario())
    for k, name in enumerate(("voltage_l1", "voltage_l2", "voltage_l3")):
        assert got[name] == pytest.approx(reading.voltage_v[k], rel=1e-6)
    assert got["power_total"] == pytest.approx(reading.power_total_w, rel=1e-6)
    assert got["energy_import_kwh"] == pytest.approx(model.energy_import_kwh, rel=1e-6)
    assert got["frequency"] == pytest.approx(50.0, abs=0.1)
    assert reading.power_total_w > 24 * 48.0  # cable losses on top of the luminaires


def test_modbus_device_reads_every_profile_register_in_one_request():
    model = MeterModel(MeterConfig(seed=5), 9)
    reading = model.update(
        3600.0, np.array([30, 40, 50, 60, 70, 80, 90, 100, 110.0]), leakage_a=[0.1, 0.0, 0.2]
    )
    expected = reading.register_values()

    async def scenario():
        async with MeterServer() as server:
            server.publish(reading)
            async with ModbusDevice(SDM630, tcp_client("127.0.0.1", server.port)) as device:
                values = await device.read()
                return values, device.requests_sent, server.requests_received

    values, sent, served = asyncio.run(scenario())
    assert (sent, served) == (1, 1)
    assert set(values) == set(SDM630.names)
    for name, value in values.items():
        assert value == pytest.approx(expected[name], rel=1e-6, abs=1e-6), name


def test_same_server_serves_the_em24_profile_with_scaled_integers():
    em24 = load_profile("carlo_gavazzi_em24")
    reading = MeterModel(MeterConfig(seed=1), 6).update(900.0, np.full(6, 75.0))
    expected = reading.register_values()

    async def scenario():
        async with MeterServer(profile=em24) as server:
            server.publish(reading)
            async with ModbusDevice(em24, tcp_client("127.0.0.1", server.port)) as device:
                return await device.read()

    values = asyncio.run(scenario())
    for name, value in values.items():
        spec = em24.register(name)
        assert value == pytest.approx(expected[name], abs=abs(spec.scale) * 0.51), name


def test_kwh_over_a_night_equals_the_integral_of_luminaire_power_losses_and_leakage():
    """14 h night, dimming profile, 1-minute steps; reference integral at 1-second resolution."""
    n = 36
    rated = np.linspace(40.0, 120.0, n)
    night_s = 14 * 3600.0
    leak_a = 0.25
    config = MeterConfig(voltage_sigma_frac=0.0, frequency_sigma_hz=0.0, cable_resistance_ohm=0.8)

    def level(t_s: float | np.ndarray) -> np.ndarray:
        # full until 23:00, 50 % deep night, ramp back to 80 % before dawn
        h = np.asarray(t_s) / 3600.0
        return np.where(h < 6, 1.0, np.where(h < 11, 0.5, 0.5 + 0.3 * (h - 11) / 3))

    def power(t_s: float) -> np.ndarray:
        return rated * float(level(t_s))

    model = MeterModel(config, n)
    steps = int(night_s / 60)
    for _ in range(steps):
        model.update(60.0, power, leakage_a=leak_a)

    # Independent reference: luminaire power at 1 s, plus I^2 R and V*I_leak per phase.
    t = np.arange(0.0, night_s, 1.0) + 0.5
    phase = np.arange(n) % 3
    lum_w = np.outer(level(t), rated)  # (time, luminaire)
    p_phase = np.stack([lum_w[:, phase == k].sum(axis=1) for k in range(3)], axis=1)
    q_phase = p_phase * np.tan(np.arccos(config.luminaire_power_factor))
    v = config.nominal_voltage_v
    p_phase[:, 0] += v * leak_a
    current = phase_currents(np.full_like(p_phase, v), p_phase, q_phase, config.cable_resistance_ohm)
    total_w = p_phase.sum(axis=1) + (current**2 * config.cable_resistance_ohm).sum(axis=1)
    reference_kwh = total_w.sum() / 3.6e6

    assert model.energy_import_kwh == pytest.approx(reference_kwh, rel=0.005)
    split = model.energy_luminaires_kwh + model.energy_cable_loss_kwh + model.energy_leakage_kwh
    assert split == pytest.approx(model.energy_import_kwh, rel=1e-12)
    assert model.energy_leakage_kwh == pytest.approx(v * leak_a * night_s / 3.6e6, rel=1e-9)
    assert model.energy_cable_loss_kwh > 0


def test_phase_currents_match_the_power_balance():
    rng = np.random.default_rng(0)
    v = rng.uniform(200, 250, 100)
    p = rng.uniform(0, 5000, 100)
    q = rng.uniform(0, 2000, 100)
    r = rng.uniform(0, 1.0, 100)
    i = phase_currents(v, p, q, r)
    assert np.allclose((v * i) ** 2, (p + i**2 * r) ** 2 + q**2, rtol=1e-9)
    assert np.allclose(phase_currents(v, p, q, 0.0), np.hypot(p, q) / v)


def test_meter_model_is_reproducible_and_spreads_luminaires_over_phases():
    a = MeterModel(MeterConfig(seed=9), 7)
    b = MeterModel(MeterConfig(seed=9), 7)
    pw = np.arange(7) * 10.0 + 10
    ra, rb = a.update(60, pw), b.update(60, pw)
    assert np.array_equal(ra.voltage_v, rb.voltage_v) and ra.frequency_hz == rb.frequency_hz
    lum_per_phase = np.bincount(a.phase_of_luminaire, weights=pw, minlength=3)
    assert np.allclose(lum_per_phase, [10 + 40 + 70, 20 + 50, 30 + 60])
    with pytest.raises(ValueError):
        a.update(60, np.ones(3))
