"""GET /live?changed_since=: only the luminaires whose level, status, failure or controller link
changed (stamped by the database's triggers), paged, tenant-scoped; a bad time is refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.roles import Role
from tests.api.api_world import World

pytestmark = pytest.mark.integration


def _changed(client: TestClient, world: World, since: str, **params: object) -> dict:  # type: ignore[type-arg]
    response = client.get("/api/v1/live", params={"changed_since": since, **params},
                          headers=world.headers(world.a, Role.VIEWER))
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_only_what_changed_since(client: TestClient, world: World, db_dsn: str) -> None:
    a, b = world.a, world.b
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute("UPDATE controllers SET online_changed_at = now() - interval '1 hour'")
    since = (datetime.now(UTC) - timedelta(minutes=30)).isoformat()
    quiet = _changed(client, world, since)
    assert quiet["items"] == [] and quiet["next_cursor"] is None
    assert abs(datetime.fromisoformat(quiet["changed_since"]) - datetime.now(UTC)) < timedelta(seconds=30)

    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute("UPDATE controllers SET online = false WHERE id IN (%s, %s)",
                      (a.controllers[1], b.controllers[1]))
        conn.execute("UPDATE controllers SET last_seen = now() WHERE id = %s", (a.controllers[0],))
        key = conn.execute("SELECT key FROM controllers WHERE id = %s", (a.controllers[0],)).fetchone()
        assert key is not None
        conn.execute("INSERT INTO luminaire_state (controller_key, luminaire, time, level, status, power_w,"
                     " energy_wh, voltage_v, power_factor, driver_temp_c, failure)"
                     " VALUES (%s, 1, now(), 120, 0, 20, 1, 230, 0.9, 40, 0)", (key[0],))
    page = _changed(client, world, since)
    # controller 1's two luminaires (gone offline) and controller 0's output 1 (a new reading);
    # not controller 0's other output (only its last_seen moved), not the other tenant's
    assert [i["id"] for i in page["items"]] == [a.luminaires[1], a.luminaires[2], a.luminaires[3]]
    assert [i["online"] for i in page["items"]] == [True, False, False]
    assert page["items"][0]["level"] == 120

    # paged by the same cursor as the full list
    first = _changed(client, world, since, limit=2)
    rest = _changed(client, world, since, limit=2, cursor=first["next_cursor"])
    assert [i["id"] for i in first["items"] + rest["items"]] == [i["id"] for i in page["items"]]

    # the next sweep sees the same reading again only if its state changed
    later = page["changed_since"]
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute("UPDATE luminaire_state SET changed_at = now() - interval '1 hour'")
        conn.execute("UPDATE controllers SET online_changed_at = now() - interval '1 hour'")
        conn.execute("UPDATE luminaire_state SET time = now(), power_w = 21 WHERE controller_key = %s",
                     (key[0],))
    assert _changed(client, world, later)["items"] == []
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute("UPDATE luminaire_state SET level = 0 WHERE controller_key = %s", (key[0],))
    assert [i["level"] for i in _changed(client, world, later)["items"]] == [0]


@pytest.mark.parametrize("params", [
    {"changed_since": "yesterday"}, {"changed_since": "2026-01-01T00:00:00"},  # no zone
    {"changed_since": "2026-13-01T00:00:00Z"}, {"changed_since": ""},
    {"changed_since": "2026-01-01T00:00:00Z", "online": "true"},
    {"changed_since": "2026-01-01T00:00:00Z", "controller": "ctl-town-a-0"},
    {"changed_since": "2026-01-01T00:00:00Z", "cursor": "not-a-cursor"},
])
def test_a_bad_changed_since_is_refused_in_words(client: TestClient, world: World,
                                                params: dict[str, str]) -> None:
    response = client.get("/api/v1/live", params=params, headers=world.headers(world.a, Role.VIEWER))
    assert response.status_code in (400, 422), response.text
    assert response.headers["content-type"] == "application/problem+json"
