"""Pure parts of the agent: command decisions, target levels and CLO, telemetry building,
settings, backoff, durable state."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.commands import Seen, Verdict, decide, override_of, prune
from edge_agent.levels import (
    CloModel,
    apply_clo,
    arc_to_fraction,
    fraction_to_arc,
    override_level,
    target_levels,
)
from edge_agent.link import classify, reconnect_delay
from edge_agent.poller import FaultTracker, poll_wait_s
from edge_agent.presence_boost import Boost
from edge_agent.settings import SettingsError, load_settings
from edge_agent.state import AgentState
from edge_agent.telemetry import LuminaireReading, SeqCounter, luminaire_records, meter_records, payloads
from wire.codec import decode
from wire.messages import AckStatus, GroupTarget, Identify, LuminaireTarget, SetLevel
from wire.records import LuminaireFailure, Quantity

T0 = datetime(2025, 1, 10, 20, 0, tzinfo=UTC)


def _set(level=100, target="all", duration_s=None, issued=T0, ttl_s=300):
    return SetLevel(target=target, level=level, duration_s=duration_s, issued_at=issued,
                    expires_at=issued + timedelta(seconds=ttl_s))


# --- commands ----------------------------------------------------------------------------

@pytest.mark.parametrize("received_after_s, seen, verdict, status", [
    (0, None, Verdict.ACCEPT, AckStatus.ACCEPTED),
    (299, None, Verdict.ACCEPT, AckStatus.ACCEPTED),
    (300, None, Verdict.EXPIRED, AckStatus.REFUSED),  # at expires_at it is already too late
    (3600, None, Verdict.EXPIRED, AckStatus.REFUSED),
    (0, Seen(AckStatus.DONE), Verdict.DUPLICATE, AckStatus.DONE),
    (3600, Seen(AckStatus.FAILED, "no gear"), Verdict.DUPLICATE, AckStatus.FAILED),  # same answer
])
def test_decide(received_after_s, seen, verdict, status):
    d = decide(_set(), T0 + timedelta(seconds=received_after_s), seen)
    assert (d.verdict, d.status) == (verdict, status)
    if verdict is Verdict.EXPIRED:
        assert "expired" in d.reason


def test_override_lasts_its_duration_then_the_schedule_resumes():
    o = override_of(_set(level=80, duration_s=600), T0)
    assert o.active(T0) and o.active(T0 + timedelta(seconds=599))
    assert not o.active(T0 + timedelta(seconds=600))
    assert prune((o,), T0 + timedelta(seconds=600)) == ()
    assert override_of(_set(duration_s=None), T0).until is None


# --- levels ------------------------------------------------------------------------------

LUMS = {0: frozenset({1}), 1: frozenset({1, 2}), 2: frozenset()}


def test_newest_matching_override_wins_and_others_follow_the_schedule():
    all_ = override_of(_set(level=50, target="all"), T0)
    group = override_of(_set(level=120, target=GroupTarget(group=2)), T0)
    one = override_of(_set(level=200, target=LuminaireTarget(luminaire=0)), T0)
    assert target_levels(LUMS, 254, None, (group, one), T0) == {0: 200, 1: 120, 2: 254}
    assert target_levels(LUMS, 254, None, (group, one, all_), T0) == {0: 50, 1: 50, 2: 50}


def test_identify_blinks_at_one_hertz():
    o = override_of(Identify(target=LuminaireTarget(luminaire=2), duration_s=10, issued_at=T0,
                             expires_at=T0 + timedelta(minutes=1)), T0)
    levels = [override_level(o, T0 + timedelta(seconds=k * 0.5)) for k in range(4)]
    assert levels == [254, 0, 254, 0]
    assert target_levels(LUMS, 100, None, (o,), T0 + timedelta(seconds=11))[2] == 100


def test_presence_boost_applies_only_when_lit():
    boost = Boost(level=254, hold_until=T0 + timedelta(seconds=60), fade_s=2)
    assert set(target_levels(LUMS, 120, boost, (), T0).values()) == {254}
    assert set(target_levels(LUMS, 0, boost, (), T0).values()) == {0}


@given(st.integers(1, 254))
def test_log_curve_round_trips(level):
    assert fraction_to_arc(arc_to_fraction(level)) == level


def test_log_curve_anchors():
    assert arc_to_fraction(254) == pytest.approx(1.0)
    assert arc_to_fraction(1) == pytest.approx(0.001)
    assert arc_to_fraction(0) == 0 and fraction_to_arc(0) == 0


@given(st.integers(1, 254), st.floats(0, 200_000))
def test_clo_never_raises_output_above_the_schedule_and_never_switches_off(level, hours):
    out = apply_clo(level, CloModel().gain(hours))
    assert 1 <= out <= level


def test_clo_drives_new_luminaires_lower_and_old_ones_at_full():
    model = CloModel(life_h=100_000, end_maintenance=0.8)
    assert model.gain(0) == pytest.approx(0.8)
    assert model.gain(100_000) == pytest.approx(1.0)
    assert apply_clo(254, model.gain(0)) == fraction_to_arc(0.8)
    new, old = target_levels({0: frozenset(), 1: frozenset()}, 254, None, (), T0, clo=True,
                             on_hours={0: 0, 1: 100_000}).values()
    assert new < old == 254


# --- telemetry ---------------------------------------------------------------------------

def test_records_and_payloads_number_readings_consecutively():
    readings = [LuminaireReading(1_736_539_200_000_000 + i, i, level=254, power_w=60.5,
                                 power_factor=float("nan"), failure=LuminaireFailure.LAMP)
                for i in range(7)]
    records = luminaire_records(readings)
    assert records["power_factor"][0] == 0.0, "a non-finite value becomes 0, not a rejected record"
    seq = SeqCounter()
    out = list(payloads(records, boot_id=9, seq=seq, per_message=3))
    assert [first for first, _ in out] == [0, 3, 6] and seq.next == 7
    decoded = [decode(p) for _, p in out]
    assert [d.record_count for d in decoded] == [3, 3, 1]
    assert all(d.boot_id == 9 for d in decoded)
    assert np.concatenate([d.records for d in decoded])["luminaire"].tolist() == list(range(7))


def test_meter_records_carry_known_quantities_only():
    recs = meter_records(1_736_539_200_000_000, 0, {"energy_import_kwh": 12.5, "power_total": 300,
                                                     "phase_angle_l1": 3.0})
    assert sorted(recs["quantity"].tolist()) == sorted([Quantity.ENERGY_KWH, Quantity.POWER_W])


# --- settings ----------------------------------------------------------------------------

def test_settings_from_toml_with_environment_override(tmp_path, monkeypatch):
    path = tmp_path / "agent.toml"
    path.write_text('controller_id = "ctl-9"\ntenant = "ixelles"\n[broker]\nhost = "mqtt.local"\n'
                    'port = 8883\n[broker.tls]\nca = "/etc/ca.pem"\n[[dali]]\nport = 6000\n'
                    '[[modbus]]\nhost = "10.0.0.2"\n[config]\ntelemetry_interval_s = 30\n')
    monkeypatch.setenv("LUCIOLE_AGENT_BROKER__PASSWORD", "from-env")
    s = load_settings(path)
    assert (s.broker.host, s.broker.port, s.broker.password) == ("mqtt.local", 8883, "from-env")
    assert str(s.broker.tls.ca) == "/etc/ca.pem"
    assert s.dali[0].port == 6000 and s.modbus[0].profile == "eastron_sdm630"
    assert s.config.telemetry_interval_s == 30


@pytest.mark.parametrize("body, where", [
    ('{"tenant": "t"}', "controller_id"),
    ('{"controller_id": "a/b", "tenant": "t"}', "controller_id"),
    ('{"controller_id": "c", "tenant": "t", "modbus": [{"profile": "x"}]}', "modbus"),
    ('{"controller_id": "c", "tenant": "t", "dali": [{"kind": "hid"}]}', "dali"),
    ('not json', "not valid"),
])
def test_bad_settings_say_what_is_wrong(tmp_path, body, where):
    path = tmp_path / "agent.json"
    path.write_text(body)
    with pytest.raises(SettingsError, match=where):
        load_settings(path)


# --- backoff, faults, state ----------------------------------------------------------------

@given(st.integers(1, 50))
def test_reconnect_delay_is_capped_and_jittered(attempt):
    d = reconnect_delay(attempt, 0.5, 30.0, random.Random(attempt))
    assert 0.25 <= d <= 30.0
    assert d <= 0.5 * 2 ** (attempt - 1)


@pytest.mark.parametrize("error, cause, permanent", [
    ("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate in "
     "certificate chain (_ssl.c:1006)", "tls_trust", True),
    ("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: Hostname mismatch", "tls_trust", True),
    ("[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1006)", "tls", True),
    ("Not authorized", "auth", True),
    ("Bad user name or password", "auth", True),
    ("[Errno 111] Connection refused", "network", False),
    ("Operation timed out", "network", False),
    (None, "network", False),
])
def test_link_failures_are_classified_with_a_hint_for_those_a_retry_will_not_cure(error, cause, permanent):
    import aiomqtt

    got, hint = classify(None if error is None else aiomqtt.MqttError(error))
    assert got == cause and (hint is not None) == permanent


def test_poll_backoff_grows_then_caps():
    rng = random.Random(0)
    assert poll_wait_s(10, 0, rng) == 10
    assert all(poll_wait_s(10, k, rng) <= 80 for k in range(1, 20))


def test_fault_tracker_reports_transitions_once():
    t = FaultTracker()
    assert t.failed(("gear", 1), "x") and not t.failed(("gear", 1), "x")
    assert t.recovered(("gear", 1)) and not t.recovered(("gear", 1))


def test_state_boot_ids_increase_and_answers_survive_reopen(tmp_path):
    s = AgentState(tmp_path / "state.sqlite")
    first = s.new_boot(1000.0)
    s.answered("cmd-1", AckStatus.DONE, None, 1000.0)
    s.close()
    s = AgentState(tmp_path / "state.sqlite")
    assert s.new_boot(10.0) > first, "even with a clock that went back"
    assert s.seen("cmd-1") == Seen(AckStatus.DONE, None) and s.seen("cmd-2") is None
    s.close()
