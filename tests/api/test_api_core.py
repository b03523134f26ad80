"""The API's pure core, without services: lockout, keys, cursors, buckets, settlement days,
command fan-out, inventory parsing."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.clock import ApiClock
from api.commands import Member, fan_out
from api.credentials import (
    CredentialError,
    after_login,
    is_locked,
    key_matches,
    key_prefix,
    new_api_key,
    read_token,
)
from api.inventory_import import parse_csv, parse_geojson
from api.pagination import decode_cursor, encode_cursor
from api.problems import Problem
from api.settlement import intervals
from api.timeseries import choose_bucket, time_range
from wire.messages import LuminaireTarget

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize(("ok", "failed", "expect_failed", "locked"), [
    (True, 4, 0, False), (False, 0, 1, False), (False, 3, 4, False), (False, 4, 0, True),
    (True, 0, 0, False),
])
def test_lockout_rule(ok: bool, failed: int, expect_failed: int, locked: bool) -> None:
    outcome = after_login(ok, failed, NOW, 5, timedelta(minutes=15))
    assert outcome.failed_logins == expect_failed
    assert (outcome.locked_until == NOW + timedelta(minutes=15)) is locked
    assert is_locked(outcome.locked_until, NOW + timedelta(minutes=14)) is locked
    assert not is_locked(outcome.locked_until, NOW + timedelta(minutes=15))


def test_keys_round_trip_and_refuse_lookalikes() -> None:
    key = new_api_key()
    assert key_prefix(key.secret) == key.prefix and key_matches(key.key_hash, key.secret)
    assert not key_matches(key.key_hash, key.secret + "x")
    for bad in ["", "lk_", "xx_0123456789ab_" + "a" * 43, "lk_0123456789AB_" + "a" * 43,
                "lk_0123_" + "a" * 43, "lk_0123456789ab_short"]:
        with pytest.raises(CredentialError):
            key_prefix(bad)


def test_tokens_refuse_garbage() -> None:
    for bad in ["", "a.b.c", "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0."]:
        with pytest.raises(CredentialError):
            read_token(bad, "s" * 32, NOW)


@given(st.one_of(st.integers(min_value=-(1 << 63), max_value=(1 << 63) - 1),
                 st.text(min_size=1, max_size=128).filter(lambda s: "\x00" not in s)))
def test_cursor_round_trip(key: int | str) -> None:
    assert decode_cursor(encode_cursor(key), type(key)) == key


@given(st.text(max_size=600))
def test_any_cursor_is_a_page_or_a_400(cursor: str) -> None:
    try:
        decode_cursor(cursor, int)
    except Problem as exc:
        assert exc.status == 400


@pytest.mark.parametrize(("span", "bucket"), [
    (timedelta(hours=1), timedelta(minutes=1)), (timedelta(days=1), timedelta(minutes=1)),
    (timedelta(days=7), timedelta(minutes=15)), (timedelta(days=31), timedelta(hours=1)),
    (timedelta(days=400), timedelta(hours=6)),
])
def test_bucket_from_range(span: timedelta, bucket: timedelta) -> None:
    assert choose_bucket(span) == bucket
    assert span / bucket <= 2000


def test_time_range_refusals() -> None:
    with pytest.raises(Problem):
        time_range(datetime(2026, 1, 1), None, NOW)  # naive
    with pytest.raises(Problem):
        time_range(NOW, NOW - timedelta(hours=1), NOW)
    with pytest.raises(Problem):
        time_range(NOW - timedelta(days=500), NOW, NOW)
    with pytest.raises(Problem):
        time_range(None, datetime(1, 1, 1, tzinfo=UTC), NOW)  # a day before year 1
    with pytest.raises(Problem):
        time_range(None, datetime(9999, 12, 31, 23, 59, tzinfo=timezone(timedelta(hours=-1))), NOW)


@pytest.mark.parametrize(("day", "count"), [
    (date(2026, 3, 29), 92), (date(2026, 10, 25), 100), (date(2026, 6, 1), 96),
])
def test_settlement_days_follow_daylight_saving(day: date, count: int) -> None:
    starts = intervals(day, "Europe/Brussels")
    assert len(starts) == count
    assert all(b - a == timedelta(minutes=15) for a, b in zip(starts, starts[1:], strict=False))


@pytest.mark.parametrize(("left_s", "interval"), [(3600.9, 3599), (10, 9), (1.5, 1), (0.2, 1), (-5, 1)])
def test_broker_expiry_never_outlives_the_command(left_s: float, interval: int) -> None:
    assert ApiClock().expiry_interval_s(NOW + timedelta(seconds=left_s), NOW) == interval


def test_fan_out_whole_controllers_and_single_luminaires() -> None:
    members = [Member(1, "c1", 0, 2), Member(2, "c1", 1, 2), Member(3, "c2", 0, 4)]
    devices = fan_out(members)
    assert [(d.controller_id, d.luminaire_id, d.target) for d in devices] == [
        ("c1", None, "all"), ("c2", 3, LuminaireTarget(luminaire=0))]
    assert fan_out([Member(9, "c3", 5, 0)])[0].target == LuminaireTarget(luminaire=5)


CSV_CASES = [
    ("controller_id,idx,lat\nctl-1,0,50.1\n", 1, []),
    ("controller_id,idx\nctl-1,0\nctl-1,0\n", 1, [(3, "already on line 2")]),
    ("controller_id,idx\nbad id,0\n", 0, [(2, "controller_id")]),
    ("controller_id,idx\nctl-1,2000\n", 0, [(2, "idx")]),
    ("controller_id,idx,lat\nctl-1,0,north\n", 0, [(2, "lat")]),
    ("controller_id,idx,lat\nctl-1,0,nan\n", 0, [(2, "lat")]),
    ("controller_id,idx\nctl-1,0,extra\n", 0, [(2, "3 cells")]),
    ("controller_id,colour\nctl-1,red\n", 0, [(1, "unknown columns")]),
    ("", 0, [(1, "empty")]),
    ("controller_id,idx,model\nctl-1,0,a\x00b\n", 0, [(2, "NUL")]),
    ("controller_id,idx,installed_at\nctl-1,0,2024-01-01T00:00:00\n", 0, [(2, "installed_at")]),
    ("controller_id,idx\n\nctl-1,1\n", 1, []),
]


@pytest.mark.parametrize(("text", "good", "errors"), CSV_CASES)
def test_csv_rows(text: str, good: int, errors: list[tuple[int, str]]) -> None:
    parsed = parse_csv(text)
    assert len(parsed.rows) == good
    assert [e.line for e in parsed.errors] == [line for line, _ in errors]
    for error, (_, words) in zip(parsed.errors, errors, strict=True):
        assert words in error.reason


def _fc(*features: object) -> str:
    return json.dumps({"type": "FeatureCollection", "features": list(features)})


def _point(props: dict[str, object], coords: object = (4.35, 50.85)) -> dict[str, object]:
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": coords},
            "properties": props}


def test_geojson_rows() -> None:
    parsed = parse_geojson(_fc(
        _point({"controller_id": "ctl-1", "idx": 0}),
        _point({"controller_id": "ctl-1", "idx": 1}, coords=[200, 50]),
        _point({"controller_id": "ctl-1", "idx": "two"}),
        {"type": "Feature", "geometry": {"type": "LineString", "coordinates": []}, "properties": {}},
        "not a feature",
        _point({"controller_id": "ctl-1", "idx": 3, "extra": 1}),
    ))
    assert len(parsed.rows) == 1 and parsed.rows[0][1].lat == 50.85
    assert [e.line for e in parsed.errors] == [2, 3, 4, 5, 6]
    assert parse_geojson("{").errors[0].line == 0
    assert parse_geojson('{"type": "Feature"}').errors[0].reason.startswith("expected")


@given(st.text(max_size=400))
def test_any_csv_is_rows_or_reasons(text: str) -> None:
    parsed = parse_csv(text)
    lines = [line for line, _ in parsed.rows] + [e.line for e in parsed.errors]
    assert all(line >= 1 for line in lines)
