"""A luminaire's series: the time_bucket means, extremes and counts of the readings stored, with
the JSON shape and time format of the rest of the API (whatever builds the body)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
from fastapi.testclient import TestClient

from api.roles import Role
from tests.api.api_world import World

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def _store(db_dsn: str, controller: str, idx: int,
           readings: list[tuple[datetime, int, float, float, float, int]]) -> None:
    """(time, level, power_w, energy_wh, driver_temp_c, failure) of one luminaire."""
    with psycopg.connect(db_dsn) as conn:
        key = conn.execute("SELECT key FROM controllers WHERE id = %s", (controller,)).fetchone()
        assert key is not None
        for seq, (t, level, power, energy, temp, failure) in enumerate(readings):
            conn.execute(
                "INSERT INTO luminaire_telemetry (time, controller_key, luminaire, level, status,"
                " power_w, energy_wh, voltage_v, current_a, power_factor, driver_temp_c,"
                " ambient_lux, presence, failure, boot_id, seq) VALUES (%s, %s, %s, %s, 0, %s, %s,"
                " 230, 0.1, 0.95, %s, 0, 0, %s, 1, %s)",
                (t, key[0], idx, level, power, energy, temp, failure, seq))


def test_a_week_is_bucketed_by_15_minutes_with_exact_aggregates(client: TestClient, world: World,
                                                                db_dsn: str) -> None:
    lum = world.a.luminaires[1]  # controller 0, idx 1
    _store(db_dsn, world.a.controllers[0], 1, [
        (T0 + timedelta(minutes=1), 100, 20.0, 1000.0, 40.0, 0),
        (T0 + timedelta(minutes=2), 200, 30.0, 1000.5, 42.0, 4),
        (T0 + timedelta(minutes=14, seconds=59), 150, 40.0, 1001.25, 44.0, 1),
        (T0 + timedelta(minutes=15), 50, 10.5, 1002.0, 39.5, 0),
        (T0 - timedelta(days=8), 254, 99.0, 1.0, 50.0, 8),  # outside the range
    ])
    start = (T0 - timedelta(days=7) + timedelta(minutes=30)).isoformat().replace("Z", "Z")
    end = (T0 + timedelta(minutes=30)).isoformat().replace("Z", "Z")
    r = client.get(f"/api/v1/luminaires/{lum}/series", params={"from": start, "to": end},
                   headers=world.headers(world.a, Role.VIEWER))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert body == {
        "luminaire_id": lum, "start": "2026-02-23T10:30:00Z", "end": "2026-03-02T10:30:00Z",
        "bucket_s": 900, "points": [
            {"bucket": "2026-03-02T10:00:00Z", "level": 150.0, "power_w": 30.0,
             "power_max_w": 40.0, "energy_wh": 1.25, "voltage_v": 230.0, "driver_temp_c": 42.0,
             "failure": 5, "samples": 3},
            {"bucket": "2026-03-02T10:15:00Z", "level": 50.0, "power_w": 10.5,
             "power_max_w": 10.5, "energy_wh": 0.0, "voltage_v": 230.0, "driver_temp_c": 39.5,
             "failure": 0, "samples": 1}]}
    assert list(body["points"][0]) == ["bucket", "level", "power_w", "power_max_w", "energy_wh",
                                       "voltage_v", "driver_temp_c", "failure", "samples"]


def test_no_readings_is_an_empty_series_and_another_tenants_luminaire_is_not_found(
        client: TestClient, world: World) -> None:
    h = world.headers(world.a, Role.VIEWER)
    r = client.get(f"/api/v1/luminaires/{world.a.luminaires[2]}/series", headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["points"] == [] and r.json()["bucket_s"] == 60
    r = client.get(f"/api/v1/luminaires/{world.b.luminaires[0]}/series", headers=h)
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")
