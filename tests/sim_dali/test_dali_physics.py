"""Physical LED luminaire model: curves, power, energy, CLO, mains, temperature."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller_fw_sim import physics as ph


def test_log_curve_known_points():
    x = ph.log_curve_percent(np.array([0, 1, 86, 170, 254]))
    assert x[0] == 0.0
    assert x[1] == pytest.approx(0.1)
    assert x[2] == pytest.approx(10 ** (85 / (253 / 3) - 1))  # ~1.02 %
    assert x[3] == pytest.approx(10.0, rel=0.02)
    assert x[4] == pytest.approx(100.0)


def test_curves_monotonic():
    levels = np.arange(0, 255)
    for curve in (ph.log_curve_percent(levels), ph.linear_curve_percent(levels)):
        assert np.all(np.diff(curve) > 0)
    assert ph.linear_curve_percent(np.array([127]))[0] == pytest.approx(50.0, rel=0.01)
    # each log step is a constant ratio (2.8 %)
    r = ph.log_curve_percent(levels[2:]) / ph.log_curve_percent(levels[1:-1])
    assert np.allclose(r, 10 ** (3 / 253))


def test_input_power_monotonic_and_efficiency_falls_at_low_load():
    p = ph.LuminaireParams.uniform(254)
    demand = ph.light_fraction(np.arange(1, 255), np.zeros(254, int))
    power = ph.input_power_w(p, demand, np.ones(254, bool))
    assert np.all(np.diff(power) > 0)
    eta = ph.driver_efficiency(demand, p.eta_max, p.eta_knee)
    assert np.all(np.diff(eta) > 0) and eta[-1] == pytest.approx(0.92)
    assert power[-1] == pytest.approx(0.5 + 60 / 0.92)


def _night(n=4, clo=False):
    p = ph.LuminaireParams.uniform(n, clo=clo)
    s = ph.LuminaireState.initial(n).with_inputs(level=np.array([254, 200, 120, 0])[:n])
    return p, s


def test_energy_is_power_times_time_at_constant_level():
    p, s = _night()
    s = ph.step(p, s, 3600.0, 15.0, 230.0)
    assert np.allclose(s.energy_wh, s.power_w * 1.0)      # 1 h at constant power


@pytest.mark.parametrize("clo", [False, True])
def test_energy_exact_whatever_the_step(clo):
    p, s0 = _night(clo=clo)
    s0 = s0.with_inputs(lamp_on_s=np.full(4, 70_000 * 3600.0))  # CLO still ramping
    one = ph.step(p, s0, 7200.0, 15.0, 230.0)
    many = s0
    for _ in range(720):
        many = ph.step(p, many, 10.0, 15.0, 230.0)
    assert np.allclose(one.energy_wh, many.energy_wh, rtol=1e-9)
    assert np.allclose(one.lamp_on_s, many.lamp_on_s)


def test_clo_keeps_light_constant_and_raises_power():
    p = ph.LuminaireParams.uniform(2, clo=False)
    p = ph.LuminaireParams(**{**p.__dict__, "clo": np.array([False, True])})
    young = ph.LuminaireState.initial(2).with_inputs(level=np.full(2, 254))
    old = young.with_inputs(lamp_on_s=np.full(2, 80_000 * 3600.0))
    y, o = ph.instantaneous(p, young), ph.instantaneous(p, old)
    assert y.light_lm[1] == pytest.approx(0.8 * 8400)            # CLO starts under-driven
    assert o.light_lm[1] == pytest.approx(y.light_lm[1], rel=1e-9)
    assert o.power_w[1] > y.power_w[1]
    assert o.light_lm[0] == pytest.approx(8400 * 0.8 ** 0.8)      # no CLO: depreciates
    at_l80 = ph.lumen_maintenance(np.array([100_000.0]), np.array([100_000.0]))
    assert at_l80[0] == pytest.approx(0.8)


def test_mains_voltage_changes_current_not_power():
    p, s = _night(1)
    lo = ph.step(p, s, 1.0, 15.0, 207.0)
    hi = ph.step(p, s, 1.0, 15.0, 253.0)
    assert lo.power_w[0] == pytest.approx(hi.power_w[0])
    assert lo.current_a[0] * 207 == pytest.approx(hi.current_a[0] * 253)
    off = ph.step(p, s, 1.0, 15.0, 0.0)
    assert off.power_w[0] == 0 and off.powered_s[0] == 0


def test_power_factor_falls_at_low_load():
    p, s = _night()
    s = ph.instantaneous(p, s)
    assert s.power_factor[0] > s.power_factor[1] > s.power_factor[2] > s.power_factor[3]
    assert np.allclose(s.apparent_power_va * s.power_factor, s.power_w)


def test_driver_temperature_first_order_lag():
    p, s = _night(1)
    s = ph.step(p, s, p.thermal_tau_s[0], 10.0, 230.0)
    target = 10.0 + 25.0
    assert s.driver_temp_c[0] == pytest.approx(target + (15.0 - target) * math.exp(-1))
    s = ph.step(p, s, 50 * p.thermal_tau_s[0], 10.0, 230.0)
    assert s.driver_temp_c[0] == pytest.approx(target)


def _reference_step(level, curve, hours, dt_s, clo, ambient, temp0, mains):
    """Scalar pure-Python oracle with brute-force integration of CLO drift."""
    pct = 0.0 if level == 0 else (10 ** ((level - 1) / (253 / 3) - 1) if curve == 0
                                  else level / 254 * 100)
    demand = pct / 100
    n = 2000
    energy = 0.0
    for k in range(n):
        h = hours + (k + 0.5) / n * dt_s / 3600 * (demand > 0)
        gain = min(1.0, 0.8 / 0.8 ** (h / 100_000)) if clo else 1.0
        d = demand * gain
        p = 0.5 + (60 * d / (0.92 * d / (d + 0.05 * (1 - d))) if d > 0 else 0.0)
        energy += p * dt_s / n / 3600
    return energy


@settings(max_examples=60, deadline=None)
@given(level=st.integers(0, 254), curve=st.sampled_from([0, 1]),
       hours=st.floats(0, 150_000), dt=st.floats(1, 86_400), clo=st.booleans())
def test_step_matches_scalar_reference(level, curve, hours, dt, clo):
    p = ph.LuminaireParams.uniform(1, clo=clo)
    s = ph.LuminaireState.initial(1).with_inputs(level=np.array([level]),
                                                  curve=np.array([curve]),
                                                  lamp_on_s=np.array([hours * 3600]))
    out = ph.step(p, s, dt, 15.0, 230.0)
    ref = _reference_step(level, curve, hours, dt, clo, 15.0, 15.0, 230.0)
    assert out.energy_wh[0] == pytest.approx(ref, rel=1e-6)
