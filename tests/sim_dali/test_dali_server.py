"""python-dali's own daliserver driver against the simulated bus served over TCP."""

import asyncio
import socket

import pytest
from dali.address import Broadcast, Short
from dali.driver.daliserver import DaliServer
from dali.gear import general as g
from dali.memory import energy

from controller_fw_sim.dali import DaliServerSim, DaliServerThread, SimulatedDaliBus


def run_sequence(driver, seq):
    """Drive a python-dali sequence with a blocking driver, as python-dali users do."""
    response = None
    try:
        while True:
            command = seq.send(response)
            response = driver.send(command)
    except StopIteration as stop:
        return stop.value


@pytest.mark.parametrize("persistent", [False, True])
def test_python_dali_daliserver_driver_levels_and_energy(persistent):
    bus = SimulatedDaliBus.with_gear(3, seed=3)
    with DaliServerThread(bus) as server:
        assert server.port > 0
        with DaliServer("127.0.0.1", server.port,
                        multiple_frames_per_connection=persistent) as driver:
            driver.send(g.DAPC(Short(1), 200))
            assert driver.send(g.QueryActualLevel(Short(1))).value == 200
            assert driver.send(g.QueryActualLevel(Short(0))).value == 254
            # send-twice configuration through the driver (it repeats the frame itself)
            driver.send(g.DTR0(180))
            driver.send(g.SetMaxLevel(Short(1)))
            assert driver.send(g.QueryMaxLevel(Short(1))).value == 180
            assert driver.send(g.QueryActualLevel(Short(1))).value == 180
            # a broadcast query answered by three gear is a framing error ("yes")
            present = driver.send(g.QueryControlGearPresent(Broadcast()))
            assert present.raw_value.error and present.value is True
            assert driver.send(g.QueryControlGearPresent(Short(40))).value is False

            with bus.lock:
                bus.advance(2 * 3600.0)
            expected_wh = float(bus.state.energy_wh[1])
            wh = run_sequence(driver, energy.ActiveEnergy.read(Short(1)))
            w = run_sequence(driver, energy.ActivePower.read(Short(1)))
    assert float(wh) == pytest.approx(expected_wh, abs=0.05)      # 0.1 Wh resolution
    assert float(w) == pytest.approx(float(bus.state.power_w[1]), abs=0.05)
    assert 20 < float(wh) < 2 * 66


def test_async_server_port_zero_and_bad_request():
    async def main():
        bus = SimulatedDaliBus.with_gear(1)
        async with DaliServerSim(bus, port=0) as server:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(bytes([2, 0, 0x01, 0xA0]))         # QUERY ACTUAL LEVEL, short 0
            assert await reader.readexactly(4) == bytes([2, 1, 254, 0])
            writer.write(bytes([2, 0, 0x03, 0xA0]))         # short 1: nobody
            assert await reader.readexactly(4) == bytes([2, 0, 0, 0])
            writer.write(bytes([9, 9, 0, 0]))
            assert (await reader.readexactly(4))[1] == 2
            writer.close()
            await writer.wait_closed()
    asyncio.run(main())


def test_server_listens_on_loopback_only():
    bus = SimulatedDaliBus.with_gear(1)
    with DaliServerThread(bus) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=2) as s:
            s.sendall(bytes([2, 0, 0xFF, 0x91]))            # QUERY PRESENT broadcast
            assert s.recv(4) == bytes([2, 1, 0xFF, 0])


def test_server_clock_drives_simulated_time():
    fake_now = [1000.0]
    bus = SimulatedDaliBus.with_gear(1)

    async def main():
        async with DaliServerSim(bus, clock=lambda: fake_now[0]) as server:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)

            async def frame(a, b):
                writer.write(bytes([2, 0, a, b]))
                return await reader.readexactly(4)
            await frame(0xA3, 4)                       # DTR0 4
            await frame(0x01, 0x2E)                    # SET FADE TIME, sent twice
            await frame(0x01, 0x2E)
            await frame(0x00, 104)                     # DAPC 104: 2 s fade from 254
            fake_now[0] += 1.0
            assert (await frame(0x01, 0xA0))[2] == 179
            fake_now[0] += 5.0
            assert (await frame(0x01, 0xA0))[2] == 104
            writer.close()
            await writer.wait_closed()
    asyncio.run(main())
    assert bus.now == pytest.approx(6.0)
