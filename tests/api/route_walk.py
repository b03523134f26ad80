"""Requests for every route of the app, aimed at one tenant's assets: path parameters filled with
its ids, bodies naming its assets where a body can name one."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from api.roles import Role
from tests.api.api_world import TenantAssets

PARAM = re.compile(r"\{([a-z_]+)\}")


def path_values(t: TenantAssets) -> dict[str, str]:
    return {"controller_id": t.controllers[0], "luminaire_id": str(t.luminaires[0]),
            "cabinet_id": t.cabinet, "group_id": str(t.group), "schedule_id": str(t.schedule),
            "fault_id": str(t.fault), "batch_id": t.batch, "user_id": str(t.users[Role.VIEWER]),
            "key_id": str(t.key_id), "ean": t.ean, "day": "2026-01-01"}


SCHEDULE = {"steps": [{"anchor": "sunset", "level": 200}, {"anchor": "clock", "at": "23:00",
                                                             "level": 100}]}


def bodies(t: TenantAssets) -> dict[tuple[str, str], tuple[Any, bool]]:
    """(body, names the tenant's assets) for every route that takes one."""
    v1 = "/api/v1"
    return {
        ("POST", f"{v1}/users"): ({"email": "new.person@elsewhere.example", "role": "viewer",
                                   "password": "a long enough password"}, False),
        ("POST", f"{v1}/keys"): ({"name": "machine", "role": "viewer"}, False),
        ("POST", f"{v1}/controllers"): ({"id": "ctl-walk-new", "cabinet_id": t.cabinet}, True),
        ("PATCH", f"{v1}/controllers/{{controller_id}}"): ({"pole_id": "P-moved"}, True),
        ("POST", f"{v1}/luminaires"): ({"controller_id": t.controllers[0], "idx": 7}, True),
        ("PATCH", f"{v1}/luminaires/{{luminaire_id}}"): ({"model": "changed"}, True),
        ("POST", f"{v1}/cabinets"): ({"id": "cab-walk-new", "supply_point_ean": t.ean}, True),
        ("POST", f"{v1}/supply-points"): ({"ean": "987654321098765432", "name": "new"}, False),
        ("POST", f"{v1}/groups"): ({"name": "walk group"}, False),
        ("PUT", f"{v1}/groups/{{group_id}}/members"): ({"luminaire_ids": t.luminaires}, True),
        ("POST", f"{v1}/commands"): ({"target": {"luminaire": t.luminaires[0]},
                                      "action": {"type": "identify"}}, True),
        ("POST", f"{v1}/faults/{{fault_id}}/acknowledge"): ({"text": "seen"}, True),
        ("POST", f"{v1}/faults/{{fault_id}}/assign"): ({"user_id": t.users[Role.TECHNICIAN]}, True),
        ("POST", f"{v1}/faults/{{fault_id}}/comments"): ({"text": "note"}, True),
        ("POST", f"{v1}/schedules"): ({"name": "walk", "body": SCHEDULE}, False),
        ("PUT", f"{v1}/groups/{{group_id}}/schedule"): ({"schedule_id": t.schedule}, True),
        ("POST", f"{v1}/schedules/{{schedule_id}}/push"): ({}, True),
        ("POST", f"{v1}/schedules/proposals"): ({"group_id": t.group}, True),
        ("POST", f"{v1}/schedules/preview"): ({"group_id": t.group, "body": SCHEDULE}, True),
        ("PUT", f"{v1}/groups/{{group_id}}/lighting"): ({"rated_class": "M4",
                                                          "design_at_full": 1.2}, True),
        ("POST", f"{v1}/provision"): ({"claim_code": "CLAIM-NONE", "pole_id": "P", "lat": 50.0,
                                       "lon": 4.0, "luminaire_model": "m", "cabinet_id": t.cabinet},
                                      False),
    }


RAW_BODIES: dict[tuple[str, str], tuple[bytes, str]] = {
    ("POST", "/api/v1/luminaires/import"): (b"controller_id,idx\nctl-walk-import,0\n", "text/csv"),
    ("POST", "/api/v1/auth/token"): (b"username=nobody%40x.example&password=wrong-password",
                                     "application/x-www-form-urlencoded"),
}


@dataclass(frozen=True)
class Call:
    method: str
    template: str
    path: str
    json: Any
    content: bytes | None
    content_type: str | None
    aimed: bool  # names the tenant's assets (path or body): must be refused to another tenant

    def send(self, client: Any, headers: dict[str, str]) -> Any:
        h = dict(headers)
        if self.content_type is not None:
            h["Content-Type"] = self.content_type
        return client.request(self.method, self.path, json=self.json, content=self.content,
                              headers=h)


def call(method: str, template: str, t: TenantAssets) -> Call:
    values = path_values(t)
    params = PARAM.findall(template)
    path = PARAM.sub(lambda m: values[m.group(1)], template)
    body, names = bodies(t).get((method, template), (None, False))
    raw = RAW_BODIES.get((method, template))
    return Call(method, template, path, body, raw[0] if raw else None, raw[1] if raw else None,
                bool(params) or names)
