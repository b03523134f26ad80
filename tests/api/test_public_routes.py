"""The public routers as an app sees them: their paths under /api/v1, documented, without a login."""

from __future__ import annotations

from tests.api.conftest import build_app


def test_the_routers_mount_under_api_v1_and_document_their_errors() -> None:
    spec = build_app("host=unused").openapi()  # the pool opens only with the app's lifespan
    paths = spec["paths"]
    assert set(paths) == {
        "/api/v1/opendata/{tenant}/streetlights.geojson",
        "/api/v1/opendata/{tenant}/ngsi-ld/entities",
        "/api/v1/open311/v2/services.{fmt}",
        "/api/v1/open311/v2/services/{code}.{fmt}",
        "/api/v1/open311/v2/requests.{fmt}",
        "/api/v1/open311/v2/requests/{rid}.{fmt}",
    }
    post = paths["/api/v1/open311/v2/requests.{fmt}"]["post"]
    assert {"201", "400", "404", "413", "415", "429"} <= set(post["responses"])
    error = post["responses"]["400"]["content"]["application/json"]["schema"]
    assert error["items"]["required"] == ["code", "description"]
    for operations in paths.values():
        for operation in operations.values():
            assert "security" not in operation  # public: no login
