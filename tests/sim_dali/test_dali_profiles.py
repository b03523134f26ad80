"""Gear profiles of the simulator: each gear implements what its profile says and nothing more,
as read by python-dali's own sequences and by the agent's capability probe."""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, datetime
from decimal import Decimal

import numpy as np
import pytest
from dali.address import Short
from dali.exceptions import MemoryLocationNotImplemented
from dali.gear import colour, led
from dali.gear import general as g
from dali.gear.sequences import QueryDT8ColourValue, SetDT8ColourValueTc
from dali.memory import energy, maintenance

import hardware.dali as hd
from controller_fw_sim.dali import (
    D4I_ENERGY,
    D4I_FULL,
    DT8_TC,
    MIXED_BUS,
    PLAIN_DT6,
    GearProfile,
    SimulatedDaliBus,
)
from controller_fw_sim.dali.profiles import mix, profile
from controller_fw_sim.fleet import Fleet
from controller_fw_sim.fleet_cli import add_arguments
from controller_fw_sim.fleet_inventory import build_inventory
from wire.codec import decode_batch
from wire.records import LuminaireFailure


def run_sequence(bus: SimulatedDaliBus, seq):  # python-dali's own sequences, frame by frame
    return asyncio.run(hd.run_sequence(hd.InProcessBus(bus), seq))


@pytest.mark.parametrize("gear_profile", [PLAIN_DT6, D4I_ENERGY, D4I_FULL, DT8_TC])
def test_probe_finds_exactly_the_profile(gear_profile: GearProfile) -> None:
    bus = SimulatedDaliBus.with_gear(1, profiles=[gear_profile])
    caps = asyncio.run(hd.probe(hd.InProcessBus(bus), 0))
    assert caps.device_types == gear_profile.device_types
    assert caps.banks == gear_profile.banks
    assert caps.missing == frozenset(hd.PROBED_BANKS) - gear_profile.banks
    assert caps.colour_types == ({"tc"} if gear_profile is DT8_TC else set())


def test_a_bank_outside_the_profile_does_not_answer() -> None:
    bus = SimulatedDaliBus.with_gear(2, profiles=[PLAIN_DT6, D4I_ENERGY])
    with pytest.raises(MemoryLocationNotImplemented):
        run_sequence(bus, energy.BANK_202.read_all(Short(0)))
    values = run_sequence(bus, energy.BANK_202.read_all(Short(1)))
    assert values[energy.ActiveEnergy] >= 0
    with pytest.raises(MemoryLocationNotImplemented):
        run_sequence(bus, energy.BANK_203.read_all(Short(1)))


def test_full_d4i_gear_has_the_maintenance_bank() -> None:
    bus = SimulatedDaliBus.with_gear(1, profiles=[D4I_FULL])
    values = run_sequence(bus, maintenance.BANK_207.read_all(Short(0)))
    identity = bus.gear[0].identity
    assert values[maintenance.RatedMedianUsefulLifeOfLuminaire] == identity.rated_life_khours * 1000
    assert values[maintenance.InternalControlGearReferenceTemperature] == (
        identity.reference_temperature_c)
    assert values[maintenance.RatedMedianUsefulLightSourceStarts] == Decimal(identity.rated_starts)


def test_dt8_gear_sets_and_reports_its_colour_temperature_within_its_range() -> None:
    bus = SimulatedDaliBus.with_gear(2, profiles=[DT8_TC, PLAIN_DT6])
    run_sequence(bus, SetDT8ColourValueTc(Short(0), 200))  # 5000 K
    assert run_sequence(bus, QueryDT8ColourValue(
        Short(0), colour.QueryColourValueDTR.ColourTemperatureTC)) == 200
    run_sequence(bus, SetDT8ColourValueTc(Short(0), 1000))  # 1000 K: beyond the warmest
    assert run_sequence(bus, QueryDT8ColourValue(
        Short(0), colour.QueryColourValueDTR.ColourTemperatureTC)) == 370
    assert run_sequence(bus, QueryDT8ColourValue(
        Short(0), colour.QueryColourValueDTR.ColourTemperatureTcCoolest)) == 153
    assert run_sequence(bus, QueryDT8ColourValue(
        Short(1), colour.QueryColourValueDTR.ColourTemperatureTC)) is None, "DT6 gear: no DT8"


def test_each_gear_answers_only_its_device_types_commands() -> None:
    bus = SimulatedDaliBus.with_gear(2, profiles=[DT8_TC, PLAIN_DT6])
    assert bus.send_command(led.QueryGearType(Short(0))).raw_value is None
    assert bus.send_command(led.QueryGearType(Short(1))).raw_value is not None
    assert bus.send_command(colour.QueryColourTypeFeatures(Short(1))).raw_value is None
    assert bus.send_command(g.QueryDeviceType(Short(0))).raw_value.as_integer == 8


def test_gear_with_several_device_types_lists_them_in_order() -> None:
    both = GearProfile("dt6_dt8", (8, 6), frozenset({0}), (153, 370))
    bus = SimulatedDaliBus.with_gear(1, profiles=[both])
    assert asyncio.run(hd.device_types(hd.InProcessBus(bus), 0)) == (6, 8)
    # QUERY NEXT DEVICE TYPE answers only right after QUERY DEVICE TYPE (or itself)
    bus.send_command(g.QueryActualLevel(Short(0)))
    assert bus.send_command(g.QueryNextDeviceType(Short(0))).raw_value is None


def test_bank_zero_says_which_banks_come_after_it() -> None:
    bus = SimulatedDaliBus.with_gear(2, profiles=[D4I_ENERGY, D4I_FULL])
    infos = [asyncio.run(hd.read_gear_info(hd.InProcessBus(bus), a)) for a in (0, 1)]
    assert [i.last_memory_bank for i in infos] == [0, 1]


def test_a_bus_mixes_profiles_in_turn() -> None:
    bus = SimulatedDaliBus.with_gear(6, profiles=MIXED_BUS)
    assert [gear.profile.name for gear in bus.gear] == [
        "dt6", "d4i_252", "d4i_full", "dt8_tc", "dt6", "d4i_252"]
    assert [p.name for p in mix(3, ["dt6", D4I_FULL])] == ["dt6", "d4i_full", "dt6"]
    assert SimulatedDaliBus.with_gear(1).gear[0].profile is D4I_FULL
    with pytest.raises(ValueError, match="unknown gear profile 'dt7'"):
        profile("dt7")
    with pytest.raises(ValueError):
        mix(2, [])


def test_a_fleet_mixes_gear_profiles_and_marks_what_each_does_not_measure() -> None:
    evening = datetime(2025, 1, 14, 19, 0, tzinfo=UTC)  # 20:00 in Brussels: full level
    fleet = Fleet(build_inventory(20, 4, seed=5), start=evening, seed=5,
                  gear_mix=["dt6", "d4i_252", "d4i_full"])
    out = fleet.advance(120.0)
    batch = decode_batch([row.tobytes() for row in out.payloads], int(9e15))
    assert len(batch.rejects) == 0
    rec = batch.luminaire
    kinds = np.concatenate([fleet.luminaires_of(np.array([c])) for c in out.controllers]) % 3
    assert (rec["level"] > 0).all() and (rec["status"] & 0x04).all(), "every gear reports"
    plain, energy_only, full = (rec[kinds == k] for k in range(3))
    assert (plain["failure"] & LuminaireFailure.ABSENT_POWER).all()
    assert (plain["power_w"] == 0).all() and (plain["energy_wh"] == 0).all()
    assert not (energy_only["failure"] & LuminaireFailure.ABSENT_POWER).any()
    assert (energy_only["power_w"] > 0).all() and (energy_only["voltage_v"] == 0).all()
    assert (energy_only["failure"] & LuminaireFailure.ABSENT_DIAGNOSTICS).all()
    assert not (full["failure"] & (LuminaireFailure.ABSENT_POWER
                                   | LuminaireFailure.ABSENT_DIAGNOSTICS)).any()


def test_the_fleet_command_line_refuses_an_unknown_gear_profile(capsys) -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert [p.name for p in parser.parse_args(["--gear-mix", "dt6, dt8_tc"]).gear_mix] == [
        "dt6", "dt8_tc"]
    with pytest.raises(SystemExit):
        parser.parse_args(["--gear-mix", "dt6,dt7"])
    assert "unknown gear profile 'dt7'" in capsys.readouterr().err
