"""A simulated DALI bus of LED gear: forward frame in, backward frame (or None) out.

Sans-I/O: `SimulatedDaliBus.send(frame)` decodes the frame once with python-dali,
resolves ENABLE DEVICE TYPE and send-twice pairing (the bus sees every frame, as
every gear on a real bus does), hands the command to each gear and merges their
answers: none -> None, one -> `BackwardFrame`, several -> `BackwardFrameError`
(the framing error python-dali reads as a collision). Time is simulated and only
moves in `advance`, which also steps the vectorised physical model of the
luminaires so that D4i energy, power and diagnostics follow the light levels.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import dali.gear.colour  # noqa: F401  (registers device type 8 commands for from_frame)
import dali.gear.led  # noqa: F401  (registers device type 6 commands for from_frame)
import numpy as np
from dali.command import Command, from_frame
from dali.frame import BackwardFrame, BackwardFrameError, ForwardFrame
from dali.gear import general as g

from controller_fw_sim import physics
from controller_fw_sim.dali.gear import FAULTS, GearIdentity, LedGear, PhysicalReadings
from controller_fw_sim.dali.profiles import D4I_FULL, GearProfile, mix

log = logging.getLogger(__name__)

#: IEC 62386-101: the second frame of a send-twice command within 100 ms
SEND_TWICE_WINDOW_S = 0.1
#: physics sub-step while any gear is fading
FADE_SUBSTEP_S = 0.1


@dataclass
class _PendingTwice:
    frame: int
    command: Command
    at: float


class SimulatedDaliBus:
    """DALI bus with LED gear and the physical luminaires they drive."""

    def __init__(self, gear: Sequence[LedGear], params: physics.LuminaireParams | None = None,
                 *, now: float = 0.0, ambient_c: float = 15.0, mains_v: float = 230.0,
                 frequency_hz: float = 50.0):
        self.gear = list(gear)
        n = len(self.gear)
        self.params = params or physics.LuminaireParams.uniform(n)
        self.now = float(now)
        self.ambient_c = np.full(n, float(ambient_c))
        self.mains_v = np.full(n, float(mains_v))
        self.frequency_hz = frequency_hz
        self.state = physics.LuminaireState.initial(n, ambient_c=ambient_c, mains_v=mains_v)
        self.lock = threading.RLock()
        self._device_type = 0
        self._pending: _PendingTwice | None = None
        self.frames = 0
        self._refresh_physics(0.0)

    @classmethod
    def with_gear(cls, n: int, *, seed: int = 0, addressed: bool = True,
                  params: physics.LuminaireParams | None = None,
                  profiles: Sequence[str | GearProfile] = (D4I_FULL,),
                  **kw) -> SimulatedDaliBus:
        """n LED gear with distinct serials, deterministic randomness from ``seed``.

        ``addressed``: gear i has short address i (n <= 64); else all are unaddressed.
        ``profiles``: what the gear implement, gear i taking profiles[i % len(profiles)] (names
        of `profiles.PROFILES` or profiles): full D4i drivers by default, `MIXED_BUS` for one of
        each kind.
        """
        master = random.Random(seed)
        gear = []
        for i, profile in enumerate(mix(n, profiles)):
            serial = master.randrange(1, 1 << 40)
            identity = GearIdentity(serial=serial, luminaire_id=serial ^ 0x5A5A)
            gear.append(LedGear(identity, short_address=i if addressed and i < 64 else None,
                                rng=random.Random(master.getrandbits(64)), profile=profile))
        return cls(gear, params, **kw)

    # ------------------------------------------------------------------ frames

    def send(self, frame: ForwardFrame | int) -> BackwardFrame | None:
        """Deliver one forward frame; the backward frame, a framing error, or None."""
        if isinstance(frame, int):
            frame = ForwardFrame(16, frame)
        with self.lock:
            self.frames += 1
            if len(frame) != 16:
                return None                      # 24-bit frames address control devices
            value = frame.as_integer
            pending = self._pending
            if (pending is not None and pending.frame == value
                    and self.now - pending.at <= SEND_TWICE_WINDOW_S):
                self._pending = None
                return self._execute(pending.command)
            command = from_frame(frame, devicetype=self._device_type)
            if isinstance(command, g.EnableDeviceType):
                self._device_type = command.param
                return None                      # a pending send-twice survives it
            self._device_type = 0
            if command.sendtwice:
                self._pending = _PendingTwice(value, command, self.now)
                return None
            self._pending = None
            return self._execute(command)

    def _execute(self, command: Command) -> BackwardFrame | None:
        answers = [a for gear in self.gear
                   if (a := gear.handle(command, self.now)) is not None]
        if not answers:
            return None
        if len(answers) > 1:
            return BackwardFrameError(0xFF)
        return BackwardFrame(answers[0])

    def send_command(self, command: Command):
        """Convenience for tests: ENABLE DEVICE TYPE, send-twice, and the python-dali Response."""
        if command.devicetype:
            self.send(g.EnableDeviceType(command.devicetype).frame)
        reply = self.send(command.frame)
        if command.sendtwice:
            reply = self.send(command.frame)
        return command.response(reply) if command.response else None

    # ------------------------------------------------------------------ time, physics

    def advance(self, dt_s: float, *, ambient_c: float | np.ndarray | None = None,
                mains_v: float | np.ndarray | None = None) -> None:
        """Move simulated time on by ``dt_s``: fades progress, luminaires consume energy."""
        with self.lock:
            if ambient_c is not None:
                self.ambient_c = np.broadcast_to(np.asarray(ambient_c, float),
                                                 self.ambient_c.shape).copy()
            if mains_v is not None:
                self._set_mains(mains_v)
            end = self.now + float(dt_s)
            while self.now < end:
                fading = any(gear.fade is not None for gear in self.gear)
                h = min(end - self.now, FADE_SUBSTEP_S) if fading else end - self.now
                mid = self.now + h / 2.0
                for gear in self.gear:
                    gear.update(mid)
                self._step_physics(h)
                self.now = end if h == end - self.now else self.now + h
            for gear in self.gear:
                gear.update(self.now)
            self._refresh_physics(0.0)

    def advance_to(self, t: float, **kw) -> None:
        if t > self.now:
            self.advance(t - self.now, **kw)

    def _set_mains(self, mains_v) -> None:
        self.mains_v = np.broadcast_to(np.asarray(mains_v, float), self.mains_v.shape).copy()
        for gear, v in zip(self.gear, self.mains_v, strict=True):
            powered = v >= physics.MIN_SUPPLY_V
            if powered and not gear.powered:
                gear.power_on(self.now)
            elif not powered and gear.powered:
                gear.power_off()

    def _inputs(self) -> physics.LuminaireState:
        levels = np.fromiter((gear.physical_level() for gear in self.gear), np.int64,
                             len(self.gear))
        curves = np.fromiter((gear.dimming_curve for gear in self.gear), np.int64,
                             len(self.gear))
        return self.state.with_inputs(level=levels, curve=curves)

    def _step_physics(self, h: float) -> None:
        self.state = physics.step(self.params, self._inputs(), h, self.ambient_c,
                                  self.mains_v)

    def _refresh_physics(self, h: float) -> None:
        """Recompute instantaneous outputs for the current levels and push them to the gear."""
        self.state = physics.step(self.params, self._inputs(), h, self.ambient_c,
                                  self.mains_v)
        s = self.state
        for i, gear in enumerate(self.gear):
            gear.set_readings(PhysicalReadings(
                energy_wh=float(s.energy_wh[i]), power_w=float(s.power_w[i]),
                apparent_energy_vah=float(s.apparent_energy_vah[i]),
                apparent_power_va=float(s.apparent_power_va[i]),
                load_energy_wh=float(s.load_energy_wh[i]),
                load_power_w=float(s.load_power_w[i]), powered_s=float(s.powered_s[i]),
                lamp_on_s=float(s.lamp_on_s[i]), supply_v=float(s.supply_v[i]),
                frequency_hz=self.frequency_hz if gear.powered else 0.0,
                power_factor=float(s.power_factor[i]),
                driver_temp_c=float(s.driver_temp_c[i]),
                led_voltage_v=float(self.params.led_voltage_v[i]) if s.drive[i] > 0 else 0.0,
                led_current_a=float(s.led_current_a[i]),
                output_current_pct=float(100.0 * s.drive[i])))

    # ------------------------------------------------------------------ test hooks

    def force_random_address(self, indices: Iterable[int], value: int) -> None:
        """The next RANDOMISE gives these gear ``value`` (to provoke search collisions)."""
        for i in indices:
            self.gear[i].forced_random.append(value)

    def set_fault(self, index: int, fault: str, active: bool = True) -> None:
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; one of {FAULTS}")
        with self.lock:
            (self.gear[index].faults.add if active else self.gear[index].faults.discard)(fault)
            self._refresh_physics(0.0)

    def by_short_address(self, short: int) -> LedGear:
        for gear in self.gear:
            if gear.short_address == short:
                return gear
        raise KeyError(short)
