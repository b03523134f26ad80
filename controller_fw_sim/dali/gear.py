"""One DALI-2 LED control gear (IEC 62386-102 + 207 or 209, D4i banks): a sans-I/O state machine.

What it implements is its `GearProfile` (`profiles.py`): device type 6 or 8 (colour temperature),
and which memory banks (0, 1, 202-207); it ignores the rest as a real gear does (no answer).

`LedGear.handle(command, now)` takes a forward frame already decoded by python-dali
(`dali.command.from_frame`) and returns the backward-frame byte, or None for no
answer. Time is the caller's simulated clock in seconds; the gear never reads a
clock. Send-twice pairing and ENABLE DEVICE TYPE are resolved by the bus
(`bus.py`), which sees the whole frame stream, before a command reaches the gear.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import dali.gear.colour as colour
import dali.gear.led as led
from dali import address
from dali.gear import general as g
from dali.memory import diagnostics as diag
from dali.memory import energy, info, maintenance, oem

from controller_fw_sim.dali import fading, memory
from controller_fw_sim.dali.profiles import D4I_FULL, GearProfile
from controller_fw_sim.physics import LINEAR_CURVE, LOG_CURVE

YES = 0xFF
MASK = 0xFF
LIGHT_SOURCE_LED = 6
PART_102_VERSION = (2, 0)
PART_207_VERSION = (2, 0)
PART_209_VERSION = (2, 0)
DEVICE_TYPE_NONE = 254
#: banks whose locations a technician or maker may write (kept as written)
NVM_BANKS = (1, 207)
INITIALISE_WINDOW_S = 15 * 60.0
MAX_LEVEL = 254


class InitialisationState(enum.Enum):
    DISABLED = "disabled"
    ENABLED = "enabled"
    WITHDRAWN = "withdrawn"


@dataclass(frozen=True)
class GearIdentity:
    """What the factory and the luminaire maker wrote: bank 0 and bank 1 (Part 251)."""

    gtin: int = 4_012_345_678_901
    serial: int = 1
    firmware_version: tuple[int, int] = (1, 4)
    hardware_version: tuple[int, int] = (2, 0)
    luminaire_gtin: int = 5_412_345_000_017
    luminaire_id: int = 1
    year_of_manufacture: int = 24          # YY
    week_of_manufacture: int = 17
    nominal_power_w: int = 66
    min_dim_power_w: int = 4
    mains_voltage_min_v: int = 198
    mains_voltage_max_v: int = 264
    light_output_lm: int = 8400
    cri: int = 70
    cct_k: int = 3000
    light_distribution: int = 2            # Type II: street
    colour: str = "RAL 7035"
    identification: str = "Luciole LX-60 street lantern"
    physical_minimum: int = 85             # ~ 1 % light on the log curve
    rated_life_khours: int = 100
    reference_temperature_c: int = 60
    rated_starts: int = 50_000
    undervoltage_v: float = 180.0
    overvoltage_v: float = 280.0
    derating_temp_c: float = 85.0
    shutdown_temp_c: float = 100.0


@dataclass(frozen=True)
class PhysicalReadings:
    """What the gear's own metering sees, from the physical model (`physics.py`)."""

    energy_wh: float = 0.0
    power_w: float = 0.0
    apparent_energy_vah: float = 0.0
    apparent_power_va: float = 0.0
    load_energy_wh: float = 0.0
    load_power_w: float = 0.0
    powered_s: float = 0.0
    lamp_on_s: float = 0.0
    supply_v: float = 230.0
    frequency_hz: float = 50.0
    power_factor: float = 0.0
    driver_temp_c: float = 20.0
    led_voltage_v: float = 0.0
    led_current_a: float = 0.0
    output_current_pct: float = 0.0


@dataclass
class Fade:
    t0: float
    start: float
    end: float
    duration: float
    off_at_end: bool

    def level_at(self, now: float) -> float | None:
        """Arc level during the fade, None once it is over."""
        if now >= self.t0 + self.duration:
            return None
        return self.start + (self.end - self.start) * (now - self.t0) / self.duration


#: fault names a test or the fleet simulator may inject
FAULTS = ("open_circuit", "short_circuit", "load_decrease", "load_increase",
          "current_protector", "thermal_shutdown", "thermal_overload", "gear_failure")

# Commands that leave writeEnableState ENABLED (IEC 62386-102 §9.10.5; we also keep it
# across READ MEMORY LOCATION so that python-dali's latch / unlatch around a bank read
# takes effect).
_KEEP_WRITE_ENABLE = (g.WriteMemoryLocation, g.WriteMemoryLocationNoReply, g.DTR0, g.DTR1,
                      g.DTR2, g.QueryContentDTR0, g.QueryContentDTR1, g.QueryContentDTR2,
                      g.ReadMemoryLocation, g.EnableWriteMemory)


def _reset_values(physical_minimum: int) -> dict[str, Any]:
    return dict(power_on_level=254, system_failure_level=254, min_level=physical_minimum,
                max_level=254, fade_rate=7, fade_time=0, ext_fade_base=0, ext_fade_mult=0,
                search_address=0xFFFFFF, random_address=0xFFFFFF, groups=0,
                scenes=[MASK] * 16, operating_mode=0, dimming_curve=LOG_CURVE,
                fast_fade_time=0)


class LedGear:
    """DALI-2 LED control gear (device type 6, or 8 for colour temperature) with the memory banks
    of its profile (by default a full D4i driver)."""

    groups: int  # bit g: member of DALI group g (one of the variables `reset` sets)

    def __init__(self, identity: GearIdentity | None = None, *, short_address: int | None = None,
                 rng: random.Random | None = None, now: float = 0.0,
                 profile: GearProfile = D4I_FULL):
        self.identity = identity or GearIdentity()
        self.profile = profile
        self.physical_minimum = self.identity.physical_minimum
        self.rng = rng or random.Random(self.identity.serial)
        #: values the next RANDOMISE commands take instead of a random draw (tests)
        self.forced_random: list[int] = []
        self.short_address = short_address
        for k, v in _reset_values(self.physical_minimum).items():
            setattr(self, k, v)
        self.dtr0 = self.dtr1 = self.dtr2 = 0
        self.arc = 0.0
        self.fade: Fade | None = None
        self.last_active_level = 254
        self.limit_error = False
        self.power_cycle_seen = False
        self.powered = False
        self.init_state = InitialisationState.DISABLED
        self.init_until = 0.0
        self.write_enabled = False
        self.faults: set[str] = set()
        self.readings = PhysicalReadings()
        self.supply_starts = 0
        self.lamp_starts = 0
        self.lamp_starts_base = 0            # resettable counter = lamp_starts - base
        self.on_time_base_s = 0.0
        self.failure_counts: dict[str, int] = {}
        self._failure_flags: dict[str, bool] = {}
        self.lock_bytes: dict[int, int] = {b: memory.LOCKED for b in profile.banks
                                           if memory.BANKS[b].LockByte is not None}
        self._latched: dict[int, list[int | None]] = {}
        self._nvm_writes: dict[int, dict[int, int]] = {b: {} for b in NVM_BANKS}
        self._next_device_types: list[int] | None = None  # QUERY NEXT DEVICE TYPE answers
        coolest, warmest = profile.tc_range_mirek or (0, 0)
        self.tc_coolest, self.tc_warmest = coolest, warmest
        self.tc_mirek = self.tc_temporary = max(coolest, min(warmest, 250))  # 4000 K
        self._pending_write: dict[int, int] = {}
        self._image_cache: dict[int, list[int | None]] = {}
        self.power_on(now)

    # ------------------------------------------------------------------ power, time

    def power_on(self, now: float) -> None:
        """Mains restored: go to the power-on level (IEC 62386-102 §9.13)."""
        self.powered = True
        self.supply_starts += 1
        self.power_cycle_seen = True
        self.init_state = InitialisationState.DISABLED
        self.fade = None
        level = self.power_on_level
        if level == MASK:
            level = self.last_active_level
        self._set_arc_now(self._clamp(level) if level else 0)

    def power_off(self) -> None:
        self.powered = False
        self.fade = None
        self.arc = 0.0
        self.write_enabled = False

    def system_failure(self, now: float) -> None:
        """DALI bus failure: go to the system failure level (MASK: stay)."""
        if self.system_failure_level != MASK:
            self._set_arc_now(self._clamp(self.system_failure_level)
                              if self.system_failure_level else 0)

    def update(self, now: float) -> None:
        """Bring fades and timers up to ``now``."""
        if self.fade is not None:
            lvl = self.fade.level_at(now)
            if lvl is None:
                self.arc = 0.0 if self.fade.off_at_end else self.fade.end
                self.fade = None
            else:
                self.arc = lvl
        if self.init_state != InitialisationState.DISABLED and now >= self.init_until:
            self.init_state = InitialisationState.DISABLED

    @property
    def actual_level(self) -> int:
        """Arc power level as QUERY ACTUAL LEVEL reports it (0 = off)."""
        if self.arc <= 0:
            return 0
        return max(1, min(MAX_LEVEL, int(round(self.arc))))

    @property
    def lamp_failure(self) -> bool:
        return bool(self.faults & {"open_circuit", "short_circuit", "thermal_shutdown"})

    @property
    def gear_failure(self) -> bool:
        return "gear_failure" in self.faults

    @property
    def lamp_on(self) -> bool:
        return self.powered and self.actual_level > 0 and not self.lamp_failure

    def physical_level(self) -> int:
        """The level the light source is driven at (for the physical model)."""
        return self.actual_level if self.lamp_on else 0

    @property
    def reset_state(self) -> bool:
        return all(getattr(self, k) == v
                   for k, v in _reset_values(self.physical_minimum).items()
                   if k not in ("search_address", "random_address"))

    def set_readings(self, readings: PhysicalReadings) -> None:
        """New metering values from the physical model; updates failure flags and counters."""
        self.readings = readings
        self._image_cache.clear()
        self._track_failures()

    # ------------------------------------------------------------------ levels

    def _clamp(self, level: int) -> int:
        return max(self.min_level, min(self.max_level, level))

    def _set_arc_now(self, level: float) -> None:
        was_on = self.lamp_on
        self.fade = None
        self.arc = float(level)
        if level > 0:
            self.last_active_level = int(round(level))
        if self.lamp_on and not was_on:
            self.lamp_starts += 1

    def _fade_duration(self) -> float:
        if self.fade_time:
            return fading.fade_time_s(self.fade_time)
        return fading.extended_fade_time_s(self.ext_fade_base, self.ext_fade_mult)

    def _go_to(self, level: int, now: float, duration: float | None = None) -> None:
        """Arc power command semantics: clamp, limit error, fade with fade time."""
        self.power_cycle_seen = False
        if level == MASK:                       # stop fading
            self.update(now)
            self.fade = None
            return
        target = 0 if level == 0 else self._clamp(level)
        self.limit_error = level != 0 and target != level
        duration = self._fade_duration() if duration is None else duration
        self.update(now)
        current = self.arc
        if duration <= 0 or target == current:
            self._set_arc_now(target)
            return
        if target == 0:
            if current <= 0:
                return
            start, end, off = current, float(self.min_level), True
        else:
            start = current if current > 0 else float(self.min_level)
            end, off = float(target), False
            self.last_active_level = target
        was_on = self.lamp_on
        self.arc = start
        self.fade = Fade(now, start, end, duration, off)
        if self.lamp_on and not was_on:
            self.lamp_starts += 1

    def _step_fade(self, delta_sign: int, now: float) -> None:
        """UP / DOWN: fade at the fade rate for 200 ms, never switching on or off."""
        self.power_cycle_seen = False
        self.update(now)
        if self.arc <= 0:
            return
        delta = fading.fade_rate_steps_per_s(self.fade_rate) * fading.UP_DOWN_DURATION_S
        end = self.arc + delta_sign * delta
        end = max(float(self.min_level), min(float(self.max_level), end))
        self.fade = Fade(now, self.arc, end, fading.UP_DOWN_DURATION_S, False)
        self.last_active_level = int(round(end))

    # ------------------------------------------------------------------ addressing

    def is_addressed(self, destination) -> bool:
        if isinstance(destination, address.GearShort):
            return self.short_address == destination.address
        if isinstance(destination, address.GearGroup):
            return bool(self.groups & (1 << destination.group))
        if isinstance(destination, address.GearBroadcastUnaddressed):
            return self.short_address is None
        return isinstance(destination, address.GearBroadcast)

    def _search_match(self) -> bool:
        return self.random_address == self.search_address

    def _in_init(self) -> bool:
        return self.init_state != InitialisationState.DISABLED

    # ------------------------------------------------------------------ dispatch

    def handle(self, cmd, now: float) -> int | None:
        """Process one decoded forward frame at time ``now``; the answer byte or None."""
        if not self.powered:
            return None
        self.update(now)
        if not isinstance(cmd, _KEEP_WRITE_ENABLE):
            self.write_enabled = False
        if not isinstance(cmd, g.QueryNextDeviceType):
            self._next_device_types = None  # QUERY NEXT DEVICE TYPE must follow directly
        devicetype = getattr(cmd, "devicetype", 0)
        if devicetype and not self.profile.has(devicetype):
            return None                          # another device type's command: ignored
        destination = getattr(cmd, "destination", None)
        if destination is not None and not self.is_addressed(destination):
            return None
        handler = _HANDLERS.get(type(cmd))
        if handler is None:
            return None
        return handler(self, cmd, now)

    # -- arc power
    def _dapc(self, cmd, now):
        self._go_to(cmd.power, now)

    def _off(self, cmd, now):
        self.power_cycle_seen = False
        self.limit_error = False
        self._set_arc_now(0)

    def _up(self, cmd, now):
        self._step_fade(+1, now)

    def _down(self, cmd, now):
        self._step_fade(-1, now)

    def _step_up(self, cmd, now):
        self.power_cycle_seen = False
        if self.arc > 0:
            self._set_arc_now(min(self.max_level, self.actual_level + 1))

    def _step_down(self, cmd, now):
        self.power_cycle_seen = False
        if self.arc > 0:
            self._set_arc_now(max(self.min_level, self.actual_level - 1))

    def _step_down_and_off(self, cmd, now):
        self.power_cycle_seen = False
        if self.arc > 0:
            self._set_arc_now(0 if self.actual_level <= self.min_level
                              else self.actual_level - 1)

    def _on_and_step_up(self, cmd, now):
        self.power_cycle_seen = False
        self._set_arc_now(self.min_level if self.arc <= 0
                          else min(self.max_level, self.actual_level + 1))

    def _recall_max(self, cmd, now):
        self.power_cycle_seen = False
        self.limit_error = False
        self._set_arc_now(self.max_level)

    def _recall_min(self, cmd, now):
        self.power_cycle_seen = False
        self.limit_error = False
        self._set_arc_now(self.min_level)

    def _last_active(self, cmd, now):
        self._go_to(self.last_active_level, now)

    def _go_to_scene(self, cmd, now):
        level = self.scenes[cmd.param]
        if level != MASK:
            self._go_to(level, now)

    # -- configuration (send-twice pairing already checked by the bus)
    def _reset(self, cmd, now):
        for k, v in _reset_values(self.physical_minimum).items():
            setattr(self, k, list(v) if isinstance(v, list) else v)
        self.limit_error = False
        self.power_cycle_seen = False
        self._set_arc_now(254)

    def _store_actual_in_dtr0(self, cmd, now):
        self.dtr0 = self.actual_level

    def _set_max(self, cmd, now):
        self.max_level = max(self.min_level, min(MAX_LEVEL, self.dtr0))
        if self.arc > self.max_level:
            self._set_arc_now(self.max_level)

    def _set_min(self, cmd, now):
        self.min_level = max(self.physical_minimum, min(self.max_level, self.dtr0))
        if 0 < self.arc < self.min_level:
            self._set_arc_now(self.min_level)

    def _set_system_failure_level(self, cmd, now):
        self.system_failure_level = self.dtr0

    def _set_power_on_level(self, cmd, now):
        self.power_on_level = self.dtr0

    def _set_fade_time(self, cmd, now):
        self.fade_time = min(15, self.dtr0)

    def _set_fade_rate(self, cmd, now):
        self.fade_rate = max(1, min(15, self.dtr0))

    def _set_extended_fade_time(self, cmd, now):
        self.ext_fade_base, self.ext_fade_mult = fading.encode_extended_fade_time(self.dtr0)

    def _set_scene(self, cmd, now):
        self.scenes[cmd.param] = self.dtr0

    def _remove_from_scene(self, cmd, now):
        self.scenes[cmd.param] = MASK

    def _add_to_group(self, cmd, now):
        self.groups |= 1 << cmd.param

    def _remove_from_group(self, cmd, now):
        self.groups &= ~(1 << cmd.param)

    def _set_short_address(self, cmd, now):
        if self.dtr0 == MASK:
            self.short_address = None
        elif self.dtr0 & 0x81 == 0x01:
            self.short_address = self.dtr0 >> 1

    def _enable_write_memory(self, cmd, now):
        self.write_enabled = True

    # -- queries
    def _query_status(self, cmd, now):
        bits = (self.gear_failure, self.lamp_failure, self.lamp_on, self.limit_error,
                self.fade is not None, self.reset_state, self.short_address is None,
                self.power_cycle_seen)
        return sum(1 << i for i, b in enumerate(bits) if b)

    def _yes_if(self, condition: bool) -> int | None:
        return YES if condition else None

    def _query_present(self, cmd, now):
        return YES

    def _query_lamp_failure(self, cmd, now):
        return self._yes_if(self.lamp_failure)

    def _query_lamp_on(self, cmd, now):
        return self._yes_if(self.lamp_on)

    def _query_limit_error(self, cmd, now):
        return self._yes_if(self.limit_error)

    def _query_reset_state(self, cmd, now):
        return self._yes_if(self.reset_state)

    def _query_missing_short(self, cmd, now):
        return self._yes_if(self.short_address is None)

    def _query_power_failure(self, cmd, now):
        return self._yes_if(self.power_cycle_seen)

    def _query_gear_failure(self, cmd, now):
        return self._yes_if(self.gear_failure)

    def _query_version(self, cmd, now):
        major, minor = PART_102_VERSION
        return (major << 2) | minor

    def _query_dtr0(self, cmd, now):
        return self.dtr0

    def _query_dtr1(self, cmd, now):
        return self.dtr1

    def _query_dtr2(self, cmd, now):
        return self.dtr2

    def _query_device_type(self, cmd, now):
        types = self.profile.device_types
        if not types:
            return DEVICE_TYPE_NONE
        if len(types) == 1:
            return types[0]
        self._next_device_types = sorted(types)
        return MASK

    def _query_next_device_type(self, cmd, now):
        queue = self._next_device_types
        if queue is None:
            return None
        if not queue:
            return DEVICE_TYPE_NONE
        self._next_device_types = queue[1:]
        return queue[0]

    def _query_physical_minimum(self, cmd, now):
        return self.physical_minimum

    def _query_operating_mode(self, cmd, now):
        return self.operating_mode

    def _query_light_source_type(self, cmd, now):
        return LIGHT_SOURCE_LED

    def _query_actual_level(self, cmd, now):
        return self.actual_level

    def _query_max(self, cmd, now):
        return self.max_level

    def _query_min(self, cmd, now):
        return self.min_level

    def _query_power_on_level(self, cmd, now):
        return self.power_on_level

    def _query_system_failure_level(self, cmd, now):
        return self.system_failure_level

    def _query_fade(self, cmd, now):
        return (self.fade_time << 4) | self.fade_rate

    def _query_extended_fade(self, cmd, now):
        return (self.ext_fade_mult << 4) | self.ext_fade_base

    def _query_manufacturer_mode(self, cmd, now):
        return None

    def _query_scene(self, cmd, now):
        return self.scenes[cmd.param]

    def _query_groups_low(self, cmd, now):
        return self.groups & 0xFF

    def _query_groups_high(self, cmd, now):
        return (self.groups >> 8) & 0xFF

    def _query_random_h(self, cmd, now):
        return (self.random_address >> 16) & 0xFF

    def _query_random_m(self, cmd, now):
        return (self.random_address >> 8) & 0xFF

    def _query_random_l(self, cmd, now):
        return self.random_address & 0xFF

    # -- memory banks
    def _read_memory(self, cmd, now):
        bank = self.dtr1
        if bank not in self.profile.banks:
            return None
        image = self.bank_contents(bank)
        location = self.dtr0
        value = image[location] if location < len(image) else None
        if self.dtr0 < 0xFF:
            self.dtr0 += 1
        return value

    def _write_memory(self, cmd, now):
        answer = self._write_location(cmd.param)
        if self.dtr0 < 0xFF:
            self.dtr0 += 1
        return answer if isinstance(cmd, g.WriteMemoryLocation) else None

    def _write_location(self, value: int) -> int | None:
        bank, location = self.dtr1, self.dtr0
        if not self.write_enabled or bank not in self.profile.banks:
            return None
        if location > memory.last_address(bank):
            return None
        if location == 0x02 and bank in self.lock_bytes:
            self.lock_bytes[bank] = value
            if value == memory.LATCH and memory.BANKS[bank].has_latch:
                self._latched[bank] = list(self.bank_contents(bank, live=True))
            elif value != memory.LATCH:
                self._latched.pop(bank, None)
            return value
        kind = memory.location_type(bank, location)
        unlocked = self.lock_bytes.get(bank) == memory.UNLOCK
        if kind in memory.WRITEABLE or (kind == memory.MemoryType.NVM_RW_L and unlocked):
            self._store(bank, location, value)
            return value
        return None

    def _store(self, bank: int, location: int, value: int) -> None:
        self._image_cache.clear()
        if bank in self._nvm_writes:
            self._nvm_writes[bank][location] = value
            return
        cls = memory.value_class_at(bank, location)
        self._pending_write[location] = value
        if cls is None or location != cls.locations[-1].address:
            return
        raw = bytes(self._pending_write.get(loc.address, 0) for loc in cls.locations)
        self._pending_write.clear()
        written = int.from_bytes(raw, "big")
        if cls is diag.LightSourceStartCounterResettable:
            self.lamp_starts_base = self.lamp_starts - written
        elif cls is diag.LightSourceOnTimeResettable:
            self.on_time_base_s = self.readings.lamp_on_s - written

    # -- random address commissioning (special commands)
    def _terminate(self, cmd, now):
        self.init_state = InitialisationState.DISABLED

    def _dtr0_cmd(self, cmd, now):
        self.dtr0 = cmd.param

    def _dtr1_cmd(self, cmd, now):
        self.dtr1 = cmd.param

    def _dtr2_cmd(self, cmd, now):
        self.dtr2 = cmd.param

    def _initialise(self, cmd, now):
        if cmd.broadcast:
            selected = True
        elif cmd.address is None:
            selected = self.short_address is None
        else:
            selected = self.short_address == cmd.address
        if selected:
            self.init_state = InitialisationState.ENABLED
            self.init_until = now + INITIALISE_WINDOW_S

    def _randomise(self, cmd, now):
        if self._in_init():
            self.random_address = (self.forced_random.pop(0) if self.forced_random
                                   else self.rng.randrange(0, 0x1000000))

    def _compare(self, cmd, now):
        if self.init_state == InitialisationState.ENABLED:
            return self._yes_if(self.random_address <= self.search_address)
        return None

    def _withdraw(self, cmd, now):
        if self.init_state == InitialisationState.ENABLED and self._search_match():
            self.init_state = InitialisationState.WITHDRAWN

    def _search_h(self, cmd, now):
        if self._in_init():
            self.search_address = (self.search_address & 0x00FFFF) | (cmd.param << 16)

    def _search_m(self, cmd, now):
        if self._in_init():
            self.search_address = (self.search_address & 0xFF00FF) | (cmd.param << 8)

    def _search_l(self, cmd, now):
        if self._in_init():
            self.search_address = (self.search_address & 0xFFFF00) | cmd.param

    def _program_short(self, cmd, now):
        if self._in_init() and self._search_match():
            self.short_address = None if cmd.address == "MASK" else cmd.address

    def _verify_short(self, cmd, now):
        if self._in_init():
            return self._yes_if(self.short_address == cmd.address)
        return None

    def _query_short(self, cmd, now):
        if self._in_init() and self._search_match():
            return MASK if self.short_address is None else (self.short_address << 1) | 1
        return None

    # -- device type 6 (IEC 62386-207)
    def _select_dimming_curve(self, cmd, now):
        if self.dtr0 in (LOG_CURVE, LINEAR_CURVE):
            self.dimming_curve = self.dtr0

    def _store_fast_fade(self, cmd, now):
        self.fast_fade_time = 0 if self.dtr0 > 27 else self.dtr0

    def _noop(self, cmd, now):
        return None

    def _query_gear_type(self, cmd, now):
        return 0b0101                          # power supply integrated, a.c. supply

    def _query_dimming_curve(self, cmd, now):
        return self.dimming_curve

    def _query_possible_modes(self, cmd, now):
        return 0b0110                          # AM, current controlled

    def _query_features(self, cmd, now):
        return 0b0110_0011                     # short/open circuit, thermal queries

    def _failure_status(self) -> int:
        order = ("short_circuit", "open_circuit", "load_decrease", "load_increase",
                 "current_protector", "thermal_shutdown", "thermal_overload")
        return sum(1 << i for i, name in enumerate(order) if name in self.faults)

    def _query_failure_status(self, cmd, now):
        return self._failure_status()

    @staticmethod
    def _fault_query(name: str) -> Callable[..., int | None]:
        def query(self, cmd, now):
            return self._yes_if(name in self.faults)
        return query

    _query_short_circuit = _fault_query("short_circuit")
    _query_open_circuit = _fault_query("open_circuit")
    _query_load_decrease = _fault_query("load_decrease")
    _query_load_increase = _fault_query("load_increase")
    _query_current_protector_active = _fault_query("current_protector")
    _query_thermal_shutdown = _fault_query("thermal_shutdown")
    _query_thermal_overload = _fault_query("thermal_overload")
    del _fault_query

    def _query_no(self, cmd, now):
        return None

    def _query_led_mode(self, cmd, now):
        return 0b0110 | (0b1_0000 if self.dimming_curve == LINEAR_CURVE else 0)

    def _query_fast_fade(self, cmd, now):
        return self.fast_fade_time

    def _query_min_fast_fade(self, cmd, now):
        return 1

    def _query_ext_version_207(self, cmd, now):
        major, minor = PART_207_VERSION
        return (major << 2) | minor

    # -- device type 8, colour temperature Tc (IEC 62386-209)
    def _colour_value(self, cmd, now):
        """QUERY COLOUR VALUE: DTR0 selects; the answer is the MSB, the LSB goes to DTR0."""
        selected = {
            colour.QueryColourValueDTR.ColourTemperatureTC: self.tc_mirek,
            colour.QueryColourValueDTR.ReportColourTemperatureTc: self.tc_mirek,
            colour.QueryColourValueDTR.TemporaryColourTemperature: self.tc_temporary,
            colour.QueryColourValueDTR.ColourTemperatureTcCoolest: self.tc_coolest,
            colour.QueryColourValueDTR.ColourTemperatureTcPhysicalCoolest: self.tc_coolest,
            colour.QueryColourValueDTR.ColourTemperatureTcWarmest: self.tc_warmest,
            colour.QueryColourValueDTR.ColourTemperatureTcPhysicalWarmest: self.tc_warmest,
        }.get(self.dtr0)
        if selected is None:
            return MASK                          # not a Tc value: unknown
        self.dtr0 = selected & 0xFF
        return selected >> 8

    def _set_temporary_tc(self, cmd, now):
        self.tc_temporary = (self.dtr1 << 8) | self.dtr0

    def _activate(self, cmd, now):
        self.tc_mirek = max(self.tc_coolest, min(self.tc_warmest, self.tc_temporary))

    def _tc_step(self, mirek: int) -> None:
        self.tc_mirek = max(self.tc_coolest, min(self.tc_warmest, self.tc_mirek + mirek))

    def _tc_cooler(self, cmd, now):
        self._tc_step(-1)

    def _tc_warmer(self, cmd, now):
        self._tc_step(+1)

    def _copy_report(self, cmd, now):
        self.tc_temporary = self.tc_mirek

    def _query_colour_features(self, cmd, now):
        return 0b0000_0010                     # Tc capable

    def _query_colour_status(self, cmd, now):
        return 0b0010_0000                     # colour type Tc active

    def _query_gear_features(self, cmd, now):
        return 0

    def _query_ext_version_209(self, cmd, now):
        major, minor = PART_209_VERSION
        return (major << 2) | minor

    # ------------------------------------------------------------------ D4i data

    def _track_failures(self) -> None:
        r, ident = self.readings, self.identity
        flags = {
            "gear": self.gear_failure,
            "undervoltage": self.powered and r.supply_v < ident.undervoltage_v,
            "overvoltage": r.supply_v > ident.overvoltage_v,
            "power_limitation": False,
            "thermal_derating": r.driver_temp_c > ident.derating_temp_c
            or "thermal_overload" in self.faults,
            "thermal_shutdown": r.driver_temp_c > ident.shutdown_temp_c
            or "thermal_shutdown" in self.faults,
            "lamp": self.lamp_failure,
            "short_circuit": "short_circuit" in self.faults,
            "open_circuit": "open_circuit" in self.faults,
        }
        for name, on in flags.items():
            if on and not self._failure_flags.get(name, False):
                self.failure_counts[name] = min(0xFD, self.failure_counts.get(name, 0) + 1)
        self._failure_flags = flags

    def bank_values(self, bank: int) -> dict:
        """Memory values of one bank, keyed by python-dali's memory value classes."""
        ident, r = self.identity, self.readings
        flags, counts = self._failure_flags, self.failure_counts
        if bank == 0:
            return {info.LastMemoryBank: 1 if 1 in self.profile.banks else 0,
                    info.GTIN: ident.gtin,
                    info.FirmwareVersion: ident.firmware_version,
                    info.IdentificationNumber: ident.serial,
                    info.HardwareVersion: ident.hardware_version,
                    info.Part101Version: (2, 0), info.Part102Version: PART_102_VERSION,
                    info.Part103Version: None, info.DeviceUnitCount: 0,
                    info.GearUnitCount: 1, info.UnitIndex: 0}
        if bank == 1:
            return {oem.ManufacturerGTIN: ident.luminaire_gtin,
                    oem.LuminaireID: ident.luminaire_id, oem.ContentFormatID: 0x0003,
                    oem.YearOfManufacture: ident.year_of_manufacture,
                    oem.WeekOfManufacture: ident.week_of_manufacture,
                    oem.InputPowerNominal: ident.nominal_power_w,
                    oem.InputPowerMinimumDim: ident.min_dim_power_w,
                    oem.MainsVoltageMinimum: ident.mains_voltage_min_v,
                    oem.MainsVoltageMaximum: ident.mains_voltage_max_v,
                    oem.LightOutputNominal: ident.light_output_lm, oem.CRI: ident.cri,
                    oem.CCT: ident.cct_k,
                    oem.LightDistributionType: ident.light_distribution,
                    oem.LuminaireColor: ident.colour,
                    oem.LuminaireIdentification: ident.identification}
        if bank == 202:
            return {energy.ActiveEnergy: memory.Scaled(r.energy_wh, ENERGY_EXPONENT),
                    energy.ActivePower: memory.Scaled(r.power_w, POWER_EXPONENT)}
        if bank == 203:
            return {energy.ApparentEnergy: memory.Scaled(r.apparent_energy_vah, ENERGY_EXPONENT),
                    energy.ApparentPower: memory.Scaled(r.apparent_power_va, POWER_EXPONENT)}
        if bank == 204:
            return {energy.ActiveEnergyLoadside: memory.Scaled(r.load_energy_wh,
                                                               ENERGY_EXPONENT),
                    energy.ActivePowerLoadside: memory.Scaled(r.load_power_w, POWER_EXPONENT)}
        if bank == 205:
            return {
                diag.ControlGearOperatingTime: int(r.powered_s),
                diag.ControlGearStartCounter: self.supply_starts,
                diag.ControlGearExternalSupplyVoltage: r.supply_v,
                diag.ControlGearExternalSupplyVoltageFrequency: round(r.frequency_hz),
                diag.ControlGearPowerFactor: r.power_factor,
                diag.ControlGearOverallFailureCondition: flags.get("gear", False),
                diag.ControlGearOverallFailureConditionCounter: counts.get("gear", 0),
                diag.ControlGearExternalSupplyUndervoltage: flags.get("undervoltage", False),
                diag.ControlGearExternalSupplyUndervoltageCounter:
                    counts.get("undervoltage", 0),
                diag.ControlGearExternalSupplyOvervoltage: flags.get("overvoltage", False),
                diag.ControlGearExternalSupplyOvervoltageCounter: counts.get("overvoltage", 0),
                diag.ControlGearOutputPowerLimitation: False,
                diag.ControlGearOutputPowerLimitationCounter: 0,
                diag.ControlGearThermalDerating: flags.get("thermal_derating", False),
                diag.ControlGearThermalDeratingCounter: counts.get("thermal_derating", 0),
                diag.ControlGearThermalShutdown: flags.get("thermal_shutdown", False),
                diag.ControlGearThermalShutdownCounter: counts.get("thermal_shutdown", 0),
                diag.ControlGearTemperature: r.driver_temp_c,
                diag.ControlGearOutputCurrentPercent: round(r.output_current_pct),
            }
        if bank == 206:
            return {
                diag.LightSourceStartCounterResettable: self.lamp_starts - self.lamp_starts_base,
                diag.LightSourceStartCounter: self.lamp_starts,
                diag.LightSourceOnTimeResettable: int(r.lamp_on_s - self.on_time_base_s),
                diag.LightSourceOnTime: int(r.lamp_on_s),
                diag.LightSourceVoltage: r.led_voltage_v,
                diag.LightSourceCurrent: r.led_current_a,
                diag.LightSourceOverallFailureCondition: flags.get("lamp", False),
                diag.LightSourceOverallFailureConditionCounter: counts.get("lamp", 0),
                diag.LightSourceShortCircuit: flags.get("short_circuit", False),
                diag.LightSourceShortCircuitCounter: counts.get("short_circuit", 0),
                diag.LightSourceOpenCircuit: flags.get("open_circuit", False),
                diag.LightSourceOpenCircuitCounter: counts.get("open_circuit", 0),
                diag.LightSourceThermalDerating: False,
                diag.LightSourceThermalDeratingCounter: 0,
                diag.LightSourceThermalShutdown: False,
                diag.LightSourceThermalShutdownCounter: 0,
                diag.LightSourceTemperature: r.driver_temp_c,
            }
        if bank == 207:
            return {maintenance.RatedMedianUsefulLifeOfLuminaire: ident.rated_life_khours * 1000,
                    maintenance.InternalControlGearReferenceTemperature:
                        ident.reference_temperature_c,
                    maintenance.RatedMedianUsefulLightSourceStarts: ident.rated_starts}
        raise KeyError(bank)

    def bank_contents(self, bank: int, live: bool = False) -> list[int | None]:
        """Byte image of a bank; a latched bank answers its snapshot unless ``live``."""
        if not live and bank in self._latched:
            return self._latched[bank]
        image = self._image_cache.get(bank)
        if image is None:
            image = memory.bank_image(bank, self.bank_values(bank), self.lock_bytes.get(bank))
            for location, value in self._nvm_writes.get(bank, {}).items():
                image[location] = value
            self._image_cache[bank] = image
        return image


#: Part 252 exponents: energy in 0.1 Wh, power in 0.1 W
ENERGY_EXPONENT = -1
POWER_EXPONENT = -1

_HANDLERS: dict[type, Callable] = {
    g.DAPC: LedGear._dapc, g.Off: LedGear._off, g.Up: LedGear._up, g.Down: LedGear._down,
    g.StepUp: LedGear._step_up, g.StepDown: LedGear._step_down,
    g.RecallMaxLevel: LedGear._recall_max, g.RecallMinLevel: LedGear._recall_min,
    g.StepDownAndOff: LedGear._step_down_and_off, g.OnAndStepUp: LedGear._on_and_step_up,
    g.GoToLastActiveLevel: LedGear._last_active, g.GoToScene: LedGear._go_to_scene,
    g.Reset: LedGear._reset, g.StoreActualLevelInDTR0: LedGear._store_actual_in_dtr0,
    g.SetMaxLevel: LedGear._set_max, g.SetMinLevel: LedGear._set_min,
    g.SetSystemFailureLevel: LedGear._set_system_failure_level,
    g.SetPowerOnLevel: LedGear._set_power_on_level, g.SetFadeTime: LedGear._set_fade_time,
    g.SetFadeRate: LedGear._set_fade_rate,
    g.SetExtendedFadeTime: LedGear._set_extended_fade_time, g.SetScene: LedGear._set_scene,
    g.RemoveFromScene: LedGear._remove_from_scene, g.AddToGroup: LedGear._add_to_group,
    g.RemoveFromGroup: LedGear._remove_from_group,
    g.SetShortAddress: LedGear._set_short_address,
    g.EnableWriteMemory: LedGear._enable_write_memory,
    g.QueryStatus: LedGear._query_status, g.QueryControlGearPresent: LedGear._query_present,
    g.QueryLampFailure: LedGear._query_lamp_failure,
    g.QueryLampPowerOn: LedGear._query_lamp_on, g.QueryLimitError: LedGear._query_limit_error,
    g.QueryResetState: LedGear._query_reset_state,
    g.QueryMissingShortAddress: LedGear._query_missing_short,
    g.QueryVersionNumber: LedGear._query_version, g.QueryContentDTR0: LedGear._query_dtr0,
    g.QueryDeviceType: LedGear._query_device_type,
    g.QueryPhysicalMinimum: LedGear._query_physical_minimum,
    g.QueryPowerFailure: LedGear._query_power_failure,
    g.QueryContentDTR1: LedGear._query_dtr1, g.QueryContentDTR2: LedGear._query_dtr2,
    g.QueryOperatingMode: LedGear._query_operating_mode,
    g.QueryLightSourceType: LedGear._query_light_source_type,
    g.QueryActualLevel: LedGear._query_actual_level, g.QueryMaxLevel: LedGear._query_max,
    g.QueryMinLevel: LedGear._query_min, g.QueryPowerOnLevel: LedGear._query_power_on_level,
    g.QuerySystemFailureLevel: LedGear._query_system_failure_level,
    g.QueryFadeTimeFadeRate: LedGear._query_fade,
    g.QueryManufacturerSpecificMode: LedGear._query_manufacturer_mode,
    g.QueryNextDeviceType: LedGear._query_next_device_type,
    g.QueryExtendedFadeTime: LedGear._query_extended_fade,
    g.QueryControlGearFailure: LedGear._query_gear_failure,
    g.QuerySceneLevel: LedGear._query_scene,
    g.QueryGroupsZeroToSeven: LedGear._query_groups_low,
    g.QueryGroupsEightToFifteen: LedGear._query_groups_high,
    g.QueryRandomAddressH: LedGear._query_random_h,
    g.QueryRandomAddressM: LedGear._query_random_m,
    g.QueryRandomAddressL: LedGear._query_random_l,
    g.ReadMemoryLocation: LedGear._read_memory,
    g.WriteMemoryLocation: LedGear._write_memory,
    g.WriteMemoryLocationNoReply: LedGear._write_memory,
    g.Terminate: LedGear._terminate, g.DTR0: LedGear._dtr0_cmd, g.DTR1: LedGear._dtr1_cmd,
    g.DTR2: LedGear._dtr2_cmd, g.Initialise: LedGear._initialise,
    g.Randomise: LedGear._randomise, g.Compare: LedGear._compare,
    g.Withdraw: LedGear._withdraw, g.SearchaddrH: LedGear._search_h,
    g.SearchaddrM: LedGear._search_m, g.SearchaddrL: LedGear._search_l,
    g.ProgramShortAddress: LedGear._program_short,
    g.VerifyShortAddress: LedGear._verify_short, g.QueryShortAddress: LedGear._query_short,
    led.SelectDimmingCurve: LedGear._select_dimming_curve,
    led.StoreDTRAsFastFadeTime: LedGear._store_fast_fade,
    led.ReferenceSystemPower: LedGear._noop, led.EnableCurrentProtector: LedGear._noop,
    led.DisableCurrentProtector: LedGear._noop,
    led.QueryGearType: LedGear._query_gear_type,
    led.QueryDimmingCurve: LedGear._query_dimming_curve,
    led.QueryPossibleOperatingModes: LedGear._query_possible_modes,
    led.QueryFeatures: LedGear._query_features,
    led.QueryFailureStatus: LedGear._query_failure_status,
    led.QueryShortCircuit: LedGear._query_short_circuit,
    led.QueryOpenCircuit: LedGear._query_open_circuit,
    led.QueryLoadDecrease: LedGear._query_load_decrease,
    led.QueryLoadIncrease: LedGear._query_load_increase,
    led.QueryCurrentProtectorActive: LedGear._query_current_protector_active,
    led.QueryThermalShutDown: LedGear._query_thermal_shutdown,
    led.QueryThermalOverload: LedGear._query_thermal_overload,
    led.QueryReferenceRunning: LedGear._query_no,
    led.QueryReferenceMeasurementFailed: LedGear._query_no,
    led.QueryCurrentProtectorEnabled: LedGear._query_no,
    led.QueryOperatingMode: LedGear._query_led_mode,
    led.QueryFastFadeTime: LedGear._query_fast_fade,
    led.QueryMinFastFadeTime: LedGear._query_min_fast_fade,
    led.QueryExtendedVersionNumber: LedGear._query_ext_version_207,
    colour.QueryColourValue: LedGear._colour_value,
    colour.SetTemporaryColourTemperature: LedGear._set_temporary_tc,
    colour.Activate: LedGear._activate,
    colour.ColourTemperatureTcStepCooler: LedGear._tc_cooler,
    colour.ColourTemperatureTcStepWarmer: LedGear._tc_warmer,
    colour.CopyReportToTemporary: LedGear._copy_report,
    colour.QueryColourTypeFeatures: LedGear._query_colour_features,
    colour.QueryColourStatus: LedGear._query_colour_status,
    colour.QueryGearFeaturesStatus: LedGear._query_gear_features,
    colour.QueryExtendedVersionNumber: LedGear._query_ext_version_209,
}
