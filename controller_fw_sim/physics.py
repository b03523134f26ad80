"""Physical model of LED street luminaires, vectorised: one array element per luminaire.

Pure numpy, no I/O, no Python object per luminaire. The model covers:

* DALI dimming curves (IEC 62386-102 logarithmic, IEC 62386-207 linear);
* lumen depreciation with lamp-on hours (exponential, ``L(h) = 0.8 ** (h / L80)``)
  and constant-light-output (CLO): the driver starts under-driven at the end-of-life
  lumen level and raises the drive as the LEDs age, so the light output stays flat;
* input power ``P = standby + P_led / eta(load)``, the driver efficiency falling at
  low load (``eta(x) = eta_max * x / (x + k (1 - x))``, which makes P affine in load);
* power factor falling at low load; mains current ``I = P / (V * pf)`` (a
  constant-power driver: voltage changes current, not power);
* driver temperature as a first-order lag towards ambient + a load-proportional rise;
* cumulative active, apparent and load-side energy, integrated exactly over a step
  for a piecewise-constant arc level (including the CLO drive drift inside the step).

`step` returns a new `LuminaireState`; the arc level is an input the DALI gear sets.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np

LOG_CURVE = 0
LINEAR_CURVE = 1

#: lumen maintenance at the rated life (the "80" of L80) and the CLO target
END_OF_LIFE_MAINTENANCE = 0.8
#: below this rms supply voltage the driver is unpowered
MIN_SUPPLY_V = 50.0
#: load fraction constant of the power-factor curve
PF_LOAD_CONSTANT = 0.2


def log_curve_percent(level: np.ndarray) -> np.ndarray:
    """IEC 62386-102 logarithmic curve: X(n) = 10^((n-1)/(253/3) - 1) % for n=1..254, 0 for 0."""
    n = np.asarray(level, dtype=np.float64)
    x = np.power(10.0, (n - 1.0) / (253.0 / 3.0) - 1.0)
    return np.where(n <= 0, 0.0, np.where(n >= 255, 100.0, x))


def linear_curve_percent(level: np.ndarray) -> np.ndarray:
    """IEC 62386-207 linear curve: X(n) = n / 254 * 100 %."""
    n = np.clip(np.asarray(level, dtype=np.float64), 0.0, 254.0)
    return n / 254.0 * 100.0


def light_fraction(level: np.ndarray, curve: np.ndarray) -> np.ndarray:
    """Demanded light output 0..1 of the arc power level under each luminaire's curve."""
    return np.where(np.asarray(curve) == LINEAR_CURVE,
                    linear_curve_percent(level), log_curve_percent(level)) / 100.0


def lumen_maintenance(hours: np.ndarray, l80_hours: np.ndarray) -> np.ndarray:
    """Fraction of initial lumen output left after ``hours`` of lamp-on time."""
    return np.power(END_OF_LIFE_MAINTENANCE, np.asarray(hours, dtype=np.float64) / l80_hours)


def clo_gain(hours: np.ndarray, l80_hours: np.ndarray, clo: np.ndarray) -> np.ndarray:
    """Drive multiplier of constant light output: 0.8 / L(h), capped at 1 (1 when CLO is off)."""
    g = np.minimum(END_OF_LIFE_MAINTENANCE / lumen_maintenance(hours, l80_hours), 1.0)
    return np.where(clo, g, 1.0)


def mean_clo_gain(h0: np.ndarray, h1: np.ndarray, l80_hours: np.ndarray,
                  clo: np.ndarray) -> np.ndarray:
    """Exact mean of `clo_gain` over lamp-on hours [h0, h1] (h1 >= h0).

    Below L80 the gain is 0.8 * exp(a h) with a = -ln(0.8) / L80; above it, 1.
    """
    h0 = np.asarray(h0, dtype=np.float64)
    h1 = np.asarray(h1, dtype=np.float64)
    a = -np.log(END_OF_LIFE_MAINTENANCE) / l80_hours
    lo_end = np.minimum(h1, l80_hours)
    lo_start = np.minimum(h0, l80_hours)
    integral_lo = END_OF_LIFE_MAINTENANCE / a * (np.exp(a * lo_end) - np.exp(a * lo_start))
    integral_hi = np.maximum(h1 - np.maximum(h0, l80_hours), 0.0)
    width = h1 - h0
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (integral_lo + integral_hi) / width
    point = clo_gain(h0, l80_hours, np.asarray(True))
    return np.where(clo, np.where(width > 0, mean, point), 1.0)


def driver_efficiency(load: np.ndarray, eta_max: np.ndarray, knee: np.ndarray) -> np.ndarray:
    """Driver efficiency at output load fraction ``load`` (0 at no load, eta_max at full)."""
    x = np.asarray(load, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        eta = eta_max * x / (x + knee * (1.0 - x))
    return np.where(x > 0, eta, 0.0)


def power_factor(load: np.ndarray, pf_min: np.ndarray, pf_max: np.ndarray) -> np.ndarray:
    """Power factor at input load fraction ``load`` (input power / input power at full load)."""
    x = np.clip(np.asarray(load, dtype=np.float64), 0.0, None)
    return pf_min + (pf_max - pf_min) * (1.0 - np.exp(-x / PF_LOAD_CONSTANT))


@dataclass(frozen=True)
class LuminaireParams:
    """Rated data of n luminaires; every field is an array of shape (n,)."""

    rated_w: np.ndarray        # LED load power at 100 % drive, W
    standby_w: np.ndarray      # driver standby power, lamp off, W
    eta_max: np.ndarray        # driver efficiency at full load
    eta_knee: np.ndarray       # low-load efficiency constant k
    pf_min: np.ndarray
    pf_max: np.ndarray
    temp_rise_c: np.ndarray    # driver temperature rise over ambient at full load, K
    thermal_tau_s: np.ndarray  # driver thermal time constant, s
    l80_hours: np.ndarray      # lamp-on hours to 80 % lumen maintenance
    clo: np.ndarray            # bool: constant light output enabled
    nominal_lm: np.ndarray     # initial light output at 100 % drive, lm
    led_voltage_v: np.ndarray  # LED string voltage, V

    @classmethod
    def uniform(cls, n: int, *, rated_w: float = 60.0, standby_w: float = 0.5,
                eta_max: float = 0.92, eta_knee: float = 0.05, pf_min: float = 0.35,
                pf_max: float = 0.98, temp_rise_c: float = 25.0,
                thermal_tau_s: float = 1200.0, l80_hours: float = 100_000.0,
                clo: bool = False, nominal_lm: float = 8400.0,
                led_voltage_v: float = 120.0) -> LuminaireParams:
        """n identical luminaires (a typical 60 W street lantern by default)."""
        def full(v, dtype=np.float64):
            return np.full(n, v, dtype=dtype)
        return cls(full(rated_w), full(standby_w), full(eta_max), full(eta_knee),
                   full(pf_min), full(pf_max), full(temp_rise_c), full(thermal_tau_s),
                   full(l80_hours), full(clo, bool), full(nominal_lm), full(led_voltage_v))

    @property
    def full_input_w(self) -> np.ndarray:
        """Input power at 100 % drive."""
        return self.standby_w + self.rated_w / self.eta_max


@dataclass(frozen=True)
class LuminaireState:
    """Dynamic state of n luminaires; inputs first, then what `step` computes."""

    level: np.ndarray          # arc power level 0..254 set by the gear (input)
    curve: np.ndarray          # LOG_CURVE / LINEAR_CURVE per luminaire (input)
    lamp_ok: np.ndarray        # bool: False = lamp failure, no light (input)
    lamp_on_s: np.ndarray      # cumulative light-source on time, s
    powered_s: np.ndarray      # cumulative driver powered time, s
    driver_temp_c: np.ndarray
    energy_wh: np.ndarray      # active energy at mains
    apparent_energy_vah: np.ndarray
    load_energy_wh: np.ndarray  # energy delivered to the LEDs
    power_w: np.ndarray        # active input power
    apparent_power_va: np.ndarray
    load_power_w: np.ndarray
    power_factor: np.ndarray
    current_a: np.ndarray      # mains current
    supply_v: np.ndarray
    drive: np.ndarray          # LED current fraction of nominal, 0..1
    light_lm: np.ndarray
    led_current_a: np.ndarray

    @classmethod
    def initial(cls, n: int, *, ambient_c: float = 15.0, level: int = 0,
                mains_v: float = 230.0) -> LuminaireState:
        z = np.zeros(n)
        return cls(level=np.full(n, level, dtype=np.int64), curve=np.zeros(n, np.int64),
                   lamp_ok=np.ones(n, bool), lamp_on_s=z.copy(), powered_s=z.copy(),
                   driver_temp_c=np.full(n, float(ambient_c)), energy_wh=z.copy(),
                   apparent_energy_vah=z.copy(), load_energy_wh=z.copy(),
                   power_w=z.copy(), apparent_power_va=z.copy(), load_power_w=z.copy(),
                   power_factor=z.copy(), current_a=z.copy(),
                   supply_v=np.full(n, float(mains_v)), drive=z.copy(), light_lm=z.copy(),
                   led_current_a=z.copy())

    def with_inputs(self, **inputs: np.ndarray) -> LuminaireState:
        """Same state with some input arrays (level, curve, lamp_ok...) replaced."""
        return replace(self, **inputs)

    def take(self, index) -> LuminaireState:
        """The sub-state of the luminaires selected by ``index``."""
        return LuminaireState(**{f.name: getattr(self, f.name)[index] for f in fields(self)})


def input_power_w(params: LuminaireParams, drive: np.ndarray, lit: np.ndarray) -> np.ndarray:
    """Mains active power: standby + P_led / eta(load) when lit (affine in drive)."""
    eta = driver_efficiency(drive, params.eta_max, params.eta_knee)
    with np.errstate(invalid="ignore", divide="ignore"):
        lamp = params.rated_w * drive / eta
    return params.standby_w + np.where(lit & (drive > 0), lamp, 0.0)


def _electrical(params: LuminaireParams, drive: np.ndarray, lit: np.ndarray,
                powered: np.ndarray, supply_v: np.ndarray):
    p_in = np.where(powered, input_power_w(params, drive, lit), 0.0)
    pf = np.where(powered, power_factor(p_in / params.full_input_w, params.pf_min,
                                        params.pf_max), 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        s = np.where(powered, p_in / pf, 0.0)
        current = np.where(powered, s / supply_v, 0.0)
    p_led = np.where(powered & lit, params.rated_w * drive, 0.0)
    return p_in, pf, s, current, p_led


def step(params: LuminaireParams, state: LuminaireState, dt_s: float,
         ambient_c: float | np.ndarray, mains_v: float | np.ndarray) -> LuminaireState:
    """Advance n luminaires by ``dt_s`` seconds at constant arc level, ambient and mains.

    Energy is the exact integral of input power over the step: power is affine in the
    drive, so integrating the exact mean CLO gain over the lamp-on hours of the step
    gives the exact energy.
    """
    dt_s = float(dt_s)
    supply_v = np.broadcast_to(np.asarray(mains_v, dtype=np.float64), state.level.shape)
    ambient = np.broadcast_to(np.asarray(ambient_c, dtype=np.float64), state.level.shape)
    powered = supply_v >= MIN_SUPPLY_V
    demand = light_fraction(state.level, state.curve)
    lit = powered & state.lamp_ok & (demand > 0)

    h0 = state.lamp_on_s / 3600.0
    h1 = h0 + np.where(lit, dt_s / 3600.0, 0.0)
    drive_mean = demand * mean_clo_gain(h0, h1, params.l80_hours, params.clo)
    p_mean, _, s_mean, _, p_led_mean = _electrical(params, drive_mean, lit, powered,
                                                   supply_v)
    # apparent power is not affine in drive; the pf at the mean drive is exact when the
    # drive is constant and within 1e-9 otherwise (CLO drift over one step is tiny)

    drive_end = np.where(lit, demand * clo_gain(h1, params.l80_hours, params.clo), 0.0)
    p_end, pf_end, s_end, i_end, p_led_end = _electrical(params, drive_end, lit, powered,
                                                         supply_v)

    t_ss = ambient + params.temp_rise_c * p_mean / params.full_input_w
    decay = np.exp(-dt_s / params.thermal_tau_s)
    temp = t_ss + (state.driver_temp_c - t_ss) * decay

    hours_hi = h1
    light = params.nominal_lm * drive_end * lumen_maintenance(hours_hi, params.l80_hours)
    return replace(
        state,
        lamp_on_s=h1 * 3600.0,
        powered_s=state.powered_s + np.where(powered, dt_s, 0.0),
        driver_temp_c=temp,
        energy_wh=state.energy_wh + p_mean * dt_s / 3600.0,
        apparent_energy_vah=state.apparent_energy_vah + s_mean * dt_s / 3600.0,
        load_energy_wh=state.load_energy_wh + p_led_mean * dt_s / 3600.0,
        power_w=p_end, apparent_power_va=s_end, load_power_w=p_led_end,
        power_factor=pf_end, current_a=i_end, supply_v=np.array(supply_v, dtype=np.float64),
        drive=drive_end, light_lm=np.where(lit, light, 0.0),
        led_current_a=np.where(lit, p_led_end / params.led_voltage_v, 0.0),
    )


def instantaneous(params: LuminaireParams, state: LuminaireState) -> LuminaireState:
    """Recompute the output fields for the current inputs without advancing time."""
    return step(params, state, 0.0, state.driver_temp_c, state.supply_v)
