"""Open311 GeoReport v2 through the routes, on a seeded database, as the API's role: a report
matched to a streetlight and its fault, its status following the fault, hostile clients, floods,
duplicates, personal data kept out of every answer, and one municipality never showing another's."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from xml.etree import ElementTree as ET

import psycopg
import pytest

from tests.api.city import A_LAMP0, A_LAMP1, B_LAMP, clear_fault, raise_fault, seed
from tests.api.conftest import PublicApi

pytestmark = pytest.mark.integration

BASE = "/api/v1/open311/v2"


def _post(api: PublicApi, fields: dict[str, Any], fmt: str = "json", as_json: bool = False,
          headers: dict[str, str] | None = None) -> Any:
    url = f"{BASE}/requests.{fmt}"
    if as_json:
        return api.client.post(url, json=fields, headers=headers)
    return api.client.post(url, data=fields, headers=headers)


def _report(tenant: str, lat: float, lon: float, service: str = "streetlight_out",
            **more: Any) -> dict[str, Any]:
    return {"jurisdiction_id": tenant, "service_code": service, "lat": str(lat),
            "long": str(lon), **more}


def _get(api: PublicApi, rid: str, tenant: str | None = None) -> dict[str, Any]:
    params = {"jurisdiction_id": tenant} if tenant else None
    r = api.client.get(f"{BASE}/requests/{rid}.json", params=params)
    assert r.status_code == 200, r.text
    (entry,) = r.json()
    assert isinstance(entry, dict)
    return entry


def test_services_and_their_definition(public_api: PublicApi) -> None:
    seed(public_api.owner_dsn)
    r = public_api.client.get(f"{BASE}/services.json", params={"jurisdiction_id": "anderlecht"})
    assert r.status_code == 200
    codes = {s["service_code"]: s for s in r.json()}
    assert {"streetlight_out", "streetlight_flickering", "streetlight_on_by_day",
            "damaged_pole"} <= set(codes)
    for s in codes.values():
        assert set(s) == {"service_code", "service_name", "description", "metadata", "type",
                          "keywords", "group"}
        assert s["type"] == "realtime" and s["metadata"] is True
    xml = ET.fromstring(public_api.client.get(f"{BASE}/services.xml").content)
    assert xml.tag == "services"
    assert {e.findtext("service_code") for e in xml.findall("service")} == set(codes)
    d = public_api.client.get(f"{BASE}/services/streetlight_out.json").json()
    assert d["service_code"] == "streetlight_out"
    assert [a["code"] for a in d["attributes"]] == ["pole_id"]
    assert d["attributes"][0]["datatype"] == "string" and d["attributes"][0]["required"] is False
    missing = public_api.client.get(f"{BASE}/services/pothole.json")
    assert missing.status_code == 404 and missing.json()[0]["code"] == 404
    assert public_api.client.get(f"{BASE}/services.json",
                                 params={"jurisdiction_id": "atlantis"}).status_code == 404


def test_round_trip_a_dark_lamp_matched_then_repaired(public_api: PublicApi) -> None:
    faults = seed(public_api.owner_dsn)
    # reported from under luminaire 0, whose neighbour 13 m away is the dark one
    r = _post(public_api, _report("anderlecht", *A_LAMP0, description="dark since yesterday",
                                  email="jane@example.org", first_name="Jane", phone="+32 2 555"))
    assert r.status_code == 201, r.text
    (answer,) = r.json()
    rid = answer["service_request_id"]
    assert "already known" in answer["service_notice"]
    entry = _get(public_api, rid, "anderlecht")
    assert entry["status"] == "open"
    assert "urn:ngsi-ld:Streetlight:anderlecht:ctl-a1:1" in entry["status_notes"]
    assert "lampFailure" in entry["status_notes"]
    assert entry["service_code"] == "streetlight_out" and entry["description"] == "dark since yesterday"
    assert (entry["lat"], entry["long"]) == A_LAMP0
    assert entry["agency_responsible"] == "Anderlecht"
    for personal in ("jane", "Jane", "+32 2 555", "email", "phone", "first_name"):
        assert personal not in r.text and personal not in str(entry)

    clear_fault(public_api.owner_dsn, faults["a_lamp"])
    entry = _get(public_api, rid)
    assert entry["status"] == "closed" and "cleared at" in entry["status_notes"]
    assert datetime.fromisoformat(entry["updated_datetime"]) >= datetime.fromisoformat(
        entry["requested_datetime"])
    closed = public_api.client.get(f"{BASE}/requests.json",
                                   params={"jurisdiction_id": "anderlecht", "status": "closed"})
    assert [e["service_request_id"] for e in closed.json()] == [rid]
    opened = public_api.client.get(f"{BASE}/requests.json",
                                   params={"jurisdiction_id": "anderlecht", "status": "open"})
    assert opened.json() == []


def test_a_report_before_the_fault_is_detected_follows_it(public_api: PublicApi) -> None:
    faults = seed(public_api.owner_dsn)
    clear_fault(public_api.owner_dsn, faults["a_lamp"])  # repaired before: not this report's fault
    r = _post(public_api, _report("anderlecht", *A_LAMP0), as_json=True)
    assert r.status_code == 201, r.text
    rid = r.json()[0]["service_request_id"]
    # the detector raises a lamp failure on luminaire 0 a few minutes later
    assert _get(public_api, rid)["status"] == "open"
    assert "no fault detected" in _get(public_api, rid)["status_notes"]
    fid = raise_fault(public_api.owner_dsn, "anderlecht", "ctl-a1", 0, "lampFailure",
                      datetime.now(UTC) + timedelta(minutes=5))
    entry = _get(public_api, rid)
    assert entry["status"] == "open" and "lampFailure" in entry["status_notes"]
    clear_fault(public_api.owner_dsn, fid, datetime.now(UTC) + timedelta(hours=3))
    assert _get(public_api, rid)["status"] == "closed"


def test_by_pole_and_unmatched_reports(public_api: PublicApi) -> None:
    seed(public_api.owner_dsn)
    by_pole = _post(public_api, {"jurisdiction_id": "anderlecht", "service_code": "streetlight_out",
                                 "attribute[pole_id]": "AND-0001"})
    assert by_pole.status_code == 201
    entry = _get(public_api, by_pole.json()[0]["service_request_id"])
    assert "ctl-a1:1" in entry["status_notes"]  # the faulty one on that pole
    assert (entry["lat"], entry["long"]) == A_LAMP1  # located by its streetlight
    far = _post(public_api, _report("anderlecht", 50.85, 4.35))
    entry = _get(public_api, far.json()[0]["service_request_id"])
    assert entry["status"] == "open" and entry["status_notes"].startswith("No streetlight within 50 m")
    address = _post(public_api, {"jurisdiction_id": "anderlecht", "service_code": "damaged_pole",
                                 "address_string": "Rue Wayez 12"})
    entry = _get(public_api, address.json()[0]["service_request_id"])
    assert entry["address"] == "Rue Wayez 12" and "No position given" in entry["status_notes"]
    assert "lat" not in entry


def test_filters_of_the_request_list(public_api: PublicApi) -> None:
    seed(public_api.owner_dsn)
    a = _post(public_api, _report("anderlecht", *A_LAMP0)).json()[0]["service_request_id"]
    b = _post(public_api, _report("anderlecht", *A_LAMP1, service="streetlight_flickering",
                                  device_id="other")).json()[0]["service_request_id"]

    def ids(**params: str) -> list[str]:
        r = public_api.client.get(f"{BASE}/requests.json",
                                  params={"jurisdiction_id": "anderlecht", **params})
        assert r.status_code == 200, r.text
        return [e["service_request_id"] for e in r.json()]

    assert ids() == [b, a]  # newest first
    assert ids(service_code="streetlight_flickering") == [b]
    assert ids(service_request_id=f"{a},999999") == [a]
    soon = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert ids(start_date=soon) == []
    assert ids(end_date=soon) == [b, a]
    assert ids(start_date="2020-01-01T00:00:00Z", end_date=soon, status="open,closed") == [b, a]
    xml = ET.fromstring(public_api.client.get(
        f"{BASE}/requests.xml", params={"jurisdiction_id": "anderlecht"}).content)
    assert [e.findtext("service_request_id") for e in xml.findall("request")] == [b, a]


@pytest.mark.parametrize("fields, status, says", [
    ({"lat": "91", "long": "4.3"}, 400, "lat must lie in"),
    ({"lat": "50.8", "long": "-181"}, 400, "lat must lie in"),
    ({"lat": "NaN", "long": "4.3"}, 400, "lat is not a number"),
    ({"lat": "50.8", "long": "Infinity"}, 400, "long is not a number"),
    ({"lat": None, "long": None}, 400, "a location is required"),
    ({"service_code": "pothole"}, 400, "service_code not found"),
    ({"service_code": None}, 400, "service_code was not provided"),
    ({"jurisdiction_id": "atlantis"}, 404, "jurisdiction_id not found"),
    ({"jurisdiction_id": None}, 400, "jurisdiction_id was not provided"),
    ({"description": "x" * 5000}, 400, "description is longer than 4000"),
    ({"description": "'); DELETE FROM citizen_reports; --"}, 201, None),
    ({"attribute[pole_id]": "' OR '1'='1", "lat": None, "long": None}, 201, None),
    ({"description": "nul\x00byte"}, 400, "description contains a control character"),
])
def test_hostile_reports_get_open311_errors(public_api: PublicApi, fields: dict[str, Any],
                                            status: int, says: str | None) -> None:
    seed(public_api.owner_dsn)
    body = {k: v for k, v in {**_report("anderlecht", *A_LAMP0), **fields}.items() if v is not None}
    for as_json in (False, True):
        r = _post(public_api, body, as_json=as_json)
        assert r.status_code == status, r.text
        if says is not None:
            (err,) = r.json()
            assert err == {"code": status, "description": err["description"]}
            assert err["description"].startswith(says)
    with psycopg.connect(public_api.owner_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM luminaires").fetchone() == (6,)


def test_hostile_requests_never_get_a_5xx(public_api: PublicApi) -> None:
    seed(public_api.owner_dsn)
    c = public_api.client
    huge = c.post(f"{BASE}/requests.json", content=b"description=" + b"x" * 1_048_576,
                  headers={"content-type": "application/x-www-form-urlencoded"})
    assert huge.status_code == 413 and huge.json()[0]["code"] == 413
    xml_error = c.post(f"{BASE}/requests.xml", data={"jurisdiction_id": "anderlecht"})
    assert xml_error.status_code == 400
    assert ET.fromstring(xml_error.content).findtext("error/code") == "400"
    cases = [
        c.post(f"{BASE}/requests.json", content=b"<xml/>", headers={"content-type": "text/xml"}),
        c.post(f"{BASE}/requests.json", content=b"{\"lat\": [1]}",
               headers={"content-type": "application/json"}),
        c.post(f"{BASE}/requests.json", content=b"\xff\xfe",
               headers={"content-type": "application/x-www-form-urlencoded"}),
        c.post(f"{BASE}/requests.yaml", data={}),
        c.get(f"{BASE}/requests/1 OR 1=1.json"),
        c.get(f"{BASE}/requests/99999999999999999999999.json"),
        c.get(f"{BASE}/requests.json", params={"jurisdiction_id": "anderlecht",
                                               "start_date": "yesterday"}),
        c.get(f"{BASE}/requests.json", params={"jurisdiction_id": "anderlecht",
                                               "service_request_id": "1;DROP TABLE faults"}),
        c.get(f"{BASE}/requests.json", params={"jurisdiction_id": "anderlecht",
                                               "status": "pending"}),
        c.get(f"{BASE}/requests.json", params={"jurisdiction_id": "anderlecht",
                                               "service_code": "x\x00y"}),
        c.get(f"{BASE}/requests.json", params={"jurisdiction_id": "anderl\x00echt"}),
        c.get(f"{BASE}/requests.json", params={"jurisdiction_id": "anderlecht",
                                               "start_date": "2026-01-02", "end_date": "2026-01-01"}),
        c.get(f"{BASE}/requests.json"),
    ]
    for start in ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-14:00", "2026-01-01"):
        edge = c.get(f"{BASE}/requests.json", params={"jurisdiction_id": "anderlecht",
                                                       "start_date": start})
        assert edge.status_code in (200, 400), (start, edge.status_code, edge.text)
    for r in cases:
        assert 400 <= r.status_code < 500, (r.request.url, r.status_code, r.text)
        (err,) = r.json()
        assert set(err) == {"code", "description"} and err["code"] == r.status_code


def test_a_flood_from_one_client_is_held_back(make_api: Callable[..., PublicApi]) -> None:
    api = make_api(reports_per_client=3, refill_per_hour=1)
    seed(api.owner_dsn)
    answers = [_post(api, _report("anderlecht", 50.80 + i * 0.01, 4.30, device_id=f"d{i}"))
               for i in range(6)]
    assert [a.status_code for a in answers] == [201, 201, 201, 429, 429, 429]
    assert int(answers[3].headers["retry-after"]) > 0
    assert answers[3].json()[0]["code"] == 429
    with psycopg.connect(api.owner_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM citizen_reports").fetchone() == (3,)


def test_a_devices_duplicates_are_folded(public_api: PublicApi) -> None:
    seed(public_api.owner_dsn)
    report = _report("anderlecht", *A_LAMP0, device_id="phone-1")
    first = _post(public_api, report).json()[0]["service_request_id"]
    again = _post(public_api, {**report, "lat": str(A_LAMP0[0] + 0.00005)}).json()[0]
    assert again["service_request_id"] == first and "already" in again["service_notice"]
    other_device = _post(public_api, {**report, "device_id": "phone-2"}).json()[0]
    assert other_device["service_request_id"] != first
    with psycopg.connect(public_api.owner_dsn) as conn:
        assert conn.execute("SELECT id, duplicates FROM citizen_reports ORDER BY id").fetchall() \
            == [(int(first), 1), (int(other_device["service_request_id"]), 0)]


def test_one_municipality_never_sees_another(public_api: PublicApi) -> None:
    seed(public_api.owner_dsn)
    # ixelles' dark lamp is 15 m away, but the report is anderlecht's: matched in anderlecht only
    r = _post(public_api, _report("anderlecht", *B_LAMP))
    rid = r.json()[0]["service_request_id"]
    entry = _get(public_api, rid, "anderlecht")
    assert "ixelles" not in str(entry).lower() and "ctl-b1" not in str(entry)
    assert "ctl-a1" in entry["status_notes"]
    # not listed, nor readable, under the other jurisdiction
    listed = public_api.client.get(f"{BASE}/requests.json", params={"jurisdiction_id": "ixelles"})
    assert listed.status_code == 200 and listed.json() == []
    other = public_api.client.get(f"{BASE}/requests/{rid}.json",
                                  params={"jurisdiction_id": "ixelles"})
    assert other.status_code == 404
    b = _post(public_api, _report("ixelles", *B_LAMP, device_id="x"))
    entry_b = _get(public_api, b.json()[0]["service_request_id"], "ixelles")
    assert "ctl-b1:0" in entry_b["status_notes"] and "anderlecht" not in str(entry_b).lower()


def test_contact_details_are_write_only_for_the_api(public_api: PublicApi, stack) -> None:  # type: ignore[no-untyped-def]
    seed(public_api.owner_dsn)
    r = _post(public_api, _report("anderlecht", *A_LAMP0, email="jane@example.org"))
    assert r.status_code == 201
    with psycopg.connect(public_api.owner_dsn) as conn:
        assert conn.execute("SELECT email FROM citizen_report_contacts").fetchall() == \
            [("jane@example.org",)]
    for statement in ("SELECT email FROM citizen_report_contacts",
                      "UPDATE citizen_reports SET description = 'rewritten'",
                      "UPDATE citizen_reports SET fault_id = NULL",
                      "DELETE FROM citizen_reports"):
        with psycopg.connect(public_api.api_dsn) as conn:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
    from luciole.db_roles import DbService
    database = psycopg.conninfo.conninfo_to_dict(public_api.owner_dsn)["dbname"]
    with psycopg.connect(stack.endpoints.service_dsn(DbService.JOBS, str(database))) as conn:
        for table in ("citizen_reports", "citizen_report_contacts"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(f"SELECT 1 FROM {table}")
            conn.rollback()
