"""Settlement files: RFC 4180 CSV that validates against its JSON Schema, local days across DST,
versions; and four scenarios mirroring Elexon's CMS equivalent-meter tests against the real
database (tests/analytics/energy_night.py): switch regime 999 (metered), switch regime 998
(levels only), a control failure across many units, revised data the following day."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from jsonschema import Draft202012Validator

from analytics import settlement as st
from analytics.settlement_job import build_files
from luciole.cli import main
from tests.analytics.energy_night import HELD_ARRIVE, OUTAGE_FROM, OUTAGE_UNTIL, Night


def _valid(kind: str, text: str) -> list[dict]:
    """The file's rows, each validated against its schema."""
    assert text.endswith("\r\n") and text.count("\r\n") >= 1  # RFC 4180 records end in CRLF
    rows = st.parse_csv(kind, text)
    validator = Draft202012Validator(st.schema(kind))
    for row in rows:
        errors = list(validator.iter_errors(row))
        assert not errors, (kind, row, [e.message for e in errors])
    return rows


# ------------------------------------------------------------------------------ pure
def test_the_schemas_are_valid_json_schemas_with_their_columns() -> None:
    for kind in st.KINDS:
        s = st.schema(kind)
        Draft202012Validator.check_schema(s)
        assert s["$id"].endswith(f"/{kind}/1")
        assert set(s["x-columns"]) == set(s["properties"]) == set(s["required"])


def test_csv_quotes_what_needs_quoting_and_reads_back() -> None:
    row = {"ean": "541449000000000001", "day": "2026-03-29", "luminaire_ref": "ctl-1/0",
           "controller_id": "ctl-1", "luminaire_idx": 0, "gtin": None, "serial": 'SN "7", batch 2',
           "model": "Lantern, 60 W\nretrofit", "rated_power_w": 60.0, "standby_power_w": 0.5,
           "control_type": "dali_d4i_metered", "switch_regime": 999, "cabinet_id": "cab-1",
           "switched_supply": True, "lat": 50.85, "lon": 4.35,
           "valid_from": datetime(2025, 1, 1, tzinfo=UTC), "valid_to": None, "kwh_day": 0.5,
           "data": "measured"}
    text = st.to_csv("inventory", [row])
    assert '"SN ""7"", batch 2"' in text and '"Lantern, 60 W\nretrofit"' in text
    back = _valid("inventory", text)[0]
    assert back["serial"] == row["serial"] and back["model"] == row["model"]
    assert back["gtin"] is None and back["switched_supply"] is True
    assert back["valid_from"] == "2025-01-01T00:00:00Z"


@pytest.mark.parametrize(("day", "rows", "first_local"), [
    (date(2026, 3, 29), 92, "2026-03-29T00:00:00+01:00"),
    (date(2026, 10, 25), 100, "2026-10-25T00:00:00+02:00"),
    (date(2026, 1, 15), 96, "2026-01-15T00:00:00+01:00"),
])
def test_a_profile_has_every_interval_of_the_local_day(day: date, rows: int,
                                                       first_local: str) -> None:
    start = st.local_day(day, "Europe/Brussels")[0]
    one = st.SupplyInterval(start + timedelta(hours=3), 5000.0, 4000.0, 900.0, 100.0, 60.0, 48,
                            40, 43200.0, 229.0, 0, 5200.0, 200.0)
    text = st.to_csv("profile", st.profile_rows("541449000000000001", day, "Europe/Brussels",
                                                [one]))
    parsed = _valid("profile", text)
    assert len(parsed) == rows
    assert [r["interval"] for r in parsed] == list(range(1, rows + 1))
    assert parsed[0]["start_local"] == first_local
    hit = [r for r in parsed if r["quality"] != "missing"]
    assert len(hit) == 1 and hit[0]["interval"] == 13 and hit[0]["quality"] == "default"
    assert hit[0]["kwh"] == 5.0 and hit[0]["difference_kwh"] == 0.2


@pytest.mark.parametrize(("m", "e", "d", "q"), [
    (10.0, 0.0, 0.0, "measured"), (10.0, 0.01, 0.0, "measured"), (10.0, 1.0, 0.0, "estimated"),
    (10.0, 0.0, 0.1, "default"), (0.0, 0.0, 0.0, "measured")])
def test_quality_is_the_least_certain_source_present(m: float, e: float, d: float, q: str) -> None:
    assert st.quality(m, e, d) == q


def test_level_events_name_switching_and_their_cause() -> None:
    t = [datetime(2026, 1, 15, 16, i, tzinfo=UTC) for i in range(5)]
    ev = st.level_events(t, [0, 254, 254, 229, 0], [False, False, False, True, False],
                         [False, True, False, False, True])
    assert [(e["event"], e["cause"]) for e in ev] == [
        ("switch_on", "schedule"), ("level_change", "override"), ("switch_off", "schedule")]


@pytest.mark.parametrize(("current", "sha", "store", "version"), [
    (None, "a", True, 1), ((1, "a"), "a", False, 1), ((1, "a"), "b", True, 2),
    ((4, "a"), "b", True, 5)])
def test_a_new_version_only_when_the_content_changed(current: tuple[int, str] | None, sha: str,
                                                    store: bool, version: int) -> None:
    assert st.next_version(current, sha) == st.Version(store, version)


# ------------------------------------------------------------------- against the database



def _ean_of_controller(night: Night, c: int) -> str:
    return night.inventory.cabinet_ean[int(night.inventory.controller_cabinet[c])]


FIRST_DAY = date(2025, 1, 14)  # the local day the night starts (Europe/Brussels)


@pytest.mark.integration
@pytest.mark.district
def test_switch_regime_999_metered_luminaires(energy_night: Night) -> None:
    night = energy_night
    ean = _ean_of_controller(night, int(night.outage[0]))  # the cabinet with D4i gear only
    with psycopg.connect(night.dsn) as conn:
        files = build_files(conn, ean, date(2025, 1, 15))
        sums = dict(conn.execute(
            "SELECT bucket, sum(e.energy_wh) FROM energy_interval e JOIN controllers c"
            " ON c.key = e.controller_key JOIN cabinets cab ON cab.id = c.cabinet_id"
            " WHERE cab.supply_point_ean = %s GROUP BY 1", (ean,)).fetchall())
    inventory = _valid("inventory", files["inventory"])
    assert inventory and {r["switch_regime"] for r in inventory} == {999}
    assert {r["control_type"] for r in inventory} == {"dali_d4i_metered"}
    profile = _valid("profile", files["profile"])
    assert len(profile) == 96
    for r in profile:
        start = datetime.fromisoformat(r["start_utc"].replace("Z", "+00:00"))
        assert r["kwh"] == pytest.approx(sums[start] / 1000.0, abs=1e-6)
        assert r["luminaires_expected"] == len(inventory)
    outside = [r for r in profile if not (night.at(OUTAGE_FROM) <= datetime.fromisoformat(
        r["start_utc"].replace("Z", "+00:00")) < night.at(OUTAGE_UNTIL + 1))]
    lit = [r for r in outside if r["burning_minutes"] and r["burning_minutes"] > 60]
    assert lit and sum(r["quality"] == "measured" for r in lit) >= 0.9 * len(lit)
    events = _valid("events", files["events"])
    assert {"switch_off", "level_change"} <= {e["event"] for e in events}
    dim = [e for e in events if e["event"] == "level_change" and e["level_to"] == 229]
    assert dim and all(e["cause"] == "schedule" for e in dim)  # the whole cabinet dims at 23:00
    _valid("faults", files["faults"])


@pytest.mark.integration
@pytest.mark.district
def test_switch_regime_998_level_only_gear(energy_night: Night) -> None:
    night = energy_night
    lum = int(night.level_only.nonzero()[0][0])
    ean = _ean_of_controller(night, int(night.inventory.luminaire_controller[lum]))
    with psycopg.connect(night.dsn) as conn:
        files = build_files(conn, ean, date(2025, 1, 15))
    inventory = _valid("inventory", files["inventory"])
    regimes = {(r["luminaire_idx"], r["switch_regime"]) for r in inventory}
    assert (3, 998) in regimes and (0, 999) in regimes and (3, 999) not in regimes
    assert {r["control_type"] for r in inventory if r["switch_regime"] == 998} == {
        "dali_level_only"}
    profile = _valid("profile", files["profile"])
    lit = [r for r in profile if r["burning_minutes"] and r["burning_minutes"] > 60]
    # a quarter of its luminaires are counted from their levels: every lit interval is estimated
    assert lit and all(r["quality"] == "estimated" and r["kwh_estimated"] > 0 for r in lit)
    assert all(r["flags"] & 1024 for r in lit)


@pytest.mark.integration
@pytest.mark.district
def test_a_control_failure_across_many_units(energy_night: Night) -> None:
    night = energy_night
    ean = _ean_of_controller(night, int(night.outage[0]))
    day = FIRST_DAY if night.at(OUTAGE_FROM) < datetime(2025, 1, 14, 23, tzinfo=UTC) else date(
        2025, 1, 15)
    with psycopg.connect(night.dsn) as conn:
        files = build_files(conn, ean, day)
    profile = _valid("profile", files["profile"])
    events = _valid("events", files["events"])
    lost = [e for e in events if e["event"] == "comm_lost"]
    back = [e for e in events if e["event"] == "comm_restored"]
    assert len(lost) == len(night.outage) == len(back)
    assert {e["cause"] for e in lost} == {"connection"}
    during = [r for r in profile if night.at(OUTAGE_FROM + 0.25) <= datetime.fromisoformat(
        r["start_utc"].replace("Z", "+00:00")) < night.at(OUTAGE_UNTIL - 0.25)]
    assert during
    for r in during:
        assert r["luminaires_reporting"] <= r["luminaires_expected"] - 4 * len(night.outage)
        assert r["quality"] == "estimated" and r["kwh_estimated"] > 0
        assert r["uncertainty_kwh"] > 0


@pytest.mark.integration
@pytest.mark.district
def test_revised_data_the_following_day_supersedes_and_keeps_the_first_version(
        energy_night: Night, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    night = energy_night
    # the held readings (the evening of the first local day) arrived at hour 10, the next day
    assert night.at(HELD_ARRIVE).astimezone().date() >= FIRST_DAY
    before = {(e, d, k): v for e, d, k, v in night.settlement_before_late}
    from tests.analytics.energy_night import HELD_CTL
    ean = _ean_of_controller(night, HELD_CTL)
    assert before[(ean, FIRST_DAY, "profile")] == 1
    with psycopg.connect(night.dsn) as conn:
        versions = conn.execute(
            "SELECT version, superseded_at IS NOT NULL, content FROM settlement_files"
            " WHERE ean = %s AND day = %s AND kind = 'profile' ORDER BY version",
            (ean, FIRST_DAY)).fetchall()
    assert [v[0] for v in versions] == [1, 2]
    assert versions[0][1] and not versions[1][1]  # the first kept, superseded
    old = {r["interval"]: r for r in _valid("profile", versions[0][2])}
    new = {r["interval"]: r for r in _valid("profile", versions[1][2])}
    revised = [k for k in new if old[k]["kwh"] != new[k]["kwh"]]
    assert revised
    assert sum(new[k]["quality"] == "measured" for k in revised) > sum(
        old[k]["quality"] == "measured" for k in revised)
    # the command writes the current versions; a re-run without new data adds no version
    monkeypatch.setenv("LUCIOLE_JOBS_DSN", night.dsn)
    assert main(["settlement", "export", "--ean", ean, "--day", FIRST_DAY.isoformat(),
                 "--out", str(tmp_path)]) == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert f"{ean}_{FIRST_DAY.isoformat()}_profile_v2.csv" in names and len(names) == 4
    for p in tmp_path.iterdir():
        kind = p.name.split("_")[2]
        _valid(kind, p.read_bytes().decode("utf-8"))
    with psycopg.connect(night.dsn) as conn:
        n = conn.execute("SELECT count(*) FROM settlement_files WHERE ean = %s AND day = %s"
                         " AND kind = 'profile'", (ean, FIRST_DAY)).fetchone()
    assert n is not None and n[0] == 2


@pytest.mark.integration
@pytest.mark.district
def test_an_unknown_supply_point_or_a_bad_day_is_refused(energy_night: Night, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LUCIOLE_JOBS_DSN", energy_night.dsn)
    assert main(["settlement", "export", "--ean", "999999999999999999", "--day", "2025-01-15",
                 "--out", str(tmp_path)]) == 2
    assert main(["settlement", "export", "--ean", "999999999999999999", "--day", "2100-13-01",
                 "--out", str(tmp_path)]) == 2
