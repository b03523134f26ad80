"""A simulated night: D4i active energy agrees with the integral of the model's power."""

import asyncio

import numpy as np
import pytest
from dali.address import Broadcast, Group, Short
from dali.gear import general as g

import hardware.dali as hd
from controller_fw_sim import physics
from controller_fw_sim.dali import SimulatedDaliBus

# (hour from sunset, group 0 level, group 1 level): a street dimming profile
PROFILE = [(0.0, 254, 230), (1.5, 230, 210), (4.0, 200, 170), (5.5, 170, 140),
           (9.5, 210, 170), (11.0, 254, 230)]


def test_night_energy_d4i_vs_integrated_power():
    params = physics.LuminaireParams.uniform(6, clo=True)
    sim = SimulatedDaliBus.with_gear(6, seed=21, params=params)
    sim.state = sim.state.with_inputs(lamp_on_s=np.full(6, 30_000 * 3600.0))
    rng = np.random.default_rng(3)
    dt = 10.0

    async def night():
        bus = hd.InProcessBus(sim)
        for a in range(6):
            await bus.send(g.AddToGroup(Short(a), a % 2))
        await bus.send(g.DTR0(3))
        await bus.send(g.SetFadeTime(Broadcast()))               # 2.8 s fades
        start = [(await hd.read_energy(bus, a)).active_energy_wh for a in range(6)]
        integrated = np.zeros(6)
        steps = int(12 * 3600 / dt)
        schedule = {int(h * 3600 / dt): (l0, l1) for h, l0, l1 in PROFILE}
        for k in range(steps):
            if k in schedule:
                l0, l1 = schedule[k]
                await hd.set_level(bus, Group(0), l0)
                await hd.set_level(bus, Group(1), l1)
            ambient = 12.0 - 6.0 * k / steps
            mains = 230.0 + rng.normal(0.0, 4.0)
            # left Riemann sum of the model's instantaneous power, sampled every dt
            integrated += sim.state.power_w * dt / 3600.0
            sim.advance(dt, ambient_c=ambient, mains_v=mains)
        await bus.send(g.Off(Broadcast()))
        end = [(await hd.read_energy(bus, a)).active_energy_wh for a in range(6)]
        return np.array(end) - np.array(start), integrated

    d4i_wh, integrated_wh = asyncio.run(night())
    assert np.all(integrated_wh > 100)
    assert d4i_wh == pytest.approx(integrated_wh, rel=0.005)
    # D4i counter resolution is 0.1 Wh; the model keeps the exact value
    assert np.allclose(d4i_wh, sim.state.energy_wh, atol=0.1)
