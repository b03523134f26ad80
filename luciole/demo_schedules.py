"""The demo's schedules, as a municipality's energy manager keeps them: a current calendar per
road class (full light from sunset, dimmed late at night, full again before sunrise), the road
described for the optimiser, and the optimiser's proposal adopted once the job has stored one;
all through the API with the energy manager's login, so the dashboard shows each change.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import time as clock_time
from typing import Any

import numpy as np

from analytics.photometry import arc_at_least
from wire.messages import Anchor, Calendar, Program, ScheduleStep

log = logging.getLogger(__name__)

FULL = 254


@dataclass(frozen=True)
class RoadPlan:
    """How a municipality lights a road class today, and what the optimiser is told of it."""

    rated_class: str  # EN 13201 class the road is rated for
    design_at_full: float  # cd/m² (M) or lx (C, P) at 100 %, new
    dim_at: clock_time  # local time the late-night dimming starts
    dim_light: float  # share of full light late at night
    full_at: clock_time  # local time full light comes back for the morning


# Busier roads dim later and less; every road is lit fully again for the morning traffic. The
# design values are those of a road lit above its class at full power (LED lanterns fitted at the
# old lamps' power, as often): what the optimiser finds to save all night while keeping the class.
ROAD_PLANS: dict[str, RoadPlan] = {
    "arterial": RoadPlan("M3", 1.6, clock_time(23, 0), 0.80, clock_time(5, 30)),
    "collector": RoadPlan("M4", 1.2, clock_time(22, 30), 0.75, clock_time(5, 45)),
    "residential": RoadPlan("P3", 15.0, clock_time(22, 0), 0.70, clock_time(6, 0)),
    "pedestrian": RoadPlan("P4", 10.0, clock_time(22, 0), 0.70, clock_time(6, 0)),
}


def plan_of(road_class: str | None) -> RoadPlan:
    """The plan of a road class (an unknown or missing class is lit as a residential street)."""
    return ROAD_PLANS.get(road_class or "", ROAD_PLANS["residential"])


def current_calendar(road_class: str | None, timezone: str = "Europe/Brussels") -> Calendar:
    """The calendar a municipality runs on a road class before optimising: every night full
    light from sunset, dimmed from `dim_at`, full again from `full_at`, off at sunrise."""
    plan = plan_of(road_class)
    dim = int(arc_at_least(np.array([plan.dim_light]))[0])
    steps = (ScheduleStep(anchor=Anchor.SUNSET, level=FULL),
             ScheduleStep(anchor=Anchor.CLOCK, at=plan.dim_at, level=dim),
             ScheduleStep(anchor=Anchor.CLOCK, at=plan.full_at, level=FULL),
             ScheduleStep(anchor=Anchor.SUNRISE, level=0))
    return Calendar(timezone=timezone, programs={"night": Program(steps=steps)},
                    week=("night",) * 7)


def current_name(road_class: str | None) -> str:
    plan = plan_of(road_class)
    return (f"current {road_class or 'residential'}: full from sunset, "
            f"{plan.dim_light:.0%} from {plan.dim_at:%H:%M}, full from {plan.full_at:%H:%M}")


def lighting_of(road_class: str | None) -> dict[str, Any]:
    """The group's lighting as the energy manager describes it to the optimiser."""
    plan = plan_of(road_class)
    return {"rated_class": plan.rated_class, "design_at_full": plan.design_at_full}


def optimised_name(group: str, first_night: str) -> str:
    return f"optimised {group} from {first_night}"


def saving_pct(proposal: dict[str, Any]) -> float:
    """The proposal's predicted saving against full light from dusk to dawn, in %."""
    baseline = float(proposal["baseline_energy_wh"])
    return 100.0 * float(proposal["savings_wh"]) / baseline if baseline > 0 else 0.0


class ApiError(RuntimeError):
    """The API refused a call (status and its problem detail)."""


class EnergyManager:
    """The energy manager's session on the API: plain HTTP with the bearer token, as a script of
    the municipality would call it."""

    def __init__(self, url: str, email: str, password: str, timeout_s: float = 15.0) -> None:
        self.url = url
        self.timeout_s = timeout_s
        body = urllib.parse.urlencode({"username": email, "password": password}).encode()
        self.token = str(self._send("POST", "/api/v1/auth/token", body,
                                    "application/x-www-form-urlencoded")["access_token"])

    def _send(self, method: str, path: str, body: bytes | None, kind: str) -> Any:
        headers = {"Content-Type": kind, "Accept": "application/json"}
        if getattr(self, "token", None):
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(f"{self.url}{path}", data=body, method=method,
                                         headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                text = response.read()
        except urllib.error.HTTPError as exc:
            raise ApiError(f"{method} {path}: {exc.code} {exc.read()[:300]!r}") from None
        return json.loads(text) if text else None

    def call(self, method: str, path: str, body: object = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        return self._send(method, f"/api/v1{path}", data, "application/json")

    def adopt(self, name: str, calendar: dict[str, Any], group_id: int) -> tuple[dict, list[dict]]:
        """Save the calendar as a schedule, assign it to the group and push it: (the schedule,
        the command batches issued)."""
        saved = self.call("POST", "/schedules", {"name": name, "body": calendar})
        self.call("PUT", f"/groups/{group_id}/schedule", {"schedule_id": saved["id"]})
        issued = self.call("POST", f"/schedules/{saved['id']}/push", {})
        return saved, list(issued)

    def start_with_current(self, group_id: int, road_class: str | None) -> tuple[dict, list[dict]]:
        """Describe the group's road for the optimiser and give it its current calendar."""
        self.call("PUT", f"/groups/{group_id}/lighting", lighting_of(road_class))
        return self.adopt(current_name(road_class),
                          current_calendar(road_class).model_dump(mode="json"), group_id)

    def stored_proposal(self, group_id: int) -> dict[str, Any] | None:
        """The optimiser job's newest stored proposal for the group, if any."""
        found = self.call("GET", f"/schedules/proposals?group_id={group_id}&limit=1")
        return found[0] if found else None


class DemoSchedules:
    """The printed municipality's hosted group: its current calendar at start, then the
    optimiser's first stored proposal adopted (saved, assigned, pushed) as soon as there is one.
    Each step gives the console line that says what happened."""

    def __init__(self, manager: EnergyManager, group_id: int, road_class: str,
                 group_name: str = "edge agents", poll_every_s: float = 2.0) -> None:
        self.manager = manager
        self.group_id = group_id
        self.road_class = road_class
        self.group_name = group_name
        self.poll_every_s = poll_every_s
        self.adopted: dict[str, Any] | None = None
        self._polled = 0.0

    def _pushed(self, saved: dict, issued: list[dict]) -> str:
        devices = sum(int(b["devices"]) for b in issued)
        return (f"schedule {saved['name']!r} pushed to {devices} controllers of "
                f"{self.group_name!r} (group {self.group_id})")

    def start(self) -> str:
        saved, issued = self.manager.start_with_current(self.group_id, self.road_class)
        return self._pushed(saved, issued) + f" ({self.road_class} roads)"

    def poll(self, now_s: float | None = None) -> str | None:
        """Once the optimiser job has stored a proposal for the group: adopt it, and say so."""
        now_s = time.monotonic() if now_s is None else now_s
        if self.adopted is not None or now_s - self._polled < self.poll_every_s:
            return None
        self._polled = now_s
        try:
            proposal = self.manager.stored_proposal(self.group_id)
            if proposal is None:
                return None
            saved, issued = self.manager.adopt(
                optimised_name(self.group_name, str(proposal["first_night"])), proposal["body"],
                self.group_id)
        except (ApiError, OSError) as exc:  # the API is busy or restarting: the next poll retries
            log.warning("adopting the optimiser's proposal failed: %s", exc)
            return None
        self.adopted = saved
        return (self._pushed(saved, issued) + f": predicted −{saving_pct(proposal):.0f} % energy "
                f"against full light from dusk to dawn")
