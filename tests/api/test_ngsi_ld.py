"""FIWARE entities from rows, without a database: the mapping table by table, and any row's entity
valid against the FIWARE Streetlighting schemas (vendored under tests/api/fiware, checked offline)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api import ngsi_ld as n
from api.geojson import feature
from tests.api.fiware_schemas import errors

T0 = datetime(2026, 11, 30, 21, 14, tzinfo=UTC)


def _row(**kw: object) -> n.StreetlightRow:
    base: dict[str, object] = dict(tenant="anderlecht", tenant_name="Anderlecht",
                                   controller_id="ctl-000001", idx=0, lon=4.309, lat=50.8366)
    base.update(kw)
    return n.StreetlightRow(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize("kinds, status", [
    ((), "ok"),
    (("lampFailure",), "defectiveLamp"),
    (("relayFailure",), "defectiveLamp"),
    (("controlGearCommFailure", "lampFailure"), "brokenLantern"),
    (("poleTilted", "lampFailure"), "columnIssue"),
    (("supplyVoltageTooHigh", "powerFactorTooLow", "communicationFailure", "supplyLoss"), "ok"),
    (("lampUnexpectedOn",), "defectiveLamp"),
    (("lampPowerTooHigh",), "defectiveLamp"),
    (("absoluteLampPowerTooLow",), "defectiveLamp"),
    (("currentTooHigh",), "ok"),  # a supply current (often a low power factor): the light is fine
])
def test_status_follows_the_most_serious_open_fault(kinds: tuple[str, ...], status: str) -> None:
    assert n.status_of(kinds) == status


@pytest.mark.parametrize("level, light, state", [
    (0, 0.0, "off"), (1, 0.001, "low"), (170, 0.1, "low"), (229, 0.5, "low"), (250, 0.9, "low"),
    (251, 0.92, "on"),
    (254, 1.0, "on"),
])
def test_dali_arc_level_gives_light_on_the_logarithmic_curve(level: int, light: float,
                                                            state: str) -> None:
    assert n.relative_light(level) == pytest.approx(light, abs=0.01)
    assert n.power_state_of(level) == state


@given(st.integers(0, 253))
def test_light_grows_with_the_arc_level(level: int) -> None:
    assert 0.0 <= n.relative_light(level) < n.relative_light(level + 1) <= 1.0


@pytest.mark.parametrize("road_class, category", [
    ("M3", "road"), ("c1", "road"), ("P2", "pedestrianPath"), ("arterial", "road"),
    ("pedestrian", "pedestrianPath"), ("residential", "road"), ("X9", None), (None, None), ("", None),
])
def test_location_category_from_the_road_class(road_class: str | None,
                                               category: str | None) -> None:
    assert n.location_category(road_class) == category


def test_a_lit_luminaire_with_a_lamp_failure() -> None:
    live = n.LiveState(time=T0, level=254, power_w=0.4, voltage_v=231.46, power_factor=0.512,
                       failure=1)
    e = n.streetlight(_row(open_faults=("lampFailure",), live=live, pole_id="AND-0001",
                           cabinet="cab-1", group=7, model="Teceo 1", rated_power_w=36.0))
    assert e == {
        "id": "urn:ngsi-ld:Streetlight:anderlecht:ctl-000001:0", "type": "Streetlight",
        "location": {"type": "Point", "coordinates": [4.309, 50.8366]},
        "status": "defectiveLamp", "controllingMethod": "individual",
        "address": {"addressLocality": "Anderlecht"}, "dataProvider": "Luciole",
        "streetPoleNum": "AND-0001",
        "refStreetlightControlCabinet": "urn:ngsi-ld:StreetlightControlCabinet:anderlecht:cab-1",
        "refStreetlightGroup": "urn:ngsi-ld:StreetlightGroup:anderlecht:7",
        "refStreetlightModel": "urn:ngsi-ld:StreetlightModel:anderlecht:Teceo-1-"
                               + e["refStreetlightModel"].rsplit("-", 1)[1],
        "powerRating": 36.0, "observationDateTime": "2026-11-30T21:14:00Z",
        "powerState": "on", "illuminanceLevel": 1.0, "powerConsumption": 0.4, "voltage": 231.5,
        "powerFactor": 0.512,
    }
    assert errors(e) == []


def test_measurements_the_gear_does_not_make_are_left_out() -> None:
    live = n.LiveState(time=T0, level=0, power_w=0.0, voltage_v=0.0, power_factor=0.0,
                       failure=256 | 512)
    e = n.streetlight(_row(live=live))
    assert e["powerState"] == "off" and e["illuminanceLevel"] == 0.0
    assert not {"powerConsumption", "voltage", "powerFactor"} & e.keys()


def test_an_unknown_level_says_nothing_live() -> None:
    e = n.streetlight(_row(live=n.LiveState(T0, 255, 10.0, 230.0, 0.9, 0)))
    assert not {"powerState", "illuminanceLevel", "observationDateTime"} & e.keys()


def test_a_luminaire_outside_any_group_belongs_to_its_cabinet_circuit() -> None:
    e = n.streetlight(_row(cabinet="cab-1"))
    assert e["refStreetlightGroup"] == "urn:ngsi-ld:StreetlightGroup:anderlecht:circuit:cab-1"


def test_model_ids_keep_names_apart_and_match_the_ngsi_pattern() -> None:
    a, b = n.model_id("t", "A/B 36W"), n.model_id("t", "A-B 36W")
    assert a != b
    assert n.model_id("t", "Luma_2.1") == "urn:ngsi-ld:StreetlightModel:t:Luma_2.1"
    for m in ("A/B 36W", "Schréder Teceo", "x" * 300, "«»"):
        assert errors(n.streetlight_model("t", m, 36.0)) == []


@pytest.mark.parametrize("bbox, kind", [
    ((4.3, 50.8, 4.3, 50.8), "Point"),
    ((4.3, 50.8, 4.4, 50.8), "LineString"),
    ((4.3, 50.8, 4.4, 50.9), "Polygon"),
])
def test_a_group_extent(bbox: tuple[float, float, float, float], kind: str) -> None:
    geometry = n.extent(*bbox)
    assert geometry["type"] == kind
    if kind == "Polygon":
        ring = geometry["coordinates"][0]
        assert ring[0] == ring[-1] and len(ring) == 5
        # RFC 7946: the exterior ring is counter-clockwise (positive shoelace area)
        area = sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(ring, ring[1:], strict=False))
        assert area > 0


def test_a_cabinet_always_names_its_circuit_group() -> None:
    e = n.control_cabinet(n.CabinetRow("t", "T", "cab-1", 4.3, 50.8, groups=(3, 1, 3),
                                       controllers=2, contracted_kw=12.5))
    assert e["refStreetlightGroup"] == ["urn:ngsi-ld:StreetlightGroup:t:circuit:cab-1",
                                        "urn:ngsi-ld:StreetlightGroup:t:1",
                                        "urn:ngsi-ld:StreetlightGroup:t:3"]
    assert e["workingMode"] == "semiautomatic" and e["features"] == ["individualControl"]
    assert e["maximumPowerAvailable"] == 12.5
    assert errors(e) == []
    bare = n.control_cabinet(n.CabinetRow("t", "T", "cab-2", 4.3, 50.8))
    assert "features" not in bare and errors(bare) == []


def test_a_group_with_members_at_one_level() -> None:
    row = n.GroupRow("t", "T", members=(("c1", 0), ("c1", 1)), bbox=(4.3, 50.8, 4.31, 50.81),
                     group=4, name="Main street", levels=(229, 229))
    e = n.streetlight_group(row)
    assert e["refStreetlight"] == ["urn:ngsi-ld:Streetlight:t:c1:0", "urn:ngsi-ld:Streetlight:t:c1:1"]
    assert e["powerState"] == "low" and e["illuminanceLevel"] == pytest.approx(0.5, abs=0.01)
    assert errors(e) == []
    mixed = n.streetlight_group(row.__class__(**{**row.__dict__, "levels": (229, 254)}))
    assert "powerState" not in mixed and "illuminanceLevel" not in mixed


def test_normalized_form() -> None:
    live = n.LiveState(time=T0, level=254, power_w=30.0, voltage_v=230.0, power_factor=0.9,
                       failure=0)
    kv = n.streetlight(_row(live=live, cabinet="cab-1", installed_at=T0))
    out = n.normalized(kv)
    assert out["id"] == kv["id"] and out["type"] == "Streetlight"
    assert out["@context"] == n.CONTEXT
    assert out["location"] == {"type": "GeoProperty", "value": kv["location"]}
    assert out["refStreetlightControlCabinet"] == {"type": "Relationship",
                                                   "object": kv["refStreetlightControlCabinet"]}
    assert out["status"] == {"type": "Property", "value": "ok"}
    assert out["dateServiceStarted"] == {"type": "Property", "value": {
        "@type": "DateTime", "@value": "2026-11-30T21:14:00Z"}}
    assert out["powerConsumption"] == {"type": "Property", "value": 30.0,
                                       "observedAt": "2026-11-30T21:14:00Z"}
    assert set(out) == set(kv) | {"@context"}


rows = st.builds(
    n.StreetlightRow,
    tenant=st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9_.-]{0,20}\Z"),
    tenant_name=st.text(max_size=30),
    controller_id=st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z"),
    idx=st.integers(0, 1023),
    lon=st.floats(-180, 180), lat=st.floats(-90, 90),
    model=st.none() | st.text(min_size=1, max_size=40),
    rated_power_w=st.none() | st.floats(0, 1000) | st.just(float("nan")),
    road_class=st.none() | st.sampled_from(["M1", "C2", "P4", "pedestrian", "bogus"]),
    installed_at=st.none() | st.datetimes(timezones=st.just(UTC)),
    pole_id=st.none() | st.text(max_size=20),
    cabinet=st.none() | st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9_.-]{0,20}\Z"),
    group=st.none() | st.integers(1, 2**62),
    open_faults=st.lists(st.sampled_from(["lampFailure", "poleTilted", "supplyLoss",
                                          "controlGearCommFailure", "cyclingFailure"])).map(tuple),
    live=st.none() | st.builds(
        n.LiveState, time=st.datetimes(timezones=st.just(UTC)), level=st.integers(0, 255),
        power_w=st.floats(allow_nan=True, allow_infinity=True, width=32),
        voltage_v=st.floats(allow_nan=True, width=32), power_factor=st.floats(-1, 1, width=32),
        failure=st.integers(0, 1023)),
)


@given(rows)
def test_any_luminaire_gives_a_valid_streetlight_and_a_geojson_feature(row: n.StreetlightRow) -> None:
    e = n.streetlight(row)
    assert errors(e) == []
    f = feature(e)
    lon, lat = f["geometry"]["coordinates"]
    assert (lon, lat) == (pytest.approx(row.lon, abs=1e-6), pytest.approx(row.lat, abs=1e-6))
    assert "location" not in f["properties"]
    n.normalized(e)  # every attribute wraps
