"""hardware.dali transports, typed errors, retries and D4i readers."""

import asyncio

import pytest
from dali.address import Broadcast, Group, Short
from dali.frame import BackwardFrame
from dali.gear import general as g
from dali.gear import led

import hardware.dali as hd
from controller_fw_sim.dali import DaliServerSim, SimulatedDaliBus


class DroppingSink:
    """Loses the answers of the first ``drop`` frames that have one (a noisy bus)."""

    def __init__(self, sim, drop):
        self.sim, self.drop = sim, drop

    def send(self, frame):
        reply = self.sim.send(frame)
        if reply is not None and self.drop > 0:
            self.drop -= 1
            return None
        return reply

    def advance(self, seconds):
        self.sim.advance(seconds)


def run(coro):
    return asyncio.run(coro)


def test_in_process_bus_satisfies_protocol_and_handles_device_type():
    sim = SimulatedDaliBus.with_gear(2)
    bus = hd.InProcessBus(sim)
    assert isinstance(bus, hd.DaliBus)

    async def main():
        sim.set_fault(1, "short_circuit")
        assert await hd.led_failures(bus, 1) == ["short circuit"]
        assert await hd.led_failures(bus, 0) == []
        await bus.send(g.DTR0(1))
        await bus.send(led.SelectDimmingCurve(Short(0)))      # EDT(6) + send twice
        assert (await hd.query(bus, led.QueryDimmingCurve(Short(0)))).raw_value.as_integer == 1
        status = await hd.status(bus, 1)
        assert status.lamp_failure and not status.lamp_on
    run(main())


def test_typed_errors():
    sim = SimulatedDaliBus.with_gear(3)
    bus = hd.InProcessBus(sim)

    async def main():
        with pytest.raises(hd.DaliNoAnswer):
            await hd.query(bus, g.QueryActualLevel(Short(50)), hd.NO_RETRY)
        with pytest.raises(hd.DaliCollision):
            await hd.query(bus, g.QueryActualLevel(Broadcast()))
        sim.gear[2].short_address = 1                      # two gear share address 1
        with pytest.raises(hd.DaliFramingError):
            await hd.query(bus, g.QueryActualLevel(Short(1)))
        with pytest.raises(ValueError):
            await hd.query(bus, g.Off(Short(0)))
    run(main())
    assert issubclass(hd.DaliCollision, hd.DaliError)
    assert issubclass(hd.DaliTimeout, hd.DaliError)


def test_retries_with_capped_backoff():
    sim = SimulatedDaliBus.with_gear(1)
    policy = hd.RetryPolicy(attempts=4, backoff=hd.Backoff(initial_s=0.1, max_s=0.3, jitter=0.0))
    assert [policy.delay(i) for i in (1, 2, 3, 4)] == [0.1, 0.2, 0.3, 0.3]

    async def main():
        bus = hd.InProcessBus(DroppingSink(sim, drop=2))
        t0 = sim.now
        assert await hd.actual_level(bus, 0, policy) == 254
        assert sim.now - t0 == pytest.approx(0.3)          # slept 0.1 + 0.2 (simulated)
        bus = hd.InProcessBus(DroppingSink(sim, drop=5))
        with pytest.raises(hd.DaliNoAnswer):
            await hd.actual_level(bus, 0, hd.RetryPolicy(attempts=2, backoff=hd.Backoff(jitter=0.0)))
        bus = hd.InProcessBus(DroppingSink(sim, drop=3))     # a bank read restarts
        report = await hd.read_energy(bus, 0, retry=policy)
        assert report.active_power_w == pytest.approx(float(sim.state.power_w[0]), abs=0.05)
    run(main())


def test_d4i_typed_values_follow_model():
    sim = SimulatedDaliBus.with_gear(2, seed=5)
    sim.advance(1800.0, mains_v=231.0, ambient_c=20.0)

    async def main():
        bus = hd.InProcessBus(sim)
        info = await hd.read_luminaire_info(bus, 1)
        gear = await hd.read_gear_info(bus, 1)
        e = await hd.read_energy(bus, 1, all_banks=True)
        d = await hd.read_diagnostics(bus, 1)
        return info, gear, e, d
    info, gear, e, d = run(main())
    ident = sim.gear[1].identity
    assert isinstance(info, hd.LuminaireInfo)
    assert info.gtin == ident.luminaire_gtin and info.serial == ident.luminaire_id
    assert info.year_of_manufacture == 2024 and info.week_of_manufacture == 17
    assert info.nominal_power_w == 66 and info.cct_k == 3000 and info.colour == "RAL 7035"
    assert gear.serial == ident.serial and gear.firmware_version == "1.4"
    s = sim.state
    assert e.active_energy_wh == pytest.approx(s.energy_wh[1], abs=0.05)
    assert e.apparent_energy_vah == pytest.approx(s.apparent_energy_vah[1], abs=0.05)
    assert e.loadside_energy_wh == pytest.approx(s.load_energy_wh[1], abs=0.05)
    assert e.loadside_energy_wh < e.active_energy_wh < e.apparent_energy_vah
    assert d.operating_time_s == 1800 and d.light_source_on_time_s == 1800
    assert d.supply_voltage_v == pytest.approx(231.0)
    assert d.supply_frequency_hz == 50 and d.power_factor == pytest.approx(0.98, abs=0.01)
    assert d.gear_temperature_c == round(s.driver_temp_c[1])
    assert d.output_current_pct == 100 and d.lamp_failure is False


def test_diagnostics_count_failures_and_undervoltage():
    sim = SimulatedDaliBus.with_gear(1)

    async def main():
        bus = hd.InProcessBus(sim)
        sim.advance(60.0, mains_v=170.0)                 # under the 180 V threshold
        sim.advance(60.0, mains_v=230.0)
        sim.advance(60.0, mains_v=172.0)
        sim.set_fault(0, "open_circuit")
        sim.advance(60.0)
        d = await hd.read_diagnostics(bus, 0)
        return d
    d = run(main())
    assert d.undervoltage is True and d.undervoltage_count == 2
    assert d.open_circuit is True and d.open_circuit_count == 1
    assert d.lamp_failure is True and d.lamp_failure_count == 1


def test_daliserver_bus_over_tcp():
    sim = SimulatedDaliBus.with_gear(4, seed=8)

    async def main():
        async with DaliServerSim(sim) as server:
            async with hd.DaliServerBus("127.0.0.1", server.port, timeout_s=2.0) as bus:
                await bus.send(g.AddToGroup(Short(2), 4))
                await hd.set_level(bus, Group(4), 123)
                assert await hd.actual_level(bus, 2) == 123
                assert await hd.actual_level(bus, 1) == 254
                with pytest.raises(hd.DaliCollision):
                    await hd.query(bus, g.QueryDeviceType(Broadcast()))
                assert await hd.led_failures(bus, 3) == []        # EDT over daliserver
                sim.advance(600.0)
                e = await hd.read_energy(bus, 2)
                assert e.active_energy_wh == pytest.approx(sim.state.energy_wh[2], abs=0.05)
    run(main())


def test_daliserver_bus_timeout_and_unreachable():
    async def silent(reader, writer):
        await reader.read(100)
        await asyncio.sleep(10)

    async def main():
        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        bus = hd.DaliServerBus("127.0.0.1", port, timeout_s=0.2)
        with pytest.raises(hd.DaliTimeout):
            await bus.send(g.QueryActualLevel(Short(0)))
        await bus.close()
        server.close()
        await server.wait_closed()
        with pytest.raises(hd.DaliError):
            await hd.DaliServerBus("127.0.0.1", port, timeout_s=0.5).send(g.Off(Short(0)))
    run(main())


class FakeAsyncDriver:
    """Stands in for a python-dali async driver (hid.tridonic, serial...): same send()."""

    def __init__(self, sim):
        self.sim = sim

    async def send(self, command):
        if command.devicetype:
            self.sim.send(g.EnableDeviceType(command.devicetype).frame)
        reply = self.sim.send(command.frame)
        if command.sendtwice:
            reply = self.sim.send(command.frame)
        return command.response(reply) if command.response else None


class FakeSyncDriver:
    def __init__(self, sim):
        self.sim = sim

    def send(self, command):
        reply = self.sim.send(command.frame)
        if command.sendtwice:
            reply = self.sim.send(command.frame)
        return command.response(reply) if command.response else None


@pytest.mark.parametrize("wrap", [
    lambda sim: hd.PythonDaliDriverBus(FakeAsyncDriver(sim)),
    lambda sim: hd.SyncPythonDaliDriverBus(FakeSyncDriver(sim)),
], ids=["async-driver", "sync-driver"])
def test_python_dali_driver_adapters(wrap):
    sim = SimulatedDaliBus.with_gear(2)
    bus = wrap(sim)

    async def main():
        await hd.set_level(bus, Short(0), 99)
        assert await hd.actual_level(bus, 0) == 99
        assert await hd.led_failures(bus, 1) == []
        await bus.close()
    run(main())


def test_daliserver_reply_decoding_matches_python_dali():
    # statuses the simulator sends decode through python-dali's own unpack_response
    from dali.driver.daliserver import DaliServer
    d = DaliServer()
    q = g.QueryActualLevel(Short(0))
    assert d.unpack_response(q, bytes([2, 1, 77, 0])).raw_value == BackwardFrame(77)
    assert d.unpack_response(q, bytes([2, 0, 0, 0])).raw_value is None
    assert d.unpack_response(q, bytes([2, 255, 0, 0])).raw_value.error
