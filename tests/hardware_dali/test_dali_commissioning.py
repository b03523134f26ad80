"""Commissioning randomly addressed gear through hardware.dali and python-dali's sequence."""

import asyncio

import pytest
from dali.address import Short
from dali.gear import general as g

import hardware.dali as hd
from controller_fw_sim.dali import DaliServerSim, SimulatedDaliBus


def _commission(sim, **kw):
    messages = []

    async def main():
        bus = hd.InProcessBus(sim)
        found = await hd.commission(bus, progress_cb=lambda p: messages.append(str(p)), **kw)
        return found, bus.frames_sent
    found, frames = asyncio.run(main())
    return found, messages, frames


def test_64_gear_with_forced_random_address_collisions():
    sim = SimulatedDaliBus.with_gear(64, addressed=False, seed=11)
    sim.force_random_address([12, 13, 14], 0x00F00F)       # a triple on one address...
    sim.force_random_address([5, 41], 0x3A0000)            # ...and a pair, which draws the
    sim.force_random_address([5, 41], 0x3A0000)            # same value again after a restart
    found, messages, _ = _commission(sim)
    assert found == list(range(64))
    shorts = [gear.short_address for gear in sim.gear]
    assert sorted(shorts) == list(range(64))                # 64 distinct addresses
    clashes = [m for m in messages if "same random address" in m]
    assert len(clashes) >= 2                                # both collisions seen, resolved
    for a in (0, 31, 63):
        assert sim.send_command(g.QueryControlGearPresent(Short(a))).value is True


def test_commissioning_keeps_existing_addresses():
    sim = SimulatedDaliBus.with_gear(6, addressed=False, seed=2)
    sim.gear[0].short_address = 0
    sim.gear[1].short_address = 3
    found, _, _ = _commission(sim)
    assert found == list(range(6))
    assert sim.gear[0].short_address == 0 and sim.gear[1].short_address == 3


def test_readdress_and_restricted_addresses():
    sim = SimulatedDaliBus.with_gear(4, addressed=True, seed=4)
    found, _, _ = _commission(sim, readdress=True, available=[10, 20, 30, 40])
    assert found == [10, 20, 30, 40]


def test_commissioning_over_daliserver_tcp():
    sim = SimulatedDaliBus.with_gear(8, addressed=False, seed=9)
    sim.force_random_address([2, 6], 0x808080)

    async def main():
        async with DaliServerSim(sim) as server:
            async with hd.DaliServerBus("127.0.0.1", server.port) as bus:
                return await hd.commission(bus)
    assert asyncio.run(main()) == list(range(8))


@pytest.mark.slow
def test_64_gear_commissioning_is_quick():
    import time
    sim = SimulatedDaliBus.with_gear(64, addressed=False, seed=5)
    t = time.perf_counter()
    _, _, frames = _commission(sim)
    assert time.perf_counter() - t < 20 and frames > 64 * 24
