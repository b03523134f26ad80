"""Reading D4i memory banks (DiiA Parts 251/252/253) into typed values.

The bank layouts and decoding are python-dali's (`dali.memory`); this module runs
their read sequences over a `DaliBus` and maps the results onto pydantic models.
Values the gear reports as MASK / TMASK / invalid become None.
"""

from __future__ import annotations

from collections.abc import Collection
from decimal import Decimal
from typing import Any

from dali.address import GearShort
from dali.memory import diagnostics as diag
from dali.memory import energy, info, oem
from dali.memory.location import FlagValue, MemoryBank
from pydantic import BaseModel

from hardware.dali.commands import read_with_retry
from hardware.dali.errors import DaliNotImplemented
from hardware.dali.transport import DaliBus
from wire.retry import RetryPolicy


def _plain(value: Any) -> Any:
    if isinstance(value, FlagValue):
        return None
    if isinstance(value, Decimal):
        return float(value)
    return value


async def read_bank(bus: DaliBus, short_address: int, bank: MemoryBank,
                    retry: RetryPolicy = RetryPolicy()) -> dict[str, Any]:
    """All values of one memory bank by python-dali value name (latched where supported).

    Raises `DaliNotImplemented` when the gear answers but has no such bank, `DaliNoAnswer`
    when it is silent.
    """
    values = await read_with_retry(bus, lambda: bank.read_all(GearShort(short_address)),
                                   retry, gear=short_address)
    return {cls.__name__: _plain(v) for cls, v in values.items()}


async def _optional_bank(bus: DaliBus, short_address: int, bank: MemoryBank,
                         retry: RetryPolicy) -> dict[str, Any] | None:
    """A bank's values, or None when the gear does not implement it (a no-answer raises)."""
    try:
        return await read_bank(bus, short_address, bank, retry)
    except DaliNotImplemented:
        return None


class GearInfo(BaseModel):
    """Memory bank 0 (IEC 62386-102): the control gear itself."""

    gtin: int | None
    serial: int | None
    firmware_version: str | None
    hardware_version: str | None
    part_102_version: str | None
    last_memory_bank: int | None


class LuminaireInfo(BaseModel):
    """Memory bank 1 (Part 251): what the luminaire maker wrote."""

    gtin: int | None
    serial: int | None
    content_format: int | None
    year_of_manufacture: int | None           # 4-digit year
    week_of_manufacture: int | None
    nominal_power_w: int | None
    min_dim_power_w: int | None
    mains_voltage_min_v: int | None
    mains_voltage_max_v: int | None
    light_output_lm: int | None
    cri: int | None
    cct_k: int | str | None
    light_distribution: str | None
    colour: str | None
    identification: str | None


class EnergyReport(BaseModel):
    """Banks 202-204 (Part 252): energy counters and power."""

    active_energy_wh: float | None
    active_power_w: float | None
    apparent_energy_vah: float | None = None
    apparent_power_va: float | None = None
    loadside_energy_wh: float | None = None
    loadside_power_w: float | None = None


class Diagnostics(BaseModel):
    """Banks 205 and 206 (Part 253): control gear and light source diagnostics."""

    operating_time_s: int | None
    start_counter: int | None
    supply_voltage_v: float | None
    supply_frequency_hz: int | None
    power_factor: float | None
    gear_failure: bool | None
    gear_failure_count: int | None
    undervoltage: bool | None
    undervoltage_count: int | None
    overvoltage: bool | None
    overvoltage_count: int | None
    thermal_derating: bool | None
    thermal_derating_count: int | None
    thermal_shutdown: bool | None
    thermal_shutdown_count: int | None
    gear_temperature_c: int | None
    output_current_pct: int | None
    light_source_starts: int | None = None
    light_source_on_time_s: int | None = None
    light_source_voltage_v: float | None = None
    light_source_current_a: float | None = None
    lamp_failure: bool | None = None
    lamp_failure_count: int | None = None
    short_circuit: bool | None = None
    short_circuit_count: int | None = None
    open_circuit: bool | None = None
    open_circuit_count: int | None = None
    light_source_temperature_c: int | None = None


async def read_gear_info(bus: DaliBus, short_address: int,
                         retry: RetryPolicy = RetryPolicy()) -> GearInfo:
    v = await read_bank(bus, short_address, info.BANK_0, retry)
    return GearInfo(gtin=v.get("GTIN"), serial=v.get("IdentificationNumber"),
                    firmware_version=v.get("FirmwareVersion"),
                    hardware_version=v.get("HardwareVersion"),
                    part_102_version=v.get("Part102Version"),
                    last_memory_bank=v.get("LastMemoryBank"))


async def read_luminaire_info(bus: DaliBus, short_address: int,
                              retry: RetryPolicy = RetryPolicy()) -> LuminaireInfo:
    v = await read_bank(bus, short_address, oem.BANK_1, retry)
    year = v.get("YearOfManufacture")
    return LuminaireInfo(
        gtin=v.get("ManufacturerGTIN"), serial=v.get("LuminaireID"),
        content_format=v.get("ContentFormatID"),
        year_of_manufacture=None if year is None else 2000 + year,
        week_of_manufacture=v.get("WeekOfManufacture"),
        nominal_power_w=v.get("InputPowerNominal"),
        min_dim_power_w=v.get("InputPowerMinimumDim"),
        mains_voltage_min_v=v.get("MainsVoltageMinimum"),
        mains_voltage_max_v=v.get("MainsVoltageMaximum"),
        light_output_lm=v.get("LightOutputNominal"), cri=v.get("CRI"), cct_k=v.get("CCT"),
        light_distribution=v.get("LightDistributionType"), colour=v.get("LuminaireColor"),
        identification=v.get("LuminaireIdentification"))


async def read_energy(bus: DaliBus, short_address: int, *, all_banks: bool = False,
                      retry: RetryPolicy = RetryPolicy()) -> EnergyReport:
    """Active energy and power (bank 202); with ``all_banks`` also 203 and 204 when present.

    Raises `DaliNotImplemented` for a gear without bank 202 (no D4i Part 252).
    """
    active = await read_bank(bus, short_address, energy.BANK_202, retry)
    report = EnergyReport(active_energy_wh=active.get("ActiveEnergy"),
                          active_power_w=active.get("ActivePower"))
    if all_banks:
        apparent = await _optional_bank(bus, short_address, energy.BANK_203, retry) or {}
        load = await _optional_bank(bus, short_address, energy.BANK_204, retry) or {}
        report = report.model_copy(update=dict(
            apparent_energy_vah=apparent.get("ApparentEnergy"),
            apparent_power_va=apparent.get("ApparentPower"),
            loadside_energy_wh=load.get("ActiveEnergyLoadside"),
            loadside_power_w=load.get("ActivePowerLoadside")))
    return report


async def read_diagnostics(bus: DaliBus, short_address: int,
                           retry: RetryPolicy = RetryPolicy(),
                           banks: Collection[int] | None = None) -> Diagnostics:
    """Part 253 diagnostics: bank 205 (control gear) and bank 206 (light source), each read where
    the gear has it. ``banks``: the banks it implements (its capabilities), so a bank known to be
    missing is not asked for; None tries both. Raises `DaliNotImplemented` when it has neither.
    """
    found = [None if banks is not None and bank.address not in banks
             else await _optional_bank(bus, short_address, bank, retry)
             for bank in (diag.BANK_205, diag.BANK_206)]
    if found == [None, None]:
        raise DaliNotImplemented(f"gear {short_address} implements neither memory bank 205 "
                                 "nor 206 (no D4i Part 253 diagnostics)")
    g, s = (values or {} for values in found)
    return Diagnostics(
        operating_time_s=g.get("ControlGearOperatingTime"),
        start_counter=g.get("ControlGearStartCounter"),
        supply_voltage_v=g.get("ControlGearExternalSupplyVoltage"),
        supply_frequency_hz=g.get("ControlGearExternalSupplyVoltageFrequency"),
        power_factor=g.get("ControlGearPowerFactor"),
        gear_failure=g.get("ControlGearOverallFailureCondition"),
        gear_failure_count=g.get("ControlGearOverallFailureConditionCounter"),
        undervoltage=g.get("ControlGearExternalSupplyUndervoltage"),
        undervoltage_count=g.get("ControlGearExternalSupplyUndervoltageCounter"),
        overvoltage=g.get("ControlGearExternalSupplyOvervoltage"),
        overvoltage_count=g.get("ControlGearExternalSupplyOvervoltageCounter"),
        thermal_derating=g.get("ControlGearThermalDerating"),
        thermal_derating_count=g.get("ControlGearThermalDeratingCounter"),
        thermal_shutdown=g.get("ControlGearThermalShutdown"),
        thermal_shutdown_count=g.get("ControlGearThermalShutdownCounter"),
        gear_temperature_c=g.get("ControlGearTemperature"),
        output_current_pct=g.get("ControlGearOutputCurrentPercent"),
        light_source_starts=s.get("LightSourceStartCounter"),
        light_source_on_time_s=s.get("LightSourceOnTime"),
        light_source_voltage_v=s.get("LightSourceVoltage"),
        light_source_current_a=s.get("LightSourceCurrent"),
        lamp_failure=s.get("LightSourceOverallFailureCondition"),
        lamp_failure_count=s.get("LightSourceOverallFailureConditionCounter"),
        short_circuit=s.get("LightSourceShortCircuit"),
        short_circuit_count=s.get("LightSourceShortCircuitCounter"),
        open_circuit=s.get("LightSourceOpenCircuit"),
        open_circuit_count=s.get("LightSourceOpenCircuitCounter"),
        light_source_temperature_c=s.get("LightSourceTemperature"))
