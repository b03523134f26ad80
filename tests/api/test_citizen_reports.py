"""Citizens' reports without a database: what is refused and why, distances, matching a report to a
streetlight and a fault, folding duplicates, the status a report shows, and the flood limit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api import citizen_reports as cr
from api.geo import bbox_around, haversine_m, valid_position
from api.open311_format import Open311Error, render, render_errors
from api.open311_parse import decode_fields
from api.open311_services import BY_CODE
from api.rate_limit import TokenBuckets

T0 = datetime(2026, 11, 30, 21, 0, tzinfo=UTC)
OUT = BY_CODE["streetlight_out"]
GOOD = {"jurisdiction_id": "anderlecht", "service_code": "streetlight_out",
        "lat": "50.8366", "long": "4.309"}


@pytest.mark.parametrize("change, code, says", [
    ({"jurisdiction_id": None}, 400, "jurisdiction_id was not provided"),
    ({"jurisdiction_id": "x'; DROP TABLE tenants;--"}, 404, "jurisdiction_id not found"),
    ({"service_code": None}, 400, "service_code was not provided"),
    ({"service_code": "pothole"}, 400, "service_code not found"),
    ({"service_code": "streetlight_out' OR 1=1--"}, 400, "service_code not found"),
    ({"lat": None, "long": None}, 400, "a location is required"),
    ({"long": None}, 400, "lat and long go together"),
    ({"lat": "91"}, 400, "lat must lie in"),
    ({"long": "-180.5"}, 400, "lat must lie in"),
    ({"lat": "NaN"}, 400, "lat is not a number"),
    ({"lat": "nan"}, 400, "lat is not a number"),
    ({"long": "inf"}, 400, "long is not a number"),
    ({"lat": "1e400"}, 400, "lat is not a finite number"),
    ({"lat": "50,8366"}, 400, "lat is not a number"),
    ({"lat": "0x10"}, 400, "lat is not a number"),
    ({"description": "x" * 4001}, 400, "description is longer than 4000"),
    ({"description": "lamp\x00out"}, 400, "description contains a control character"),
    ({"address_string": "rue\x1b[31m"}, 400, "address_string contains a control character"),
    ({"email": "not-an-address"}, 400, "email is not an e-mail address"),
    ({"media_url": "javascript:alert(1)"}, 400, "media_url must be an http or https URL"),
    ({"phone": "1" * 41}, 400, "phone is longer than 40"),
])
def test_refused_reports_say_why(change: dict[str, str | None], code: int, says: str) -> None:
    fields = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    with pytest.raises(Open311Error) as err:
        cr.parse_report(fields)
    assert err.value.code == code
    assert err.value.description.startswith(says)


@pytest.mark.parametrize("fields, where", [
    (GOOD, (50.8366, 4.309, None, None)),
    ({**GOOD, "lat": " -0.5 ", "long": "+.5"}, (-0.5, 0.5, None, None)),
    ({"jurisdiction_id": "anderlecht", "service_code": "damaged_pole",
      "attribute[pole_id]": "AND-0001"}, (None, None, "AND-0001", None)),
    ({"jurisdiction_id": "anderlecht", "service_code": "streetlight_out",
      "address_string": "Rue Wayez 12"}, (None, None, None, "Rue Wayez 12")),
])
def test_accepted_reports(fields: dict[str, str], where: tuple[object, ...]) -> None:
    report = cr.parse_report(fields)
    assert (report.lat, report.lon, report.pole_id, report.address_string) == where
    assert not report.has_contact


def test_contact_details_are_kept_apart() -> None:
    report = cr.parse_report({**GOOD, "email": "jane@example.org", "first_name": "Jane"})
    assert report.has_contact and report.email == "jane@example.org"


@pytest.mark.parametrize("content_type, body, fields", [
    ("application/x-www-form-urlencoded", b"service_code=a&lat=1&service_code=b",
     {"service_code": "a", "lat": "1"}),
    ("application/x-www-form-urlencoded; charset=utf-8", b"attribute%5Bpole_id%5D=P%201",
     {"attribute[pole_id]": "P 1"}),
    ("application/json", b'{"lat": 50.5, "long": 4, "attribute": {"pole_id": "P1"}}',
     {"lat": "50.5", "long": "4", "attribute[pole_id]": "P1"}),
    ("application/json", b'{"lat": NaN}', {"lat": "nan"}),
])
def test_bodies_decode_to_fields(content_type: str, body: bytes, fields: dict[str, str]) -> None:
    assert decode_fields(content_type, body) == fields


@pytest.mark.parametrize("content_type, body, code", [
    ("text/plain", b"lat=1", 415),
    ("", b"lat=1", 415),
    ("multipart/form-data; boundary=x", b"--x--", 415),
    ("application/json", b"[1, 2]", 400),
    ("application/json", b'{"lat": {"$gt": 0}}', 400),
    ("application/json", b'{"lat": true}', 400),
    ("application/json", b"[" * 50_000, 400),
    ("application/json", b"{", 400),
    ("application/json", b'{"lat": ' + b"9" * 5000 + b"}", 400),
    ("application/json", b'{"a": "\xff"}', 400),
    ("application/x-www-form-urlencoded", b"a=%ff", 400),
    ("application/x-www-form-urlencoded", b"&".join(b"f%d=1" % i for i in range(200)), 400),
])
def test_hostile_bodies_are_refused(content_type: str, body: bytes, code: int) -> None:
    with pytest.raises(Open311Error) as err:
        decode_fields(content_type, body)
    assert err.value.code == code


@pytest.mark.parametrize("a, b, metres", [
    ((50.8366, 4.309), (50.8366, 4.309), 0.0),
    ((0.0, 0.0), (0.0, 1.0), 111_195.0),  # a degree of longitude on the equator
    ((0.0, 0.0), (1.0, 0.0), 111_195.0),
    ((50.8366, 4.309), (50.8367, 4.3091), 13.2),
    ((50.0, 179.9999), (50.0, -179.9999), 14.3),  # across the antimeridian
])
def test_haversine(a: tuple[float, float], b: tuple[float, float], metres: float) -> None:
    assert haversine_m(*a, *b) == pytest.approx(metres, abs=0.5)


@given(st.floats(-89.9, 89.9), st.floats(-179.9, 179.9), st.floats(0, 360),
       st.floats(0, 50))
def test_every_point_within_the_radius_lies_in_its_box(lat: float, lon: float, bearing: float,
                                                       dist: float) -> None:
    import math
    # a point `dist` metres away on `bearing` (spherical destination formula)
    r = dist / 6_371_008.8
    p1, l1, th = math.radians(lat), math.radians(lon), math.radians(bearing)
    p2 = math.asin(math.sin(p1) * math.cos(r) + math.cos(p1) * math.sin(r) * math.cos(th))
    l2 = l1 + math.atan2(math.sin(th) * math.sin(r) * math.cos(p1),
                         math.cos(r) - math.sin(p1) * math.sin(p2))
    lat2, lon2 = math.degrees(p2), (math.degrees(l2) + 540) % 360 - 180
    lat0, lat1, lon0, lon1 = bbox_around(lat, lon, 50.0)
    assert lat0 <= lat2 <= lat1 and lon0 <= lon2 <= lon1


@pytest.mark.parametrize("lat, lon, ok", [
    (0, 0, True), (90, 180, True), (-90, -180, True), (90.0001, 0, False), (0, 180.1, False),
    (float("nan"), 0, False), (0, float("inf"), False),
])
def test_valid_position(lat: float, lon: float, ok: bool) -> None:
    assert valid_position(lat, lon) is ok


# ----------------------------------------------------------------- matching

L0 = cr.Candidate("ctl-1", 0, 50.8366, 4.3090, "cab-1")   # at the reported spot
L1 = cr.Candidate("ctl-1", 1, 50.8367, 4.3091, "cab-1")   # 13 m away
FAR = cr.Candidate("ctl-2", 0, 50.8380, 4.3120, "cab-2")  # 260 m away
NO_POS = cr.Candidate("ctl-3", 0, None, None, None)


def _fault(kind: str, controller: str | None = "ctl-1", idx: int | None = 1,
           cabinet: str | None = None, fid: int = 1, minutes: int = 0) -> cr.OpenFault:
    return cr.OpenFault(fid, kind, T0 + timedelta(minutes=minutes), controller, idx, cabinet)


@pytest.mark.parametrize("service, faults, expected", [
    # nothing known: the nearest one
    ("streetlight_out", [], (L0, None)),
    # the dark lamp 13 m away is the one reported, not the healthy one under the phone
    ("streetlight_out", [_fault("lampFailure")], (L1, "lampFailure")),
    # a fault that does not explain the report is no reason to prefer a luminaire
    ("streetlight_out", [_fault("powerFactorTooLow")], (L0, None)),
    ("streetlight_flickering", [_fault("lampFailure")], (L0, None)),
    ("streetlight_flickering", [_fault("cyclingFailure")], (L1, "cyclingFailure")),
    # a cabinet's supply loss explains every light it feeds: the nearest
    ("streetlight_out", [_fault("supplyLoss", None, None, "cab-1")], (L0, "supplyLoss")),
    # the same name on a cabinet (contactor stuck closed) explains lights on by day, not out
    ("streetlight_on_by_day", [_fault("relayFailure", None, None, "cab-1")], (L0, "relayFailure")),
    ("streetlight_out", [_fault("relayFailure", None, None, "cab-1")], (L0, None)),
    # a controller's fault concerns each of its luminaires
    ("damaged_pole", [_fault("poleTilted", "ctl-1", None)], (L0, "poleTilted")),
    # another tenant's or another device's fault is never taken
    ("streetlight_out", [_fault("lampFailure", "ctl-9", 0)], (L0, None)),
])
def test_match_by_position(service: str, faults: list[cr.OpenFault],
                           expected: tuple[cr.Candidate, str | None]) -> None:
    m = cr.match_by_position(BY_CODE[service], 50.8366, 4.3090, [FAR, L1, L0, NO_POS], faults)
    assert m is not None
    assert (m.candidate, m.fault.kind if m.fault else None) == expected
    assert m.distance_m is not None and m.distance_m < 50


def test_nothing_within_the_radius_is_no_match() -> None:
    assert cr.match_by_position(OUT, 50.8366, 4.3090, [FAR, NO_POS], []) is None
    assert cr.match_by_position(OUT, 50.8366, 4.3090, [], []) is None


def test_the_closest_device_and_earliest_fault_explain() -> None:
    faults = [_fault("supplyLoss", None, None, "cab-1", fid=1, minutes=-60),
              _fault("lampFailure", fid=2, minutes=5), _fault("controlGearCommFailure", fid=3)]
    m = cr.match_by_position(OUT, 50.8367, 4.3091, [L1], faults)
    assert m is not None and m.fault is not None and m.fault.id == 3  # luminaire, then earliest


def test_match_by_pole_prefers_the_faulty_luminaire() -> None:
    m = cr.match_by_pole(OUT, [L1, L0], [_fault("lampFailure")])
    assert m is not None and m.candidate == L1 and m.distance_m is None
    m = cr.match_by_pole(OUT, [L1, L0], [])
    assert m is not None and m.candidate == L0 and m.fault is None
    assert cr.match_by_pole(OUT, [], []) is None


# ----------------------------------------------------------------- duplicates


def _earlier(rid: int, minutes_ago: float, **kw: object) -> cr.Earlier:
    base: dict[str, object] = dict(id=rid, service_code="streetlight_out",
                                   requested_at=T0 - timedelta(minutes=minutes_ago),
                                   controller_id=None, luminaire_idx=None, lat=None, lon=None,
                                   pole_id=None, address_string=None)
    base.update(kw)
    return cr.Earlier(**base)  # type: ignore[arg-type]


MATCH_L1 = cr.Match(L1, 13.0, None)


@pytest.mark.parametrize("earlier, match, fields, folded", [
    ([_earlier(7, 30, controller_id="ctl-1", luminaire_idx=1)], MATCH_L1, GOOD, 7),
    ([_earlier(7, 30, controller_id="ctl-1", luminaire_idx=0)], MATCH_L1, GOOD, None),
    ([_earlier(7, 25 * 60, controller_id="ctl-1", luminaire_idx=1)], MATCH_L1, GOOD, None),
    ([_earlier(7, 30, controller_id="ctl-1", luminaire_idx=1,
               service_code="streetlight_flickering")], MATCH_L1, GOOD, None),
    ([_earlier(7, 30, lat=50.83661, lon=4.30901)], None, GOOD, 7),
    ([_earlier(7, 30, lat=50.8380, lon=4.3120)], None, GOOD, None),
    ([_earlier(7, 30, pole_id="P-1")], None,
     {"jurisdiction_id": "a", "service_code": "streetlight_out", "attribute[pole_id]": "P-1"}, 7),
    ([_earlier(7, 30, address_string="Rue Wayez 12")], None,
     {"jurisdiction_id": "a", "service_code": "streetlight_out", "address_string": "Rue Wayez 12"},
     7),
    ([_earlier(8, 10, controller_id="ctl-1", luminaire_idx=1),
      _earlier(7, 60, controller_id="ctl-1", luminaire_idx=1)], MATCH_L1, GOOD, 7),
])
def test_a_devices_duplicates_fold_into_its_first_report(earlier: list[cr.Earlier],
                                                          match: cr.Match | None,
                                                          fields: dict[str, str],
                                                          folded: int | None) -> None:
    assert cr.duplicate_of(cr.parse_report(fields), match, earlier, T0) == folded


def test_reporter_keys_are_pseudonymous_and_prefer_the_device_id() -> None:
    a = cr.reporter_key("device-1", "192.0.2.1")
    assert a == cr.reporter_key("device-1", "198.51.100.7")
    assert a != cr.reporter_key(None, "192.0.2.1")
    assert "192.0.2.1" not in cr.reporter_key(None, "192.0.2.1") and len(a) == 64


# ----------------------------------------------------------------- status


@pytest.mark.parametrize("link, status, notes", [
    (cr.Linked(None, None, None, None, None, without_position=False), "open",
     "No streetlight within 50 m of this position: a crew will look."),
    (cr.Linked(None, None, None, None, None, without_position=True), "open",
     "No position given, and no streetlight on the pole or at the address given: a crew will look."),
    (cr.Linked("urn:x", 12.4, None, None, None, False), "open",
     "Matched to streetlight urn:x (12 m away); no fault detected on it yet: it will be inspected."),
    (cr.Linked("urn:x", None, "lampFailure", T0, None, False), "open",
     "Matched to streetlight urn:x; fault lampFailure detected at 2026-11-30 21:00 UTC; "
     "repair pending."),
    (cr.Linked("urn:x", 3.0, "lampFailure", T0, T0 + timedelta(hours=20), False), "closed",
     "Matched to streetlight urn:x (3 m away); fault lampFailure detected at 2026-11-30 21:00 UTC, "
     "cleared at 2026-12-01 17:00 UTC."),
])
def test_status_follows_the_fault(link: cr.Linked, status: str, notes: str) -> None:
    got = cr.status_and_notes(link, T0 - timedelta(minutes=5))
    assert got[:2] == (status, notes)
    assert got[2] >= T0 - timedelta(minutes=5)


# ----------------------------------------------------------------- formats and flood


def test_xml_and_json_documents() -> None:
    body = [{"service_request_id": "12", "status": "open", "description": "<b>&</b>"}]
    xml = render("xml", "service_requests", "request", body).decode()
    assert xml.startswith('<?xml version="1.0" encoding="utf-8"?>')
    assert ("<service_requests><request><service_request_id>12</service_request_id>"
            "<status>open</status><description>&lt;b&gt;&amp;&lt;/b&gt;</description>"
            "</request></service_requests>") in xml
    assert render_errors("json", 400, "lat is not a number") == \
        b'[{"code": 400, "description": "lat is not a number"}]'
    assert b"<errors><error><code>404</code>" in render_errors("xml", 404, "x")


def test_a_client_gets_a_burst_then_a_steady_rate() -> None:
    now = [0.0]
    buckets = TokenBuckets(capacity=3, per_s=1 / 60, clock=lambda: now[0])
    assert [buckets.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a") == pytest.approx(60.0)
    assert buckets.take("b") == 0.0  # another client is not held back
    now[0] = 60.0
    assert buckets.take("a") == 0.0 and buckets.take("a") > 0


def test_the_flood_limit_holds_its_memory() -> None:
    buckets = TokenBuckets(capacity=1, per_s=0.001, max_keys=100)
    for i in range(10_000):
        buckets.take(f"198.51.{i // 256}.{i % 256}")
    assert len(buckets._buckets) == 100


FIELDS = ["jurisdiction_id", "service_code", "lat", "long", "address_string", "description",
          "attribute[pole_id]", "email", "first_name", "last_name", "phone", "device_id",
          "media_url", "unknown"]


@given(st.dictionaries(st.sampled_from(FIELDS),
                       st.text(max_size=60) | st.sampled_from(["streetlight_out", "anderlecht",
                                                               "50.8", "4.3", "NaN", "-1e999"])))
def test_any_fields_give_a_report_or_an_open311_error(fields: dict[str, str]) -> None:
    try:
        report = cr.parse_report(fields)
    except Open311Error as err:
        assert err.code in (400, 404) and err.description
        return
    assert report.service.code in BY_CODE
    assert report.lat is not None or report.pole_id or report.address_string
    if report.lat is not None and report.lon is not None:
        assert valid_position(report.lat, report.lon)


@given(st.sampled_from(["application/json", "application/x-www-form-urlencoded"]),
       st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_any_body_gives_fields_or_an_open311_error(content_type: str, body: bytes) -> None:
    try:
        fields = decode_fields(content_type, body)
    except Open311Error as err:
        assert err.code == 400
        return
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in fields.items())
