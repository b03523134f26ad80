"""Quick checks of the app against the real database."""

from __future__ import annotations

from fastapi.testclient import TestClient

from api.roles import Role
from tests.api.api_world import World


def test_health_and_live(client: TestClient, world: World) -> None:
    assert client.get("/healthz").status_code == 200
    h = world.headers(world.a, Role.VIEWER)
    r = client.get("/api/v1/live", headers=h)
    assert r.status_code == 200, r.text
    assert len(r.json()["items"]) == 4
    for path in ["/api/v1/controllers", "/api/v1/luminaires", "/api/v1/luminaires.geojson",
                 "/api/v1/faults", f"/api/v1/faults/{world.a.fault}", "/api/v1/schedules",
                 f"/api/v1/commands/{world.a.batch}", "/api/v1/energy/municipality",
                 f"/api/v1/energy/luminaires/{world.a.luminaires[0]}",
                 f"/api/v1/luminaires/{world.a.luminaires[0]}/series", "/api/v1/telemetry.csv",
                 f"/api/v1/energy/groups/{world.a.group}", "/api/v1/groups", "/api/v1/cabinets"]:
        r = client.get(path, headers=h)
        assert r.status_code == 200, (path, r.text)


def test_public_routers_answer_through_the_whole_app(client: TestClient, world: World) -> None:
    """The open-data and Open311 routers are included under /api/v1 with a prefix of their own:
    their access rule is found by the full path (they answered 403 "no access rule" before)."""
    for path in ["/api/v1/open311/v2/services.json",
                 f"/api/v1/opendata/{world.a.tenant}/streetlights.geojson",
                 f"/api/v1/opendata/{world.a.tenant}/ngsi-ld/entities?options=keyValues"]:
        r = client.get(path)
        assert r.status_code == 200, (path, r.text)
    metrics = client.get("/metrics").text
    assert 'route="/api/v1/open311/v2/services.{fmt}"' in metrics
