"""The dashboard on the API's clock: an API running on a simulated clock days away from the wall
clock (a demo's) hands it to the page, whose "last night" is the simulated clock's, with its
energy; and the public config route that carries it gives nothing else, whatever the headers."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from api.roles import Role
from tests.api.api_world import World
from tests.api.energy_world import DAY, energy_night
from tests.conftest import RunningStack
from tests.dashboard.conftest import Served, serve
from tests.dashboard.test_dashboard import log_in, until
from wire.sim_clock import SimClock

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# the afternoon after the seeded night, in Brussels: days before the wall clock's now
SIMULATED = datetime(DAY.year, DAY.month, DAY.day, 15, 0, tzinfo=ZoneInfo("Europe/Brussels")) \
    + timedelta(days=1)


def _last_night(now: datetime, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The 24 hours up to the last local noon, as the energy page takes "last night"."""
    local = now.astimezone(zone)
    noon = local.replace(hour=12, minute=0, second=0, microsecond=0)
    if noon > local:
        noon -= timedelta(days=1)
    return noon - timedelta(days=1), noon


def test_last_night_on_the_energy_page_is_the_simulated_clocks(
        browser: WebDriver, stack: RunningStack, db_dsn: str, world: World,
        tmp_path: Path) -> None:
    night = energy_night(stack, db_dsn, world.a)
    clock = SimClock(origin=SIMULATED, wall_s=time.time(), speed=60.0)
    with serve(stack, db_dsn, world, tmp_path, sim_clock=clock) as served:
        page = browser
        page.get(f"{served.url}/healthz")
        page.execute_script("sessionStorage.clear()")
        log_in(page, served, world.a, Role.ENERGY_MANAGER)
        page.get(f"{served.url}/dashboard/#/energy")
        until(page, "the energy page", lambda: page.find_element(By.ID, "energy-form").is_displayed())
        page.execute_script("const f = document.getElementById('energy-form'); f.period.value ="
                            " 'night'; f.period.dispatchEvent(new Event('change'))")
        shown = until(page, "last night's report", lambda: page.execute_script(
            "const p = window.lucioleEnergy; return p.shown && p.shown === p.loading"
            " && document.getElementById('energy-form').period.value === 'night'"
            " ? {path: p.shown, report: p.report, zone: Intl.DateTimeFormat().resolvedOptions()"
            ".timeZone, now: window.lucioleClock.now().toISOString()} : null"))
        query = parse_qs(urlsplit(shown["path"]).query)
        asked = (datetime.fromisoformat(query["from"][0]), datetime.fromisoformat(query["to"][0]))
        page_now = datetime.fromisoformat(shown["now"])
        # the page's now is the simulated clock's (60x: a few simulated minutes since the start)
        assert SIMULATED <= page_now < SIMULATED + timedelta(hours=2), page_now
        assert asked == _last_night(page_now, ZoneInfo(shown["zone"]))
        assert abs(asked[1] - datetime.now(asked[1].tzinfo)) > timedelta(days=5)
        # the night seeded on the simulated clock's last night is the one the page shows
        assert night.day == DAY and shown["report"]["energy_wh"] > 1000  # its four luminaires


@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": "Bearer not-a-token"},
    {"Authorization": "Basic " + "A" * 4000},
    {"X-Forwarded-For": "1.2.3.4, ::1", "Forwarded": "for=evil", "Host": "evil.example"},
    {"Cookie": "session=" + "x" * 3000, "Accept": "text/html", "If-None-Match": "*"},
    {"X-Tenant": "town-b", "Origin": "https://evil.example"},
], ids=["none", "bad-bearer", "huge-basic", "forwarded-host", "cookie-etag", "tenant-origin"])
def test_the_config_route_is_public_and_gives_the_clock_and_tile_url_only(
        served: Served, headers: dict[str, str]) -> None:
    got = httpx.get(f"{served.url}/api/v1/dashboard/config", headers=headers)
    assert got.status_code == 200, got.text
    body = got.json()
    assert set(body) == {"tile_url", "clock"} and body["tile_url"] is None
    assert set(body["clock"]) == {"now", "speed", "simulated"}
    assert body["clock"]["speed"] == 1.0 and body["clock"]["simulated"] is False
    now = datetime.fromisoformat(body["clock"]["now"])
    assert abs((now - datetime.now(now.tzinfo)).total_seconds()) < 3600
    assert "set-cookie" not in got.headers
    # the other traffic goes on: the page's data still wants a login
    assert httpx.get(f"{served.url}/api/v1/luminaires.geojson").status_code == 401
