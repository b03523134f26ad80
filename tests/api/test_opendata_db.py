"""The open-data exports from a seeded database, through the routes, as the API's role: valid FIWARE
entities, GeoJSON per RFC 7946, nothing personal or secret, one municipality at a time."""

from __future__ import annotations

import json
from typing import Any

import pytest

from controller_fw_sim.fleet_inventory import build_inventory
from luciole.seed import seed_inventory
from tests.api.city import A_LAMP0, A_LAMP1, A_POLE2, SECRETS, seed
from tests.api.conftest import PublicApi
from tests.api.fiware_schemas import errors

pytestmark = pytest.mark.integration

BASE = "/api/v1/opendata"
TYPES = ("Streetlight", "StreetlightControlCabinet", "StreetlightGroup", "StreetlightModel")


def _entities(api: PublicApi, tenant: str, options: str | None = "keyValues",
              type: str | None = None) -> list[dict[str, Any]]:
    params = {k: v for k, v in (("options", options), ("type", type)) if v}
    r = api.client.get(f"{BASE}/{tenant}/ngsi-ld/entities", params=params)
    assert r.status_code == 200, r.text
    body: list[dict[str, Any]] = r.json()
    return body


def test_key_values_export_validates_against_the_fiware_schemas(public_api: PublicApi) -> None:
    seed(public_api.owner_dsn)
    entities = _entities(public_api, "anderlecht")
    by_type: dict[str, list[dict[str, Any]]] = {}
    for e in entities:
        assert errors(e) == [], e
        by_type.setdefault(e["type"], []).append(e)
    assert sorted(by_type) == sorted(TYPES)
    ids = [e["id"] for e in entities]
    assert len(ids) == len(set(ids))

    lights = {e["id"].rsplit(":", 2)[-2] + ":" + e["id"].rsplit(":", 1)[-1]: e
              for e in by_type["Streetlight"]}
    # the retired controller and the luminaire with no position at all are not exported
    assert sorted(lights) == ["ctl-a1:0", "ctl-a1:1", "ctl-a2:0"]
    a0, a1, a2 = lights["ctl-a1:0"], lights["ctl-a1:1"], lights["ctl-a2:0"]
    assert a0["location"]["coordinates"] == [A_LAMP0[1], A_LAMP0[0]]
    assert a2["location"]["coordinates"] == [A_POLE2[1], A_POLE2[0]]  # its pole's position
    assert (a0["status"], a1["status"], a2["status"]) == ("ok", "defectiveLamp", "ok")
    assert (a0["powerState"], a1["powerState"], a2["powerState"]) == ("on", "low", "off")
    assert a0["illuminanceLevel"] == 1.0 and a0["powerConsumption"] == 35.5
    assert "powerConsumption" in a1 and "voltage" not in a2  # a2's gear has no diagnostics
    assert a0["streetPoleNum"] == "AND-0001" and a0["locationCategory"] == "road"
    assert a1["locationCategory"] == "pedestrianPath"
    assert a0["refStreetlightGroup"] == a1["refStreetlightGroup"]
    group_ids = {g["id"] for g in by_type["StreetlightGroup"]}
    cabinet_ids = {c["id"] for c in by_type["StreetlightControlCabinet"]}
    model_ids = {m["id"] for m in by_type["StreetlightModel"]}
    for light in by_type["Streetlight"]:  # every reference resolves inside the export
        assert light.get("refStreetlightGroup", next(iter(group_ids))) in group_ids
        assert light.get("refStreetlightControlCabinet", next(iter(cabinet_ids))) in cabinet_ids
        assert light["refStreetlightModel"] in model_ids
    # a luminaire of the unmapped cabinet, in no group, has no group to name
    assert "refStreetlightGroup" not in a2
    # the cabinet without a position is not exported, nor referenced
    assert cabinet_ids == {"urn:ngsi-ld:StreetlightControlCabinet:anderlecht:cab-a1"}
    assert "refStreetlightControlCabinet" not in a2
    (cabinet,) = by_type["StreetlightControlCabinet"]
    assert cabinet["maximumPowerAvailable"] == 12.5
    assert set(cabinet["refStreetlightGroup"]) <= group_ids
    wayez = next(g for g in by_type["StreetlightGroup"] if g.get("name") == "Rue Wayez")
    assert wayez["refStreetlight"] == [a0["id"], a1["id"]]
    assert wayez["location"]["type"] == "Polygon"
    assert wayez["refStreetlightControlCabinet"] == cabinet["id"]
    assert not any(g.get("name") == "Empty" for g in by_type["StreetlightGroup"])


def test_the_status_follows_the_faults(public_api: PublicApi) -> None:
    faults = seed(public_api.owner_dsn)
    import psycopg
    with psycopg.connect(public_api.owner_dsn, autocommit=True) as conn:
        conn.execute("UPDATE faults SET cleared_at = now() WHERE id = %s", (faults["a_lamp"],))
        conn.execute("INSERT INTO faults (tenant_id, controller_id, kind, severity, raised_at)"
                     " VALUES ('anderlecht', 'ctl-a1', 'poleTilted', 'critical', now())")
    lights = _entities(public_api, "anderlecht", type="Streetlight")
    assert {e["status"] for e in lights if ":ctl-a1:" in e["id"]} == {"columnIssue"}
    assert {e["status"] for e in lights if ":ctl-a2:" in e["id"]} == {"ok"}


def test_normalized_form_is_ngsi_ld(public_api: PublicApi) -> None:
    seed(public_api.owner_dsn)
    r = public_api.client.get(f"{BASE}/anderlecht/ngsi-ld/entities")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/ld+json")
    key_values = {e["id"]: e for e in _entities(public_api, "anderlecht")}
    normalized = r.json()
    assert {e["id"] for e in normalized} == set(key_values)
    for e in normalized:
        assert e["id"].startswith(f"urn:ngsi-ld:{e['type']}:anderlecht:")
        assert "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld" in e["@context"]
        kv = key_values[e["id"]]
        for name, attr in e.items():
            if name in ("id", "type", "@context"):
                continue
            if name == "location":
                assert attr == {"type": "GeoProperty", "value": kv["location"]}
            elif name.startswith("ref"):
                assert attr == {"type": "Relationship", "object": kv[name]}
            else:
                assert attr["type"] == "Property"
                value = attr["value"]
                assert (value["@value"] if isinstance(value, dict) and "@value" in value
                        else value) == kv[name]
    kv_response = public_api.client.get(f"{BASE}/anderlecht/ngsi-ld/entities",
                                        params={"options": "keyValues"})
    assert 'rel="http://www.w3.org/ns/json-ld#context"' in kv_response.headers["link"]


def test_geojson_is_rfc7946(public_api: PublicApi) -> None:
    seed(public_api.owner_dsn)
    r = public_api.client.get(f"{BASE}/anderlecht/streetlights.geojson")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/geo+json")
    doc = json.loads(r.content)  # strict JSON: NaN would fail here
    assert doc["type"] == "FeatureCollection"
    kinds = [f["properties"]["type"] for f in doc["features"]]
    assert kinds.count("Streetlight") == 3 and kinds.count("StreetlightControlCabinet") == 1
    for f in doc["features"]:
        assert f["type"] == "Feature" and isinstance(f["id"], str)
        assert f["geometry"]["type"] == "Point"
        lon, lat = f["geometry"]["coordinates"]
        # longitude first: Brussels is at about 4.3 E, 50.8 N
        assert 4.2 < lon < 4.5 and 50.7 < lat < 50.95
    lamp1 = next(f for f in doc["features"] if f["id"].endswith("ctl-a1:1"))
    assert lamp1["geometry"]["coordinates"] == [A_LAMP1[1], A_LAMP1[0]]
    assert lamp1["properties"]["status"] == "defectiveLamp"


@pytest.mark.parametrize("path", [
    "/anderlecht/streetlights.geojson", "/anderlecht/ngsi-ld/entities",
    "/anderlecht/ngsi-ld/entities?options=keyValues",
])
def test_no_personal_or_secret_data_and_no_other_municipality(public_api: PublicApi,
                                                              path: str) -> None:
    seed(public_api.owner_dsn)
    body = public_api.client.get(BASE + path).text
    for secret in SECRETS:
        assert secret not in body
    assert "ixelles" not in body.lower() and "ctl-b1" not in body and "Flagey" not in body
    for word in ("email", "password", "serial", "claim", "firmware", "ean", "gtin"):
        assert f'"{word}' not in body.lower()


@pytest.mark.parametrize("path, status", [
    ("/nowhere/streetlights.geojson", 404),
    ("/nowhere/ngsi-ld/entities", 404),
    ("/anderlecht/ngsi-ld/entities?type=Person", 400),
    ("/anderlecht/ngsi-ld/entities?type=Streetlight,Streetlight,Streetlight,Streetlight,Streetlight",
     400),
    ("/anderlecht/ngsi-ld/entities?options=sysAttrs", 400),
    ("/anderlecht/ngsi-ld/entities?options=keyValues,normalized", 400),
    ("/anderlecht';DROP TABLE luminaires;--/streetlights.geojson", 404),
    ("/" + "a" * 300 + "/streetlights.geojson", 404),
    ("/anderl%00echt/ngsi-ld/entities", 404),
])
def test_hostile_requests_get_a_clear_error(public_api: PublicApi, path: str, status: int) -> None:
    seed(public_api.owner_dsn)
    r = public_api.client.get(BASE + path)
    assert r.status_code == status, r.text
    assert len(_entities(public_api, "anderlecht", type="Streetlight")) == 3


def test_a_district_streams_whole_and_valid(public_api: PublicApi) -> None:
    inventory = build_inventory(600, 4, seed=3)
    seed_inventory(public_api.owner_dsn, inventory)
    tenant = inventory.tenants[0].id
    expected = sum(1 for c in inventory.controller_tenant.tolist() if c == 0) * 4
    with public_api.client.stream("GET", f"{BASE}/{tenant}/ngsi-ld/entities",
                                  params={"options": "keyValues"}) as r:
        chunks = list(r.iter_bytes())
    assert len(chunks) > 2  # written piece by piece, not as one body
    entities = json.loads(b"".join(chunks))
    lights = [e for e in entities if e["type"] == "Streetlight"]
    assert len(lights) == expected > 0
    for e in entities:
        assert errors(e) == [], e
