"""The dashboard in headless Chromium against the real app, database and broker: a user logs
in, sees every luminaire on the WebGL map and its live state change without a reload, opens a
luminaire, acknowledges a fault, commands a group and watches each controller's acks arrive; a
viewer gets no command button and a tampered page gets the API's 403 in words; a forged token
gets nothing; text from the database stays text."""

from __future__ import annotations

import io
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from PIL import Image
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select

from api.credentials import issue_token
from api.roles import Principal, Role
from ingest.writer import Writer
from tests.api.api_world import PASSWORD, TenantAssets
from tests.conftest import RunningStack
from tests.dashboard.conftest import Served
from tests.devices import Device
from tests.devices import ack as _ack
from wire.messages import parse_command
from wire.records import TIME_MIN_US

pytestmark = [pytest.mark.integration, pytest.mark.slow]
HOSTILE = '<img src=x onerror="window.pwned=1">'


def until(driver: WebDriver, what: str, check: Any, timeout_s: float = 20.0) -> Any:
    """Poll `check()` until it gives something truthy, or fail with `what` and the page's message."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except WebDriverException as exc:
            last = exc
        time.sleep(0.1)
    message = driver.execute_script("const m = document.getElementById('message');"
                                    " return m && !m.hidden ? m.textContent : ''")
    raise AssertionError(f"{what} not seen within {timeout_s:.0f} s (last: {last!r}; page says: {message!r})")


def log_in(driver: WebDriver, served: Served, assets: TenantAssets, role: Role) -> None:
    driver.get(f"{served.url}/dashboard/")
    form = until(driver, "the login form", lambda: driver.find_element(By.ID, "login-form"))
    form.find_element(By.NAME, "username").send_keys(f"{role.value}@{assets.tenant}.example")
    form.find_element(By.NAME, "password").send_keys(PASSWORD)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    who = f"{assets.tenant} · {role.value}"
    until(driver, "the signed-in bar", lambda: driver.find_element(By.ID, "who").text == who)


def text_of(driver: WebDriver, css: str) -> str:
    """The visible text of the first element matching `css` ("" when absent or hidden), read in
    one step so a re-render between finding and reading cannot break it."""
    return driver.execute_script(  # type: ignore[no-any-return]
        "const el = document.querySelector(arguments[0]);"
        " return el && el.checkVisibility() ? el.innerText : ''", css)


def map_features(driver: WebDriver) -> int | None:
    return driver.execute_script(  # type: ignore[no-any-return]
        "const s = window.luciole; if (!s.mapReady || !s.map.getLayer('luminaires'))"
        " return null; return s.points.ids.length")


def points_where_drawn(driver: WebDriver, ids: list[int]) -> dict[int, bool]:
    """For each luminaire inside the map and clear of the panel and of other points (luminaires
    of one pole share a spot: any of their colours will do): is its colour on the screen (a
    screenshot: what the compositor shows) at the place the map's camera projects it to now?"""
    spots = driver.execute_script(
        "const s = window.luciole; const r = s.map.getContainer().getBoundingClientRect();"
        " const panel = document.getElementById('panel'); const q = panel.hidden ? null"
        " : panel.getBoundingClientRect();"
        " const at = arguments[0].map((id) => [id, s.map.project(s.features.get(id).geometry.coordinates)]);"
        " const d = (p, w) => Math.hypot(w.x - p.x, w.y - p.y);"
        " return at.filter(([id, p]) => p.x > 8 && p.y > 8 && p.x < r.width - 8 && p.y < r.height - 8"
        "   && !(q && r.left + p.x > q.left - 8 && r.top + p.y < q.bottom + 8)"
        "   && at.every(([o, w]) => d(p, w) < 1 || d(p, w) > 16))"
        " .map(([id, p]) => [id, Math.round(r.left + p.x), Math.round(r.top + p.y),"
        "   at.filter(([o, w]) => d(p, w) < 1).map(([o]) => s.stateOf(o).colour)])",
        ids)
    shot = Image.open(io.BytesIO(driver.get_screenshot_as_png())).convert("RGB")
    found = {}
    for luminaire, x, y, colours in spots:
        pixel = shot.getpixel((x, y))
        found[luminaire] = any(
            max(abs(a - int(c[k:k + 2], 16)) for a, k in zip(pixel, (1, 3, 5), strict=True)) <= 12
            for c in colours)
    return found


def test_login_map_live_state_and_panel(page: WebDriver, served: Served, artifacts: Path) -> None:
    a = served.world.a
    log_in(page, served, a, Role.OPERATOR)
    assert until(page, "the luminaires in the map's source", lambda: map_features(page)) == len(a.luminaires)
    canvas = page.find_element(By.CSS_SELECTOR, "#map canvas.maplibregl-canvas")
    assert canvas.size["width"] > 0 and canvas.size["height"] > 0
    assert page.execute_script("const gl = window.luciole.map.painter.context.gl; return gl instanceof"
                               " WebGL2RenderingContext || gl instanceof WebGLRenderingContext")
    # another tenant's luminaires are not on the map
    ids = set(page.execute_script(
        "return Array.from(window.luciole.points.ids)"))
    assert ids == set(a.luminaires)

    # the open fault (controller 0, output 0) colours its luminaire
    faulty = a.luminaires[0]
    assert until(page, "the fault's feature state", lambda: page.execute_script(
        "return window.luciole.stateOf(arguments[0]).fault", faulty))
    assert page.execute_script("return window.luciole.stateOf(arguments[0]).colour", faulty) == "#d62828"

    # the live state changes in the database: the map follows without a reload
    with psycopg.connect(served.db_dsn, autocommit=True) as conn:
        conn.execute("UPDATE controllers SET online = false WHERE id = %s", (a.controllers[1],))
    offline = a.luminaires[2]  # the first luminaire of controller 1
    marker = page.execute_script("return window.luciole.reloadMarker = 'same page'")
    until(page, "the offline controller on the map", lambda: page.execute_script(
        "return window.luciole.stateOf(arguments[0]).online === false",
        offline), timeout_s=30)
    assert page.execute_script("return window.luciole.reloadMarker") == marker
    # a new reading (dimmed) of a luminaire of controller 0: its colour follows, same page
    dimmed = a.luminaires[1]
    with psycopg.connect(served.db_dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO luminaire_state (controller_key, luminaire, time, level, status, power_w,"
                     " energy_wh, voltage_v, power_factor, driver_temp_c, failure) SELECT key, 1, now(),"
                     " 100, 0, 20, 1, 230, 0.9, 40, 0 FROM controllers WHERE id = %s", (a.controllers[0],))
    until(page, "the dimmed luminaire's colour", lambda: page.execute_script(
        "return window.luciole.stateOf(arguments[0]).colour", dimmed) == "#f4a261", timeout_s=30)
    assert page.execute_script("return window.luciole.reloadMarker") == marker

    # a click on the luminaire opens its panel
    x, y = page.execute_script("const p = window.luciole.map.project("
                               "window.luciole.features.get(arguments[0]).geometry.coordinates);"
                               " return [p.x, p.y]", offline)
    ActionChains(page).move_to_element_with_offset(
        canvas, int(x - canvas.size["width"] / 2), int(y - canvas.size["height"] / 2)).click().perform()
    heading = until(page, "the luminaire panel", lambda: text_of(page, "#panel h2"))
    assert heading.startswith("Luminaire ")
    panel = page.find_element(By.ID, "panel").text
    assert "LX" in panel and "controller" in panel
    assert page.find_element(By.CSS_SELECTOR, "#panel .panel-command button").is_displayed()
    assert page.save_screenshot(str(artifacts / "map.png"))

    # a drag: while the camera only pans, the frame drawn last is moved, not drawn again; the
    # points on the screen stay under the positions the camera projects them to, during and after
    panning = "return window.luciole.panning"
    page.execute_script("window.luciole.panning.pauseMs = 60000")  # held still: no redraw meanwhile
    start = page.execute_script(panning)
    still = points_where_drawn(page, a.luminaires)
    assert still and all(still.values()), still
    drag = ActionChains(page).move_to_element_with_offset(canvas, -int(canvas.size["width"] / 4), 0)
    drag.click_and_hold().move_by_offset(40, 30).move_by_offset(50, 40).perform()
    until(page, "frames moved by the drag", lambda: page.execute_script(panning)["moved"] > start["moved"])
    moving = page.execute_script(panning)
    moved_by = page.execute_script("return window.luciole.map.getCanvas().style.transform")
    assert moved_by.startswith("translate("), moved_by
    during = points_where_drawn(page, a.luminaires)
    assert during and all(during.values()), during
    # held still while dragging: a frame is drawn after the pause, the drag still on
    page.execute_script("window.luciole.panning.pauseMs = 200")
    ActionChains(page).move_by_offset(10, 10).perform()
    until(page, "a frame drawn in the drag's pause", lambda: page.execute_script(
        "const s = window.luciole; return s.map.isMoving() && s.map.getCanvas().style.transform === ''"
        " && s.panning.drawn > arguments[0]", moving["drawn"]))
    paused = points_where_drawn(page, a.luminaires)
    assert paused and all(paused.values()), paused
    moving = page.execute_script(panning)
    ActionChains(page).release().perform()
    until(page, "a frame drawn at the drag's end", lambda: page.execute_script(
        "const s = window.luciole; return !s.map.isMoving() && s.map.getCanvas().style.transform === ''"
        " && s.panning.drawn > arguments[0]", moving["drawn"]))
    after = points_where_drawn(page, a.luminaires)
    assert after and all(after.values()), after
    page.execute_script("window.luciole.panning.pauseMs = 150")
    # the cabinets layer is toggled off and on
    toggle = page.find_element(By.ID, "toggle-cabinets")
    shown = "return window.luciole.map.getLayoutProperty('cabinets', 'visibility')"
    toggle.click()
    assert page.execute_script(shown) == "none"
    toggle.click()
    assert page.execute_script(shown) == "visible"


def test_acknowledge_a_fault(page: WebDriver, served: Served, artifacts: Path) -> None:
    a = served.world.a
    log_in(page, served, a, Role.TECHNICIAN)
    page.get(f"{served.url}/dashboard/#/faults")
    row = until(page, "the open fault in the list", lambda: page.find_element(
        By.CSS_SELECTOR, f"#fault-table tr[data-fault='{a.fault}']"))
    assert "lamp out" in row.text and "lampFailure" in row.text
    row.click()
    until(page, "the acknowledge button", lambda: page.find_element(By.ID, "acknowledge")).click()
    state = "//div[@id='fault-detail']//dt[text()='state']/following-sibling::dd[1]"
    until(page, "the fault acknowledged", lambda: page.find_element(By.XPATH, state).text == "acknowledged")
    assert text_of(page, "#message") == "Acknowledged."
    assert page.save_screenshot(str(artifacts / "faults.png"))
    # the list shows open faults: the acknowledged one has left it
    assert not page.find_elements(By.CSS_SELECTOR, f"#fault-table tr[data-fault='{a.fault}']")
    with psycopg.connect(served.db_dsn) as conn:
        row_db = conn.execute("SELECT acknowledged_at IS NOT NULL, acknowledged_by FROM faults WHERE id = %s",
                              (a.fault,)).fetchone()
    assert row_db == (True, a.users[Role.TECHNICIAN])
    # the state filter finds it among the acknowledged ones
    Select(page.find_element(By.NAME, "state")).select_by_value("acknowledged")
    page.find_element(By.CSS_SELECTOR, "#fault-filters button").click()
    row = until(page, "the acknowledged list with it", lambda: page.find_element(
        By.CSS_SELECTOR, f"#fault-table tr[data-fault='{a.fault}'] .fault-state"))
    assert row.text == "acknowledged"


def test_group_command_reaches_done_from_the_controllers_acks(page: WebDriver, served: Served,
                                                               stack: RunningStack, artifacts: Path) -> None:
    a = served.world.a
    devices = [Device(stack, a.tenant, controller) for controller in a.controllers]
    for device in devices:
        device.connect(first=True)
    try:
        log_in(page, served, a, Role.OPERATOR)
        page.get(f"{served.url}/dashboard/#/commands")
        form = until(page, "the command form", lambda: page.find_element(By.ID, "command-form"))
        until(page, "the groups to choose from", lambda: Select(form.find_element(By.NAME, "group")).options)
        Select(form.find_element(By.NAME, "group")).select_by_value(str(a.group))
        level = form.find_element(By.NAME, "level")
        level.clear()
        level.send_keys("80")
        form.find_element(By.ID, "send-command").click()
        commands = [parse_command(device.expect()) for device in devices]
        assert [getattr(c, "level", None) for c in commands] == [80, 80]

        def statuses() -> dict[str, str]:
            return {row.get_attribute("data-controller"): row.find_element(By.CSS_SELECTOR, ".status").text
                    for row in page.find_elements(By.CSS_SELECTOR, "#command-devices tbody tr")}

        def all_sent() -> dict[str, str] | None:
            now = statuses()  # created until the broker has taken the publish
            return now if len(now) == 2 and set(now.values()) == {"sent"} else None

        until(page, "each device sent", all_sent)
        writer = Writer(served.db_dsn)
        try:
            now_us = max(int(time.time() * 1e6), TIME_MIN_US)
            writer.write([_ack(a.tenant, device.controller, seq, command.id, status)
                          for device, command in zip(devices, commands, strict=True)
                          for seq, status in ((1, "accepted"), (2, "done"))], now_us=now_us)
        finally:
            writer.close()
        def all_done() -> dict[str, str] | None:
            now = statuses()
            return now if now and set(now.values()) == {"done"} else None

        done = until(page, "each device done", all_done)
        assert set(done) == set(a.controllers)
        assert text_of(page, "#command-summary") == "2 of 2 done, 0 failed"
        assert page.save_screenshot(str(artifacts / "commands.png"))
    finally:
        for device in devices:
            device.disconnect()


def test_a_viewer_sees_no_command_and_a_tampered_page_gets_the_403_in_words(page: WebDriver,
                                                                            served: Served) -> None:
    a = served.world.a
    log_in(page, served, a, Role.VIEWER)
    page.get(f"{served.url}/dashboard/#/commands")
    until(page, "the commands page", lambda: page.find_element(By.ID, "page-commands").is_displayed())
    assert not page.find_element(By.ID, "command-form").is_displayed()
    assert not [b for b in page.find_elements(By.ID, "send-command") if b.is_displayed()]
    page.get(f"{served.url}/dashboard/#/faults?id={a.fault}")
    until(page, "the fault's detail", lambda: text_of(page, "#fault-detail h2"))
    assert not page.find_elements(By.ID, "acknowledge")
    # a page whose code was tampered with to show the buttons: the API refuses, the page says why
    page.execute_script("window.luciole.me.role = 'operator'")
    page.find_element(By.CSS_SELECTOR, f"#fault-table tr[data-fault='{a.fault}']").click()
    until(page, "the acknowledge button", lambda: page.find_element(By.ID, "acknowledge")).click()
    message = until(page, "the refusal", lambda: text_of(page, "#message"))
    assert message == "Not allowed: the viewer role may not do this."
    with psycopg.connect(served.db_dsn) as conn:
        row = conn.execute("SELECT acknowledged_at FROM faults WHERE id = %s", (a.fault,)).fetchone()
    assert row == (None,)


def test_the_token_is_renewed_before_it_expires_until_the_account_is_disabled(
        page: WebDriver, served: Served) -> None:
    a = served.world.a
    log_in(page, served, a, Role.TECHNICIAN)
    first = page.execute_script("return sessionStorage.getItem('luciole.token')")
    expires = page.execute_script("return Number(sessionStorage.getItem('luciole.token.expires'))")
    assert 800_000 < expires - page.execute_script("return Date.now()") <= 900_000
    # a minute and a second before expiry: renewed a second later, the page goes on
    page.execute_script("sessionStorage.setItem('luciole.token.expires', String(Date.now() + 61000));"
                        " window.luciole.rearm()")
    renewed = until(page, "the renewed token", lambda: (lambda t: t if t != first else None)(
        page.execute_script("return sessionStorage.getItem('luciole.token')")), timeout_s=15)
    me = httpx.get(f"{served.url}/api/v1/me", headers={"Authorization": f"Bearer {renewed}"})
    assert me.status_code == 200
    assert page.find_element(By.ID, "bar").is_displayed()
    assert page.execute_script("return window.luciole.mapReady") is True
    # the account is disabled: the next renewal is refused and the page asks for a login
    with psycopg.connect(served.db_dsn, autocommit=True) as conn:
        conn.execute("UPDATE users SET disabled_at = now() WHERE id = %s", (a.users[Role.TECHNICIAN],))
    page.execute_script("sessionStorage.setItem('luciole.token.expires', String(Date.now() + 61000));"
                        " window.luciole.rearm()")
    until(page, "the login form", lambda: page.find_element(By.ID, "login-form").is_displayed(), timeout_s=15)
    assert page.execute_script("return sessionStorage.getItem('luciole.token')") is None
    assert text_of(page, "#message") == "Your session has ended: please log in again."


def test_a_forged_token_gets_nothing(page: WebDriver, served: Served) -> None:
    a = served.world.a
    forged = issue_token(Principal(a.users[Role.ADMIN], a.tenant, Role.ADMIN),
                         "not-the-signing-secret-but-32-chars-long", timedelta(minutes=15), datetime.now(UTC))
    assert httpx.get(f"{served.url}/api/v1/luminaires.geojson",
                     headers={"Authorization": f"Bearer {forged}"}).status_code == 401
    page.get(f"{served.url}/dashboard/")
    page.execute_script("sessionStorage.setItem('luciole.token', arguments[0])", forged)
    page.refresh()
    until(page, "the login form", lambda: page.find_element(By.ID, "login-form").is_displayed())
    assert not page.find_element(By.ID, "bar").is_displayed()
    assert page.execute_script("return sessionStorage.getItem('luciole.token')") is None
    assert map_features(page) is None


def test_text_from_the_database_stays_text(page: WebDriver, served: Served) -> None:
    a = served.world.a
    luminaire = a.luminaires[0]
    with psycopg.connect(served.db_dsn, autocommit=True) as conn:
        conn.execute("UPDATE luminaires SET model = %s WHERE id = %s", (HOSTILE, luminaire))
        conn.execute("UPDATE faults SET cause = %s WHERE id = %s", (HOSTILE, a.fault))
    log_in(page, served, a, Role.TECHNICIAN)
    page.get(f"{served.url}/dashboard/#/faults?id={a.fault}")
    until(page, "the fault's detail", lambda: text_of(page, "#fault-detail h2"))
    comment = page.find_element(By.NAME, "comment")
    comment.send_keys(HOSTILE)
    page.find_element(By.ID, "add-comment").click()
    until(page, "the comment in the history", lambda: HOSTILE in text_of(page, "#fault-history"))
    assert HOSTILE in text_of(page, "#fault-detail .cause")
    page.get(f"{served.url}/dashboard/#/map?l={luminaire}")
    until(page, "the luminaire panel", lambda: HOSTILE in text_of(page, "#panel"))
    assert HOSTILE in page.find_element(By.ID, "panel-faults").text
    assert page.find_elements(By.CSS_SELECTOR, "img[src='x']") == []
    assert page.execute_script("return window.pwned") is None


def test_the_page_is_served_with_a_strict_content_security_policy(served: Served) -> None:
    response = httpx.get(f"{served.url}/dashboard/")
    assert response.status_code == 200
    policy = dict(part.strip().split(" ", 1) for part in
                  response.headers["content-security-policy"].split(";"))
    assert policy["script-src"] == "'self'" and policy["default-src"] == "'none'"
    assert policy["frame-ancestors"] == "'none'"
    assert "<script>" not in response.text  # every script is a file of its own
    vendor = httpx.get(f"{served.url}/dashboard/vendor/maplibre-gl/maplibre-gl.js")
    assert vendor.status_code == 200 and "content-security-policy" in vendor.headers
    config = httpx.get(f"{served.url}/api/v1/dashboard/config").json()
    assert config["tile_url"] is None and set(config) == {"tile_url", "clock"}
    # the page is public, its data is not
    assert httpx.get(f"{served.url}/api/v1/luminaires.geojson").status_code == 401
