"""Energy reports and settlement files through the API, on a night accounted by the real energy
and settlement jobs in the real database: the municipality's savings, euros and CO2 against what
the job stored; estimated buckets counted; the bucket bound; the grid operator downloads the
exact bytes the settlement job wrote, and nobody else does."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.roles import TENANT_ROLES, Role
from tests.api.api_world import World
from tests.api.energy_world import DAY, EMISSION, HOURS, NIGHT, SILENT, TARIFF, EnergyNight, energy_night
from tests.conftest import RunningStack

pytestmark = [pytest.mark.integration, pytest.mark.slow]
SPAN = {"from": NIGHT.isoformat(), "to": (NIGHT + timedelta(hours=16)).isoformat()}


@pytest.fixture
def night(stack: RunningStack, db_dsn: str, world: World) -> EnergyNight:
    return energy_night(stack, db_dsn, world.a)


def _get(client: TestClient, path: str, headers: dict[str, str], **params: Any) -> Any:
    response = client.get(path, params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def test_municipality_savings_euros_and_co2_against_the_jobs_rollups(
        client: TestClient, world: World, db_dsn: str, night: EnergyNight) -> None:
    admin = world.headers(world.a, Role.ENERGY_MANAGER)
    with psycopg.connect(db_dsn) as conn:
        total = conn.execute("SELECT sum(energy_wh), count(*) FILTER (WHERE source > 0),"
                             " count(*) FILTER (WHERE source = 0) FROM energy_interval e"
                             " JOIN controllers c ON c.key = e.controller_key WHERE c.tenant_id = %s"
                             " AND bucket >= %s AND bucket < %s",
                             (world.a.tenant, NIGHT, NIGHT + timedelta(hours=16))).fetchone()
        day = conn.execute("SELECT energy_wh, baseline_wh, savings_eur, savings_co2_kg,"
                           " estimated_cells FROM energy_day WHERE scope = 'tenant' AND key = %s"
                           " AND day = %s", (world.a.tenant, DAY)).fetchone()
    assert total is not None and total[0] > 1000 and total[1] > 0
    report = _get(client, "/api/v1/energy/municipality", admin, **SPAN, interval="hour")
    assert report["interval"] == "hour" and len(report["intervals"]) == HOURS
    assert report["energy_wh"] == pytest.approx(total[0])
    assert (report["estimated_intervals"], report["measured_intervals"]) == (total[1], total[2])
    assert report["savings_wh"] == pytest.approx(report["baseline_wh"] - report["energy_wh"])
    assert 0.1 < report["savings_ratio"] < 0.6  # dimmed to half for six of the hours
    assert report["cost_eur"] == pytest.approx(report["energy_wh"] / 1000 * TARIFF)
    assert report["co2_kg"] == pytest.approx(report["energy_wh"] / 1e6 * EMISSION)
    assert report["savings_eur"] == pytest.approx(report["savings_wh"] / 1000 * TARIFF)
    assert report["tariff"]["value"] == TARIFF and report["emission"]["source"].startswith("AIB")
    silent = [b for b in report["intervals"] if SILENT[0] <= _t(b["start"]) < SILENT[1]]
    assert silent and all(b["estimated"] and b["estimated_intervals"] > 0 for b in silent)
    full = [b for b in report["intervals"] if _t(b["start"]) == NIGHT + timedelta(hours=2)]
    assert full and not full[0]["estimated"] and full[0]["measured_intervals"] == 16
    # the local day: the job's own figures
    days = _get(client, "/api/v1/energy/municipality", admin, **SPAN, interval="day")
    assert day is not None and days["interval"] == "day"
    first = days["intervals"][0]
    assert first["energy_wh"] == pytest.approx(day[0]) and first["baseline_wh"] == pytest.approx(day[1])
    assert first["savings_eur"] == pytest.approx(day[2]) and first["savings_co2_kg"] == pytest.approx(day[3])
    assert first["estimated_intervals"] == day[4] > 0
    _group_luminaire_and_supply_point_reports(client, world)


def _group_luminaire_and_supply_point_reports(client: TestClient, world: World) -> None:
    viewer = world.headers(world.a, Role.VIEWER)
    group = _get(client, f"/api/v1/energy/groups/{world.a.group}", viewer, **SPAN)
    municipality = _get(client, "/api/v1/energy/municipality", viewer, **SPAN)
    supply = _get(client, f"/api/v1/energy/supply-points/{world.a.ean}", viewer, **SPAN)
    assert group["interval"] == municipality["interval"] == "15min"  # chosen: 64 buckets
    assert group["energy_wh"] == pytest.approx(municipality["energy_wh"])
    assert group["energy_wh"] == pytest.approx(supply["energy_wh"])
    assert group["baseline_wh"] == pytest.approx(supply["baseline_wh"])
    one = _get(client, f"/api/v1/energy/luminaires/{world.a.luminaires[0]}", viewer, **SPAN)
    assert one["energy_wh"] == pytest.approx(group["energy_wh"] / 4, rel=0.05)
    assert one["estimated_intervals"] + one["measured_intervals"] == len(one["intervals"])
    month = _get(client, "/api/v1/energy/municipality", viewer, **SPAN, interval="month")
    assert month["interval"] == "month" and month["interval_s"] is None
    assert len(month["intervals"]) == 1 and month["intervals"][0]["energy_wh"] > 0
    by_month = _get(client, f"/api/v1/energy/luminaires/{world.a.luminaires[0]}", viewer, **SPAN,
                    interval="month")  # a luminaire's month: from its intervals, local months
    one_days = _get(client, f"/api/v1/energy/luminaires/{world.a.luminaires[0]}", viewer, **SPAN,
                    interval="day")  # whole local days, as the month
    assert by_month["intervals"][0]["energy_wh"] == pytest.approx(one_days["energy_wh"])
    assert one_days["energy_wh"] >= one["energy_wh"]
    assert by_month["intervals"][0]["start"] == "2026-11-19T23:00:00Z"  # clipped to the period's days
    assert by_month["start"] == by_month["intervals"][0]["start"]
    group_days = _get(client, f"/api/v1/energy/groups/{world.a.group}", viewer, **SPAN, interval="day")
    town_days = _get(client, "/api/v1/energy/municipality", viewer, **SPAN, interval="day")
    assert group_days["energy_wh"] == pytest.approx(town_days["energy_wh"])  # the job's days
    assert group_days["energy_wh"] == pytest.approx(4 * one_days["energy_wh"], rel=0.05)
    grid = _get(client, f"/api/v1/grid/supply-points/{world.a.ean}/energy",
                world.headers(None, Role.GRID_OPERATOR), **SPAN)
    assert grid["energy_wh"] == pytest.approx(supply["energy_wh"]) and grid["ean"] == world.a.ean


TOO_LONG_OR_HOSTILE = [
    ({"from": "2025-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z", "interval": "15min"},
     "35,040 buckets, more than 3,000"),
    ({"from": "2025-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z", "interval": "hour"}, "8,760 buckets"),
    ({"from": "2026-01-01T00:00:00", "to": "2026-01-02T00:00:00Z"}, "time zone"),
    ({"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, "before"),
    ({"interval": "week"}, None), ({"interval": "15min' OR 1=1"}, None),
    ({"from": "0001-01-01T00:00:00+14:00"}, None), ({"to": "9999-12-31T23:59:59-14:00"}, None),
]


def test_a_hostile_or_too_long_report_is_a_clear_422(client: TestClient, world: World) -> None:
    paths = ("/api/v1/energy/municipality", f"/api/v1/energy/groups/{world.a.group}",
             f"/api/v1/energy/luminaires/{world.a.luminaires[0]}",
             f"/api/v1/energy/supply-points/{world.a.ean}")
    for params, words in TOO_LONG_OR_HOSTILE:
        for path in paths:
            response = client.get(path, params=params, headers=world.headers(world.a, Role.VIEWER))
            assert response.status_code == 422, (path, params, response.text)
            assert response.headers["content-type"] == "application/problem+json"
            if words:
                assert words in response.json()["detail"]


def test_the_grid_operator_downloads_the_settlement_jobs_files(client: TestClient, world: World,
                                                               db_dsn: str, night: EnergyNight) -> None:
    grid = world.headers(None, Role.GRID_OPERATOR)
    with psycopg.connect(db_dsn) as conn:
        stored = {(k, v): (c, s) for k, v, c, s in conn.execute(
            "SELECT kind, version, content, sha256 FROM settlement_files WHERE ean = %s AND day = %s",
            (night.ean, night.day)).fetchall()}
    assert {k for k, _ in stored} == {"inventory", "events", "profile", "faults"}
    listed = _get(client, "/api/v1/grid/settlement-files", grid, ean=night.ean, day=str(night.day))
    assert {(i["kind"], i["version"]) for i in listed["items"]} == set(stored)
    profile = next(i for i in listed["items"] if i["kind"] == "profile")
    assert profile["current"] and profile["filename"] == f"{night.ean}_{night.day}_profile_v1.csv"
    response = client.get(profile["url"], headers=grid)
    assert response.status_code == 200
    content, sha = stored[("profile", 1)]
    assert response.content == content.encode("utf-8")
    assert hashlib.sha256(response.content).hexdigest() == sha == profile["sha256"]
    assert response.headers["content-type"] == "text/csv; charset=utf-8; header=present"
    assert response.headers["content-disposition"] == f'attachment; filename="{profile["filename"]}"'
    assert response.headers["etag"] == f'"{sha}"'
    again = client.get(profile["url"], headers={**grid, "If-None-Match": response.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    assert len(response.content.split(b"\r\n")) == 96 + 2  # header, 96 intervals, last CRLF
    for role in sorted(TENANT_ROLES):  # a municipality's own users, its own supply point: no
        for path in (profile["url"], "/api/v1/grid/settlement-files"):
            refused = client.get(path, headers=world.headers(world.a, role))
            assert refused.status_code == 403, (role, path)
    _settlement_files_page_by_cursor_and_filter(client, world)


def _settlement_files_page_by_cursor_and_filter(client: TestClient, world: World) -> None:
    grid = world.headers(None, Role.GRID_OPERATOR)
    everything = _get(client, "/api/v1/grid/settlement-files", grid)["items"]
    # each tenant's seeded one and the night's four of each supply point (B's luminaires, never
    # heard of, are booked by default)
    assert len(everything) == 2 + 2 * 4
    seen, cursor = [], None
    while True:
        page = _get(client, "/api/v1/grid/settlement-files", grid, limit=4,
                    **({"cursor": cursor} if cursor else {}))
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [i["id"] for i in everything]
    only = _get(client, "/api/v1/grid/settlement-files", grid, kind="events", status="current",
                ean=world.a.ean)
    assert [i["kind"] for i in only["items"]] == ["events"]
    assert _get(client, "/api/v1/grid/settlement-files", grid, status="superseded")["items"] == []
    b = _get(client, "/api/v1/grid/settlement-files", grid, ean=world.b.ean)["items"]
    assert {i["tenant"] for i in b} == {world.b.tenant} and len(b) == 5


HOSTILE = [
    ("/api/v1/grid/settlement-files/..%2F..%2Fetc%2Fpasswd", 404),
    ("/api/v1/grid/settlement-files/111111111111111111_2026-13-45_profile_v1", 404),
    ("/api/v1/grid/settlement-files/111111111111111111_2026-01-01_profile_v99999", 404),
    ("/api/v1/grid/settlement-files/111111111111111111_2026-01-01_secrets_v1", 404),
    ("/api/v1/grid/settlement-files/111111111111111111_2026-01-01_profile_v1'--", 404),
    ("/api/v1/grid/settlement-files/" + "9" * 81, 422),
    ("/api/v1/grid/settlement-files?cursor=bm90LWEtY3Vyc29y", 400),
    ("/api/v1/grid/settlement-files?cursor=eyJrIjogIjIwMjYtMDEtMDF8eHx5fHoifQ", 400),
    ("/api/v1/grid/settlement-files?cursor=%00%01", 422),
    ("/api/v1/grid/settlement-files?day=2026-02-30", 422),
    ("/api/v1/grid/settlement-files?ean=1' OR '1'='1", 422),
    ("/api/v1/grid/settlement-files?kind=passwd", 422),
    ("/api/v1/grid/settlement-files?limit=100000", 422),
]


def test_hostile_settlement_requests_are_clear_4xx(client: TestClient, world: World) -> None:
    failures = []
    for path, status in HOSTILE:
        response = client.get(path, headers=world.headers(None, Role.GRID_OPERATOR))
        if (response.status_code, response.headers["content-type"]) != (status, "application/problem+json"):
            failures.append(f"{path}: {response.status_code} {response.text[:200]}")
    assert failures == []


def _t(iso: str) -> Any:
    from datetime import datetime
    return datetime.fromisoformat(iso)
