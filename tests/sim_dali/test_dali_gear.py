"""The simulated gear state machine, driven frame by frame (sans-I/O)."""

import pytest
from dali.address import Broadcast, BroadcastUnaddressed, Group, Short
from dali.frame import BackwardFrameError, ForwardFrame
from dali.gear import general as g
from dali.gear import led
from hypothesis import given, settings
from hypothesis import strategies as st

from controller_fw_sim.dali import SimulatedDaliBus
from controller_fw_sim.dali.gear import LedGear


@pytest.fixture
def bus():
    return SimulatedDaliBus.with_gear(4, seed=7)


def raw(bus, command):
    r = bus.send_command(command)
    return None if r is None or r.raw_value is None else (
        "collision" if r.raw_value.error else r.raw_value.as_integer)


def configure(bus, command, dtr0):
    bus.send_command(g.DTR0(dtr0))
    bus.send_command(command)


# (setup commands, query, expected answer) on gear 0 unless addressed otherwise
CASES = [
    ("power-on level", [], g.QueryActualLevel(Short(0)), 254),
    ("dapc", [g.DAPC(Short(0), 180)], g.QueryActualLevel(Short(0)), 180),
    ("dapc other gear untouched", [g.DAPC(Short(1), 180)], g.QueryActualLevel(Short(0)), 254),
    ("off", [g.Off(Short(0))], g.QueryActualLevel(Short(0)), 0),
    ("recall min", [g.RecallMinLevel(Short(0))], g.QueryActualLevel(Short(0)), 85),
    ("recall max", [g.Off(Short(0)), g.RecallMaxLevel(Short(0))],
     g.QueryActualLevel(Short(0)), 254),
    ("dapc below min clamps", [g.DAPC(Short(0), 10)], g.QueryActualLevel(Short(0)), 85),
    ("limit error", [g.DAPC(Short(0), 10)], g.QueryLimitError(Short(0)), 0xFF),
    ("no limit error", [g.DAPC(Short(0), 100)], g.QueryLimitError(Short(0)), None),
    ("step up", [g.DAPC(Short(0), 100), g.StepUp(Short(0))], g.QueryActualLevel(Short(0)), 101),
    ("step down", [g.DAPC(Short(0), 100), g.StepDown(Short(0))],
     g.QueryActualLevel(Short(0)), 99),
    ("step up when off stays off", [g.Off(Short(0)), g.StepUp(Short(0))],
     g.QueryActualLevel(Short(0)), 0),
    ("on and step up", [g.Off(Short(0)), g.OnAndStepUp(Short(0))],
     g.QueryActualLevel(Short(0)), 85),
    ("step down and off", [g.RecallMinLevel(Short(0)), g.StepDownAndOff(Short(0))],
     g.QueryActualLevel(Short(0)), 0),
    ("mask keeps level", [g.DAPC(Short(0), 150), g.DAPC(Short(0), "MASK")],
     g.QueryActualLevel(Short(0)), 150),
    ("broadcast", [g.DAPC(Broadcast(), 120)], g.QueryActualLevel(Short(3)), 120),
    ("status after power-on", [], g.QueryStatus(Short(0)), 0b1010_0100),
    ("status after arc command", [g.DAPC(Short(0), 200)], g.QueryStatus(Short(0)), 0b0010_0100),
    ("status off", [g.Off(Short(0))], g.QueryStatus(Short(0)), 0b0010_0000),
    ("device type", [], g.QueryDeviceType(Short(0)), 6),
    ("present", [], g.QueryControlGearPresent(Short(2)), 0xFF),
    ("absent", [], g.QueryControlGearPresent(Short(9)), None),
    ("physical minimum", [], g.QueryPhysicalMinimum(Short(0)), 85),
    ("lamp on", [], g.QueryLampPowerOn(Short(0)), 0xFF),
    ("lamp failure none", [], g.QueryLampFailure(Short(0)), None),
    ("light source LED", [], g.QueryLightSourceType(Short(0)), 6),
    ("version 2.0", [], g.QueryVersionNumber(Short(0)), 8),
    ("missing short address", [], g.QueryMissingShortAddress(Short(0)), None),
    ("broadcast query collides", [], g.QueryActualLevel(Broadcast()), "collision"),
    ("unaddressed broadcast: none", [], g.QueryActualLevel(BroadcastUnaddressed()), None),
    ("groups", [g.AddToGroup(Short(0), 3), g.AddToGroup(Short(0), 9)],
     g.QueryGroupsZeroToSeven(Short(0)), 0b1000),
    ("groups high", [g.AddToGroup(Short(0), 3), g.AddToGroup(Short(0), 9)],
     g.QueryGroupsEightToFifteen(Short(0)), 0b10),
    ("group remove", [g.AddToGroup(Short(0), 3), g.RemoveFromGroup(Short(0), 3)],
     g.QueryGroupsZeroToSeven(Short(0)), 0),
    ("group dapc", [g.AddToGroup(Short(1), 5), g.DAPC(Group(5), 99)],
     g.QueryActualLevel(Short(1)), 99),
    ("group dapc skips non-members", [g.AddToGroup(Short(1), 5), g.DAPC(Group(5), 99)],
     g.QueryActualLevel(Short(0)), 254),
    ("scene unset", [], g.QuerySceneLevel(Short(0), 4), 0xFF),
    ("scene not set: go to scene ignored", [g.GoToScene(Short(0), 4)],
     g.QueryActualLevel(Short(0)), 254),
    ("dtr0", [g.DTR0(42)], g.QueryContentDTR0(Short(0)), 42),
    ("dtr1", [g.DTR1(43)], g.QueryContentDTR1(Short(0)), 43),
    ("dtr2", [g.DTR2(44)], g.QueryContentDTR2(Short(0)), 44),
    ("store actual in dtr0", [g.DAPC(Short(0), 177), g.StoreActualLevelInDTR0(Short(0))],
     g.QueryContentDTR0(Short(0)), 177),
    ("fade time+rate default", [], g.QueryFadeTimeFadeRate(Short(0)), 0x07),
    ("dt6 failure status clean", [], led.QueryFailureStatus(Short(0)), 0),
    ("dt6 dimming curve", [], led.QueryDimmingCurve(Short(0)), 0),
    ("dt6 gear type", [], led.QueryGearType(Short(0)), 0b0101),
]


@pytest.mark.parametrize("setup, query, expected",
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_gear_table(bus, setup, query, expected):
    for command in setup:
        bus.send_command(command)
    assert raw(bus, query) == expected


CONFIG_CASES = [
    ("max level", g.SetMaxLevel(Short(0)), 200, g.QueryMaxLevel(Short(0)), 200),
    ("max level below min -> min", g.SetMaxLevel(Short(0)), 50, g.QueryMaxLevel(Short(0)), 85),
    ("min level", g.SetMinLevel(Short(0)), 100, g.QueryMinLevel(Short(0)), 100),
    ("min below physical", g.SetMinLevel(Short(0)), 3, g.QueryMinLevel(Short(0)), 85),
    ("power-on level", g.SetPowerOnLevel(Short(0)), 150, g.QueryPowerOnLevel(Short(0)), 150),
    ("system failure level", g.SetSystemFailureLevel(Short(0)), 0,
     g.QuerySystemFailureLevel(Short(0)), 0),
    ("fade time", g.SetFadeTime(Short(0)), 4, g.QueryFadeTimeFadeRate(Short(0)), 0x47),
    ("fade time capped", g.SetFadeTime(Short(0)), 99, g.QueryFadeTimeFadeRate(Short(0)), 0xF7),
    ("fade rate", g.SetFadeRate(Short(0)), 2, g.QueryFadeTimeFadeRate(Short(0)), 0x02),
    ("extended fade", g.SetExtendedFadeTime(Short(0)), 0x23,
     g.QueryExtendedFadeTime(Short(0)), 0x23),
    ("scene", g.SetScene(Short(0), 2), 99, g.QuerySceneLevel(Short(0), 2), 99),
    ("short address", g.SetShortAddress(Short(0)), (33 << 1) | 1,
     g.QueryControlGearPresent(Short(33)), 0xFF),
    ("dimming curve linear", led.SelectDimmingCurve(Short(0)), 1,
     led.QueryDimmingCurve(Short(0)), 1),
]


@pytest.mark.parametrize("command, dtr0, query, expected",
                         [c[1:] for c in CONFIG_CASES], ids=[c[0] for c in CONFIG_CASES])
def test_config_commands(bus, command, dtr0, query, expected):
    configure(bus, command, dtr0)
    assert raw(bus, query) == expected


def test_config_needs_send_twice(bus):
    bus.send_command(g.DTR0(200))
    cmd = g.SetMaxLevel(Short(0))
    bus.send(cmd.frame)                     # once only
    bus.send(g.QueryActualLevel(Short(0)).frame)
    bus.send(cmd.frame)                     # not a pair: another frame came between
    assert raw(bus, g.QueryMaxLevel(Short(0))) == 254
    bus.send(cmd.frame)
    bus.send(cmd.frame)                     # two in a row form a pair
    assert raw(bus, g.QueryMaxLevel(Short(0))) == 200


def test_send_twice_window_is_100ms(bus):
    bus.send_command(g.DTR0(200))
    cmd = g.SetMaxLevel(Short(0))
    bus.send(cmd.frame)
    bus.advance(0.15)
    bus.send(cmd.frame)
    assert raw(bus, g.QueryMaxLevel(Short(0))) == 254


def test_scene_recall_and_remove(bus):
    configure(bus, g.SetScene(Short(0), 1), 120)
    bus.send_command(g.GoToScene(Short(0), 1))
    assert raw(bus, g.QueryActualLevel(Short(0))) == 120
    bus.send_command(g.RemoveFromScene(Short(0), 1))
    assert raw(bus, g.QuerySceneLevel(Short(0), 1)) == 0xFF


def test_fade_time_fades_linearly(bus):
    configure(bus, g.SetFadeTime(Short(0)), 4)     # 0.5 * sqrt(16) = 2 s
    bus.send_command(g.DAPC(Short(0), 104))
    assert raw(bus, g.QueryStatus(Short(0))) & 0x10        # fade running
    bus.advance(1.0)
    assert raw(bus, g.QueryActualLevel(Short(0))) == 179   # half way 254 -> 104
    bus.advance(1.01)
    assert raw(bus, g.QueryActualLevel(Short(0))) == 104
    assert not raw(bus, g.QueryStatus(Short(0))) & 0x10


def test_fade_to_off_ends_off(bus):
    configure(bus, g.SetFadeTime(Short(0)), 2)     # 1 s
    bus.send_command(g.DAPC(Short(0), 0))
    bus.advance(0.5)
    assert raw(bus, g.QueryActualLevel(Short(0))) > 0
    bus.advance(0.6)
    assert raw(bus, g.QueryActualLevel(Short(0))) == 0


def test_extended_fade_time(bus):
    configure(bus, g.SetExtendedFadeTime(Short(0)), 0x21)   # (1+1) * 1 s
    bus.send_command(g.DAPC(Short(0), 154))
    bus.advance(1.0)
    assert raw(bus, g.QueryActualLevel(Short(0))) == 204
    bus.advance(1.1)
    assert raw(bus, g.QueryActualLevel(Short(0))) == 154


def test_up_down_use_fade_rate(bus):
    bus.send_command(g.DAPC(Short(0), 100))
    bus.send_command(g.Up(Short(0)))                 # rate 7: 506/sqrt(128) = 44.7 steps/s
    bus.advance(0.3)
    assert raw(bus, g.QueryActualLevel(Short(0))) == 109
    bus.send_command(g.Down(Short(0)))
    bus.advance(0.3)
    assert raw(bus, g.QueryActualLevel(Short(0))) == 100
    bus.send_command(g.Off(Short(0)))
    bus.send_command(g.Up(Short(0)))
    bus.advance(0.3)
    assert raw(bus, g.QueryActualLevel(Short(0))) == 0


def test_reset(bus):
    configure(bus, g.SetMaxLevel(Short(0)), 200)
    bus.send_command(g.AddToGroup(Short(0), 1))
    assert raw(bus, g.QueryResetState(Short(0))) is None
    bus.send_command(g.Reset(Short(0)))
    assert raw(bus, g.QueryMaxLevel(Short(0))) == 254
    assert raw(bus, g.QueryResetState(Short(0))) == 0xFF
    assert raw(bus, g.QueryControlGearPresent(Short(0))) == 0xFF   # keeps its address


def test_power_cycle(bus):
    configure(bus, g.SetPowerOnLevel(Short(0)), 120)
    bus.send_command(g.Off(Short(0)))
    bus.advance(1.0, mains_v=0.0)
    assert raw(bus, g.QueryControlGearPresent(Short(0))) is None
    bus.advance(1.0, mains_v=230.0)
    assert raw(bus, g.QueryActualLevel(Short(0))) == 120
    assert raw(bus, g.QueryPowerFailure(Short(0))) == 0xFF


def test_faults_and_failure_status(bus):
    bus.set_fault(0, "open_circuit")
    assert raw(bus, g.QueryLampFailure(Short(0))) == 0xFF
    assert raw(bus, led.QueryFailureStatus(Short(0))) == 0b10
    assert raw(bus, led.QueryOpenCircuit(Short(0))) == 0xFF
    assert raw(bus, g.QueryStatus(Short(0))) & 0b110 == 0b010     # failed, not lit
    bus.set_fault(0, "open_circuit", False)
    assert raw(bus, g.QueryLampFailure(Short(0))) is None


def test_random_address_commissioning_primitives():
    bus = SimulatedDaliBus.with_gear(2, addressed=False)
    bus.force_random_address([0], 0x000100)
    bus.force_random_address([1], 0x000200)
    bus.send_command(g.Initialise(address=None))
    bus.send_command(g.Randomise())
    for cmd, v in ((g.SetSearchAddrH, 0), (g.SetSearchAddrM, 1), (g.SetSearchAddrL, 0xFF)):
        bus.send_command(cmd(v))
    assert raw(bus, g.Compare()) == 0xFF                  # only gear 0 <= 0x0001ff
    for cmd, v in ((g.SetSearchAddrM, 2), (g.SetSearchAddrL, 0)):
        bus.send_command(cmd(v))
    assert raw(bus, g.Compare()) == "collision"           # both <= 0x000200
    assert raw(bus, g.QueryShortAddress()) == 0xFF        # gear 1 selected, no address
    bus.send_command(g.ProgramShortAddress(7))
    assert raw(bus, g.VerifyShortAddress(7)) == 0xFF
    assert raw(bus, g.QueryShortAddress()) == (7 << 1) | 1
    bus.send_command(g.Withdraw())
    assert raw(bus, g.Compare()) == 0xFF                  # gear 0 only now
    bus.send_command(g.Terminate())
    assert raw(bus, g.Compare()) is None
    assert raw(bus, g.QueryRandomAddressL(Short(7))) == 0x00
    assert raw(bus, g.QueryRandomAddressM(Short(7))) == 0x02


def test_initialise_window_expires():
    bus = SimulatedDaliBus.with_gear(1, addressed=False)
    bus.send_command(g.Initialise(broadcast=True))
    bus.send_command(g.Randomise())
    assert raw(bus, g.Compare()) == 0xFF
    bus.advance(15 * 60 + 1)
    assert raw(bus, g.Compare()) is None


@settings(max_examples=400, deadline=None)
@given(st.lists(st.integers(0, 0xFFFF), min_size=1, max_size=40),
       st.lists(st.floats(0, 5), max_size=5))
def test_random_frames_never_crash(frames, pauses):
    bus = SimulatedDaliBus.with_gear(3, seed=1)
    for i, f in enumerate(frames):
        reply = bus.send(ForwardFrame(16, f))
        assert reply is None or 0 <= reply.as_integer <= 255
        if pauses and i % 7 == 0:
            bus.advance(pauses[i % len(pauses)])
    for gear in bus.gear:
        assert 0 <= gear.actual_level <= 254
        assert gear.short_address is None or 0 <= gear.short_address < 64
        assert all(0 <= bus_bank <= 255 for bus_bank in (gear.dtr0, gear.dtr1, gear.dtr2))


def test_collision_is_python_dali_framing_error(bus):
    reply = bus.send(g.QueryControlGearPresent(Broadcast()).frame)
    assert isinstance(reply, BackwardFrameError) and reply.error
    assert g.QueryControlGearPresent(Broadcast()).response(reply).value is True


def test_gear_standalone_defaults():
    gear = LedGear()
    assert gear.actual_level == 254 and gear.short_address is None
