"""Schedules end to end against the real database and broker: calendars stored and read back,
hostile bodies refused with the field named, a group's lighting described, the optimiser's
proposal computed on demand or read from the job's store, a night previewed, and an accepted
proposal pushed as a calendar command to each member controller."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg.conninfo import conninfo_to_dict

from analytics.optimiser_job import OptimiserJob
from analytics.runner import Scheduled, run_once
from analytics.traffic import typical_profile
from api.roles import Role
from luciole.db_roles import DbService
from tests.api.api_world import World
from tests.api.test_api_commands import Device, _linked
from tests.conftest import RunningStack
from wire.messages import Calendar, CalendarCommand, ScheduleCommand, parse_command
from wire.nights import Position, level_at
from wire.records import Quantity

pytestmark = pytest.mark.integration
TZ = ZoneInfo("Europe/Brussels")

CALENDAR: dict[str, Any] = {
    "timezone": "Europe/Brussels",
    "programs": {
        "workday": {"steps": [{"anchor": "sunset", "level": 254},
                              {"anchor": "clock", "at": "22:30", "level": 170},
                              {"anchor": "clock", "at": "05:30", "level": 230},
                              {"anchor": "sunrise", "level": 0}]},
        "weekend": {"steps": [{"anchor": "sunset", "offset_min": -10, "level": 254},
                              {"anchor": "clock", "at": "01:00", "level": 180},
                              {"anchor": "sunrise", "offset_min": 10, "level": 0}]},
        "feast": {"steps": [{"anchor": "sunset", "level": 254},
                            {"anchor": "sunrise", "level": 0}]},
    },
    "week": ["workday"] * 5 + ["weekend"] * 2,
    "special_days": [{"name": "national day", "first": "2026-07-21", "yearly": True,
                      "program": "feast"},
                     {"name": "fair", "first": "2026-09-01", "last": "2026-09-03",
                      "program": "weekend"}],
}


def _post(client: TestClient, world: World, body: Any, role: Role = Role.ENERGY_MANAGER,
          name: str = "cal") -> Any:
    return client.post("/api/v1/schedules", headers=world.headers(world.a, role),
                       json={"name": name, "body": body})


def test_a_calendar_is_stored_and_read_back_and_a_schedule_still_is(client: TestClient,
                                                                      world: World) -> None:
    created = _post(client, world, CALENDAR)
    assert created.status_code == 201, created.text
    got = client.get(f"/api/v1/schedules/{created.json()['id']}",
                     headers=world.headers(world.a, Role.VIEWER)).json()
    assert Calendar.model_validate(got["body"]) == Calendar.model_validate(CALENDAR)
    assert got["body"]["special_days"][0]["yearly"] is True
    plain = {"steps": [{"anchor": "sunset", "level": 200}, {"anchor": "clock", "at": "23:00",
                                                             "level": 100}]}
    made = _post(client, world, plain, name="plain")
    assert made.status_code == 201 and made.json()["body"]["steps"][1]["at"] == "23:00:00"
    assert "programs" not in made.json()["body"], "a schedule is stored as sent"
    listed = client.get("/api/v1/schedules", headers=world.headers(world.a, Role.VIEWER)).json()
    assert {s["name"] for s in listed} == {"night", "cal", "plain"}


def _with(**changes: Any) -> dict[str, Any]:
    body = json.loads(json.dumps(CALENDAR))
    body.update(changes)
    return body


HOSTILE = [
    ("overlapping special days", _with(special_days=[
        {"name": "a", "first": "2026-12-24", "last": "2026-12-26", "program": "feast"},
        {"name": "b", "first": "2026-12-26", "program": "feast"}]), "overlap on 2026-12-26"),
    ("yearly overlapping dated", _with(special_days=[
        {"name": "a", "first": "2020-12-25", "yearly": True, "program": "feast"},
        {"name": "b", "first": "2031-12-25", "program": "feast"}]), "overlap"),
    ("clock step without at", _with(programs={"p": {"steps": [{"anchor": "clock", "level": 9}]}},
                                    week=["p"] * 7), "needs `at`"),
    ("unknown timezone", _with(timezone="Mars/Olympus_Mons"), "unknown IANA time zone"),
    ("path as timezone", _with(timezone="../../etc/passwd"), "unknown IANA time zone"),
    ("too many programs", _with(programs={f"p{i}": {"steps": [{"anchor": "sunset", "level": 1}]}
                                          for i in range(33)}, week=["p0"] * 7), "body.calendar.programs"),
    ("six weekdays", _with(week=["workday"] * 6), "body.calendar.week"),
    ("undefined program", _with(week=["workday"] * 6 + ["nope"]), "sunday runs program 'nope'"),
    ("special day on undefined program", _with(special_days=[
        {"name": "x", "first": "2026-01-01", "program": "ghost"}]), "'ghost', which is not defined"),
    ("reversed special day", _with(special_days=[
        {"name": "x", "first": "2026-01-05", "last": "2026-01-01", "program": "feast"}]),
     "is before first"),
    ("level above 254", _with(programs={"p": {"steps": [{"anchor": "sunset", "level": 255}]}},
                              week=["p"] * 7), "body.calendar.programs.p.steps.0.level"),
    ("program name with a slash", _with(programs={"a/b": {"steps": [{"anchor": "sunset",
                                                                      "level": 1}]}},
                                        week=["a/b"] * 7), "body.calendar.programs"),
    ("unknown field", _with(colour="red"), "body.calendar.colour"),
    ("neither", {"hello": 1}, "body.schedule"),
    ("a list", [1, 2], "body"),
    ("offset beyond half a day", {"steps": [{"anchor": "sunset", "offset_min": 100000,
                                             "level": 3}]}, "body.schedule.steps.0.offset_min"),
]


def test_bad_calendars_are_refused_naming_the_field(client: TestClient, world: World) -> None:
    """The whole table on one database (a fresh one per case would cost seconds each)."""
    failures = []
    for why, body, names in HOSTILE:
        response = _post(client, world, body)
        detail = response.json().get("detail", "")
        if (response.status_code != 422 or names not in detail
                or response.headers["content-type"] != "application/problem+json"):
            failures.append(f"{why}: {response.status_code} {detail}")
    assert failures == []
    names = {s["name"] for s in client.get("/api/v1/schedules",
                                             headers=world.headers(world.a, Role.VIEWER)).json()}
    assert names == {"night"}, "nothing refused was stored"


def test_hostile_requests_to_the_new_routes(client: TestClient, world: World) -> None:
    h = world.headers(world.a, Role.ENERGY_MANAGER)
    group = world.a.group
    cases = [
        ("PUT", f"/api/v1/groups/{group}/lighting", {"rated_class": "M9", "design_at_full": 1},
         422, "rated_class"),
        ("PUT", f"/api/v1/groups/{group}/lighting", {"rated_class": "M4", "design_at_full": -1},
         422, "design_at_full"),
        ("PUT", f"/api/v1/groups/{group}/lighting", {"rated_class": "M4", "design_at_full": 1,
                                                     "min_step_min": 5}, 422, "min_step_min"),
        ("PUT", f"/api/v1/groups/{group}/lighting", {"rated_class": "M4", "design_at_full": 1,
                                                     "sql": "drop"}, 422, "sql"),
        ("PUT", "/api/v1/groups/99999999/lighting", {"rated_class": "M4", "design_at_full": 1},
         404, "group"),
        ("POST", "/api/v1/schedules/proposals", {"group_id": group, "nights": 0}, 422, "nights"),
        ("POST", "/api/v1/schedules/proposals", {"group_id": group, "nights": 32}, 422, "nights"),
        ("POST", "/api/v1/schedules/proposals", {"group_id": 0}, 422, "group_id"),
        ("POST", "/api/v1/schedules/proposals", {"group_id": 99999999}, 404, "group"),
        ("POST", "/api/v1/schedules/preview", {"group_id": group, "body": CALENDAR,
                                               "night": "9999-12-31"}, 422, "night"),
        ("POST", "/api/v1/schedules/preview", {"group_id": group, "body": {"steps": []}}, 422,
         "steps"),
        ("POST", "/api/v1/schedules/preview", {"group_id": 99999999, "body": CALENDAR}, 404,
         "group"),
    ]
    failures = []
    for method, path, body, status, names in cases:
        response = client.request(method, path, json=body, headers=h)
        text = response.json().get("detail", "")
        if response.status_code != status or names not in text:
            failures.append(f"{method} {path} {body}: {response.status_code} {text}")
    nan = client.put(f"/api/v1/groups/{group}/lighting", headers={**h, "Content-Type":
                     "application/json"}, content=b'{"rated_class": "M4", "design_at_full": NaN}')
    if nan.status_code != 422:
        failures.append(f"NaN design value: {nan.status_code}")
    listed = client.get("/api/v1/schedules/proposals?group_id=-3", headers=h)
    if listed.status_code != 422:
        failures.append(f"negative group_id listed: {listed.status_code}")
    assert failures == []


def test_lighting_is_described_by_the_energy_manager_only(client: TestClient, world: World) -> None:
    path = f"/api/v1/groups/{world.a.group}/lighting"
    body = {"rated_class": "C3", "design_at_full": 20.0, "max_steps": 2, "min_step_min": 90,
            "presence_hold_s": 45, "presence_adaptive": True}
    for role in (Role.TECHNICIAN, Role.OPERATOR, Role.VIEWER):
        assert client.put(path, json=body, headers=world.headers(world.a, role)).status_code == 403
    put = client.put(path, json=body, headers=world.headers(world.a, Role.ENERGY_MANAGER))
    assert put.status_code == 200, put.text
    got = client.get(path, headers=world.headers(world.a, Role.VIEWER)).json()
    assert {k: got[k] for k in body} == body
    assert got["maintenance_factor"] == 0.8 and got["group_id"] == world.a.group


def _group_with_presence(db_dsn: str, world: World, now: datetime) -> None:
    """Presence counts for the last four weeks on tenant A's first controller, an arterial's
    traffic (busy by day, quiet at night)."""
    profile = typical_profile("arterial")
    rng = np.random.default_rng(3)
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        key = conn.execute("SELECT key FROM controllers WHERE id = %s",
                           (world.a.controllers[0],)).fetchone()[0]  # type: ignore[index]
        t = now - timedelta(days=27)
        rows = []
        seq = 0
        while t < now:
            count = rng.poisson(profile[t.astimezone(TZ).hour] * 60.0)
            rows.append((t, key, 32, int(Quantity.PRESENCE_COUNT), float(count), 1, seq))
            seq += 1
            t += timedelta(minutes=15)
        with conn.cursor().copy("COPY sensor_readings (time, controller_key, sensor, quantity,"
                                " value, boot_id, seq) FROM STDIN") as copy:
            for r in rows:
                copy.write_row(r)


def test_a_proposal_on_demand_saves_energy_and_is_a_calendar(client: TestClient, world: World,
                                                            db_dsn: str) -> None:
    h = world.headers(world.a, Role.ENERGY_MANAGER)
    bare = client.post("/api/v1/groups", headers=h, json={"name": "bare"})
    assert bare.status_code == 201, bare.text
    refused = client.post("/api/v1/schedules/proposals", headers=h,
                          json={"group_id": bare.json()["id"]})
    assert refused.status_code == 409
    assert refused.json()["detail"] == ("describe the group's lighting first "
                                        "(PUT /groups/{id}/lighting)")
    _group_with_presence(db_dsn, world, datetime.now(UTC))
    response = client.post("/api/v1/schedules/proposals", headers=h,
                           json={"group_id": world.a.group, "nights": 3})
    assert response.status_code == 200, response.text
    got = response.json()
    assert got["source"] == "on_demand" and got["group_id"] == world.a.group
    assert got["first_night"] == datetime.now(UTC).astimezone(TZ).date().isoformat()
    calendar = Calendar.model_validate(got["body"])
    assert calendar.valid_from is not None and calendar.valid_from.isoformat() == got["first_night"]
    assert 0 < got["predicted_energy_wh"] < got["baseline_energy_wh"]
    assert got["savings_wh"] == pytest.approx(got["baseline_energy_wh"] - got["predicted_energy_wh"])
    assert len(got["nights"]) == 3
    assert sum(n["energy_wh"] for n in got["nights"]) == pytest.approx(got["predicted_energy_wh"])
    step = got["nights"][0]["steps"][0]
    assert step["from"] == "sunset" and 0 < step["level"] <= 254 and "class M" in step["why"]
    assert got["inputs"]["presence_readings"] > 2000
    # the viewer may not ask, and may read what the job stored (nothing yet)
    assert client.post("/api/v1/schedules/proposals", json={"group_id": world.a.group},
                       headers=world.headers(world.a, Role.VIEWER)).status_code == 403
    assert client.get("/api/v1/schedules/proposals",
                      headers=world.headers(world.a, Role.VIEWER)).json() == []


def test_the_jobs_stored_proposal_is_served_when_it_exists(stack: RunningStack, client: TestClient,
                                                          world: World, db_dsn: str) -> None:
    _group_with_presence(db_dsn, world, datetime.now(UTC))
    jobs_dsn = stack.endpoints.service_dsn(DbService.JOBS, conninfo_to_dict(db_dsn)["dbname"])
    item = Scheduled(OptimiserJob(nights=7), every_s=3600, settle_s=0, max_window_s=86_400)
    with psycopg.connect(jobs_dsn, autocommit=True) as conn:
        outcome = run_once(conn, item, ignore_schedule=True)
    assert outcome is not None and outcome.result.records == 2  # both tenants' groups
    h = world.headers(world.a, Role.ENERGY_MANAGER)
    got = client.post("/api/v1/schedules/proposals", headers=h,
                      json={"group_id": world.a.group, "nights": 7}).json()
    assert got["source"] == "job" and got["id"] is not None
    Calendar.model_validate(got["body"])
    fresh = client.post("/api/v1/schedules/proposals", headers=h,
                        json={"group_id": world.a.group, "nights": 2}).json()
    assert fresh["source"] == "on_demand", "another number of nights is computed now"
    listed = client.get(f"/api/v1/schedules/proposals?group_id={world.a.group}",
                        headers=world.headers(world.a, Role.VIEWER)).json()
    assert [p["id"] for p in listed] == [got["id"]]
    assert listed[0]["predicted_energy_wh"] == pytest.approx(got["predicted_energy_wh"])
    everything = client.get("/api/v1/schedules/proposals", headers=h).json()
    assert {p["group_id"] for p in everything} == {world.a.group}, "never another tenant's"


def test_a_preview_is_the_night_the_agent_runs(client: TestClient, world: World) -> None:
    response = client.post("/api/v1/schedules/preview",
                           headers=world.headers(world.a, Role.VIEWER),
                           json={"group_id": world.a.group, "body": CALENDAR,
                                 "night": "2026-07-21"})
    assert response.status_code == 200, response.text
    got = response.json()
    assert got["program"] == "feast" and got["luminaires"] == 4
    assert got["energy_wh"] == pytest.approx(got["baseline_wh"], rel=1e-6), "full all night"
    workday = client.post("/api/v1/schedules/preview", headers=world.headers(world.a, Role.VIEWER),
                          json={"group_id": world.a.group, "body": CALENDAR,
                                "night": "2026-07-22"}).json()
    assert workday["program"] == "workday"
    assert 0 < workday["energy_wh"] < workday["baseline_wh"]
    calendar = Calendar.model_validate(CALENDAR)
    position = Position(50.8, 4.3)
    for i in range(0, len(workday["t"]), 37):
        at = datetime.fromtimestamp(workday["t"][i], UTC)
        assert workday["level"][i] == level_at(calendar, position, at), at
    assert max(workday["power_w"]) == pytest.approx(max(workday["baseline_w"]))


def test_an_accepted_proposal_is_pushed_as_a_calendar_to_each_controller(
        stack: RunningStack, client: TestClient, world: World, db_dsn: str) -> None:
    a = world.a
    devices = [Device(stack, a.tenant, c) for c in a.controllers]
    for device in devices:
        device.connect(first=True)
    _linked(client)
    h = world.headers(a, Role.ENERGY_MANAGER)
    try:
        proposal = client.post("/api/v1/schedules/proposals", headers=h,
                               json={"group_id": a.group, "nights": 2}).json()
        saved = _post(client, world, proposal["body"], name="proposed")
        assert saved.status_code == 201, saved.text
        sid = saved.json()["id"]
        assert client.put(f"/api/v1/groups/{a.group}/schedule", headers=h,
                          json={"schedule_id": sid}).status_code == 204
        assert client.post(f"/api/v1/schedules/{sid}/push", json={},
                           headers=world.headers(a, Role.TECHNICIAN)).status_code == 403
        pushed = client.post(f"/api/v1/schedules/{sid}/push", headers=h, json={})
        assert pushed.status_code == 202, pushed.text
        (batch,) = pushed.json()
        assert batch["devices"] == 2 and batch["sent"] == 2
        for device in devices:
            command = parse_command(device.expect())
            assert isinstance(command, CalendarCommand)
            assert command.calendar == Calendar.model_validate(proposal["body"])
        # the world's one-profile schedule still leaves as a schedule command
        assert client.post(f"/api/v1/schedules/{a.schedule}/push", headers=h,
                           json={}).status_code == 409  # no longer assigned to a group
        client.put(f"/api/v1/groups/{a.group}/schedule", headers=h,
                   json={"schedule_id": a.schedule})
        assert client.post(f"/api/v1/schedules/{a.schedule}/push", headers=h,
                           json={}).status_code == 202
        assert isinstance(parse_command(devices[0].expect()), ScheduleCommand)
    finally:
        for device in devices:
            device.disconnect()


def test_the_list_shows_each_schedules_groups_and_latest_push_to_its_tenant_only(
        stack: RunningStack, client: TestClient, world: World, db_dsn: str) -> None:
    """What the schedules page shows: the groups a schedule is assigned to and its newest push
    (the batch, its group, its devices per status); another tenant sees none of it."""
    a = world.a
    _linked(client)
    h = world.headers(a, Role.ENERGY_MANAGER)

    def listed(headers: dict[str, str]) -> dict[int, Any]:
        got = client.get("/api/v1/schedules", headers=headers)
        assert got.status_code == 200, got.text
        return {s["id"]: s for s in got.json()}

    before = listed(h)[a.schedule]
    assert before["last_push"] is None
    client.put(f"/api/v1/groups/{a.group}/schedule", headers=h, json={"schedule_id": a.schedule})
    first = client.post(f"/api/v1/schedules/{a.schedule}/push", headers=h, json={}).json()
    newest = client.post(f"/api/v1/schedules/{a.schedule}/push", headers=h, json={}).json()
    with psycopg.connect(db_dsn, autocommit=True) as owner:  # a controller failed the newest
        owner.execute("UPDATE commands SET status = 'failed' WHERE id = (SELECT id FROM commands"
                      " WHERE batch_id = %s ORDER BY controller_id LIMIT 1)", (newest[0]["id"],))
    shown = listed(h)[a.schedule]
    assert shown["group_ids"] == [a.group]
    push = shown["last_push"]
    assert push["id"] == newest[0]["id"] != first[0]["id"] and push["group_id"] == a.group
    assert push["total"] == 2 and push["counts"]["failed"] == 1
    assert push["counts"]["sent"] + push["counts"]["created"] == 1
    assert datetime.fromisoformat(push["issued_at"]) >= datetime.fromisoformat(
        first[0]["issued_at"])
    # the other tenant's list: its own schedules, no push or group of town-a
    theirs = listed(world.headers(world.b, Role.ENERGY_MANAGER))
    assert a.schedule not in theirs
    assert all(s["last_push"] is None or s["last_push"]["id"] not in (first[0]["id"],
                                                                      newest[0]["id"])
               for s in theirs.values())
