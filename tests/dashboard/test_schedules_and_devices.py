"""The schedule editor and the device pages in headless Chromium against the real app, database
and broker: an energy manager builds a calendar with a special day, sees its predicted night and
saving, asks the optimiser, saves the proposal, pushes it to a group and follows the controllers'
acks to done; a viewer sees no edit or push; a luminaire's page draws last night and its
inventory. Screenshots of the editor and of a device page are kept in the test's tmp dir."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from analytics.optimiser_job import OptimiserJob
from analytics.runner import Scheduled, run_once
from api.roles import Role
from ingest.writer import Writer
from luciole.db_roles import DbService
from tests.api.test_api_commands import Device, _ack
from tests.conftest import RunningStack
from tests.dashboard.conftest import Served
from tests.dashboard.test_dashboard import log_in, text_of, until
from wire.messages import CalendarCommand, parse_command
from wire.records import TIME_MIN_US

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _set(driver: WebDriver, element: object, value: str) -> None:
    """Set an input's value as a person would (date inputs ignore typed keys in some locales)."""
    driver.execute_script("arguments[0].value = arguments[1];"
                          " arguments[0].dispatchEvent(new Event('change'))", element, value)


def _click(driver: WebDriver, element_id: str) -> None:
    """Click the button as soon as it is there (found and clicked in one step: a re-render
    between the two cannot leave a stale element)."""
    until(driver, f"#{element_id}", lambda: driver.execute_script(
        "const el = document.getElementById(arguments[0]);"
        " if (!el || !el.checkVisibility()) return false; el.click(); return true", element_id))


def _shot(driver: WebDriver, tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.png"
    driver.save_screenshot(str(path))
    print(f"screenshot: {path}")  # noqa: T201 - the artefact's path, in the test's output


def test_energy_manager_builds_proposes_saves_and_pushes_a_calendar(
        page: WebDriver, served: Served, stack: RunningStack, tmp_path: Path) -> None:
    a = served.world.a
    devices = [Device(stack, a.tenant, controller) for controller in a.controllers]
    for device in devices:
        device.connect(first=True)
    try:
        log_in(page, served, a, Role.ENERGY_MANAGER)
        page.get(f"{served.url}/dashboard/#/schedules")
        _click(page, "new-calendar")
        until(page, "the blank calendar", lambda: text_of(page, "#schedule-editor h2") == "New calendar")
        _set(page, page.find_element(By.ID, "schedule-name"), "winter")
        _click(page, "add-special")
        row = until(page, "the special day's row",
                    lambda: page.find_element(By.CSS_SELECTOR, "#special-days tr.special"))
        _set(page, row.find_element(By.NAME, "special_name"), "christmas")
        _set(page, row.find_element(By.NAME, "special_first"), "2026-12-24")
        _set(page, row.find_element(By.NAME, "special_last"), "2026-12-26")
        _set(page, page.find_element(By.ID, "schedule-night"), "2026-12-25")
        _click(page, "preview")
        until(page, "the predicted energy", lambda: text_of(page, "#energy-compare .energy"))
        assert page.find_elements(By.CSS_SELECTOR, "#schedule-chart canvas"), "the curve is drawn"
        saved_text = text_of(page, "#energy-compare .saving")
        assert saved_text and not saved_text.startswith("0.00"), saved_text
        _click(page, "propose")
        until(page, "the proposal beside the calendar",
              lambda: len(page.find_elements(By.CSS_SELECTOR, "#energy-compare .energy")) == 2)
        savings = page.execute_script("return [...document.querySelectorAll("
                                      "'#energy-compare .saving')].map((e) => e.textContent)")
        assert not savings[1].startswith("0.00"), f"compared on a night of the proposal: {savings}"
        assert "class M" in page.execute_script(
            "return document.querySelector('#proposal-why li').textContent"), "the reasons shown"
        page.execute_script("document.getElementById('schedule-chart').scrollIntoView()")
        _shot(page, tmp_path, "schedule-editor")
        _click(page, "use-proposal")
        until(page, "the proposal in the editor",
              lambda: page.find_elements(By.CSS_SELECTOR, "fieldset[data-program^='plan-']"))
        _set(page, page.find_element(By.ID, "schedule-name"), "proposed")
        _click(page, "save-schedule")
        until(page, "saved", lambda: text_of(page, "#message").startswith("Saved proposed"))
        _click(page, "assign-schedule")
        until(page, "assigned", lambda: text_of(page, "#message").startswith("Assigned"))
        _click(page, "push-schedule")
        commands = [parse_command(device.expect()) for device in devices]
        assert all(isinstance(c, CalendarCommand) for c in commands)
        until(page, "each device sent", lambda: len(page.find_elements(
            By.CSS_SELECTOR, "#command-devices .status-sent")) == 2)
        writer = Writer(served.db_dsn)
        try:
            writer.write([_ack(a.tenant, device.controller, seq, command.id, status)
                          for device, command in zip(devices, commands, strict=True)
                          for seq, status in ((1, "accepted"), (2, "done"))],
                         now_us=max(int(time.time() * 1e6), TIME_MIN_US))
        finally:
            writer.close()
        until(page, "the push done", lambda: text_of(page, "#command-summary") == "2 of 2 done, 0 failed")
    finally:
        for device in devices:
            device.disconnect()


def test_a_viewer_sees_the_calendar_but_no_edit_or_push(page: WebDriver, served: Served) -> None:
    log_in(page, served, served.world.a, Role.VIEWER)
    page.get(f"{served.url}/dashboard/#/schedules")
    until(page, "the schedule shown", lambda: page.find_elements(By.CSS_SELECTOR, "fieldset.program"))
    for absent in ("new-calendar", "save-schedule", "assign-schedule", "push-schedule", "propose",
                   "add-special"):
        assert not page.find_elements(By.ID, absent), absent
    assert all(not e.is_enabled() for e in page.find_elements(By.CSS_SELECTOR, "fieldset.program input"))
    _click(page, "preview")  # seeing the night is allowed
    until(page, "the predicted energy", lambda: text_of(page, "#energy-compare .energy"))


def test_a_luminaire_page_draws_last_night_and_its_inventory(page: WebDriver, served: Served,
                                                               tmp_path: Path) -> None:
    a = served.world.a
    lum = a.luminaires[0]
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    with psycopg.connect(served.db_dsn, autocommit=True) as conn:
        conn.execute("UPDATE luminaires SET gtin = '08712345678906', serial = 'SN-4471' WHERE id = %s",
                     (lum,))
        key = conn.execute("SELECT key FROM controllers WHERE id = %s", (a.controllers[0],)).fetchone()[0]  # type: ignore[index]
        rows = [(now - timedelta(minutes=10 * i), key, 0, 254 if i % 12 else 120, 0,
                 40.0 if i % 12 else 20.0, 1000.0 + i, 230.0, 0.17, 0.95, 35.0, 0.0, 0, 0, 1, i)
                for i in range(6 * 48)]
        with conn.cursor().copy("COPY luminaire_telemetry FROM STDIN") as copy:
            for r in rows:
                copy.write_row(r)
    log_in(page, served, a, Role.VIEWER)
    page.get(f"{served.url}/dashboard/#/luminaire/{lum}")
    until(page, "the inventory", lambda: "08712345678906" in text_of(page, "#device-inventory"))
    assert "SN-4471" in text_of(page, "#device-inventory")
    assert "40 W" in text_of(page, "#device-inventory")
    until(page, "last night's curve", lambda: page.find_elements(By.CSS_SELECTOR, "#device-chart canvas"))
    assert not text_of(page, "#device-points").startswith("0 ")
    _shot(page, tmp_path, "luminaire-page")
    page.find_element(By.LINK_TEXT, a.controllers[0]).click()
    until(page, "the controller's page",
          lambda: text_of(page, "#page-device h2") == f"Controller {a.controllers[0]}")
    assert page.find_elements(By.CSS_SELECTOR, f"a[href='#/luminaire/{lum}']")


def test_the_schedules_page_follows_pushes_and_proposals_without_losing_an_edit(
        page: WebDriver, served: Served, stack: RunningStack) -> None:
    """Open, the page lists the schedule (never pushed) and no proposal; while a name is being
    typed in the editor, someone else assigns and pushes the schedule and the optimiser job
    stores a proposal: the page shows both by itself, then the push reaching done as the
    controllers' acks arrive, and the half-typed name is still there."""
    a = served.world.a
    devices = [Device(stack, a.tenant, controller) for controller in a.controllers]
    for device in devices:
        device.connect(first=True)
    try:
        log_in(page, served, a, Role.ENERGY_MANAGER)
        page.get(f"{served.url}/dashboard/#/schedules")
        row = f"#schedule-list li[data-schedule='{a.schedule}']"
        until(page, "the schedule listed, never pushed",
              lambda: "never pushed" in text_of(page, row))
        assert "No proposal yet" in text_of(page, "#schedule-proposals")
        name = until(page, "the editor", lambda: page.find_element(By.ID, "schedule-name"))
        name.clear()
        name.send_keys("half-typ")  # no change event yet: an edit in progress
        refreshes = page.execute_script("return window.lucioleSchedules.refreshes")
        # elsewhere: the group's lighting described, the schedule assigned and pushed, the job
        h = served.world.headers(a, Role.ENERGY_MANAGER)
        api = f"{served.url}/api/v1"
        assert httpx.put(f"{api}/groups/{a.group}/lighting", headers=h, json={
            "rated_class": "M4", "design_at_full": 1.2}).status_code == 200
        assert httpx.put(f"{api}/groups/{a.group}/schedule", headers=h,
                         json={"schedule_id": a.schedule}).status_code == 204
        pushed = httpx.post(f"{api}/schedules/{a.schedule}/push", headers=h, json={})
        assert pushed.status_code == 202, pushed.text
        commands = [parse_command(device.expect()) for device in devices]
        dbname = conninfo_to_dict(served.db_dsn)["dbname"]
        with psycopg.connect(stack.endpoints.service_dsn(DbService.JOBS, dbname),
                             autocommit=True) as conn:
            item = Scheduled(OptimiserJob(nights=3), every_s=60, settle_s=0, max_window_s=86_400)
            outcome = run_once(conn, item, ignore_schedule=True)
            assert outcome is not None and outcome.result.records >= 1  # the other town's too
        push = f"{row} .push"
        sent = until(page, "the push listed, on its way", lambda: page.execute_script(
            "const p = document.querySelector(arguments[0]); return p && p.dataset.total === '2'"
            " ? p.textContent : null", push), timeout_s=30)
        assert "0 of 2 done" in sent and f"group {a.group}" not in sent  # the group by name
        proposal = until(page, "the stored proposal listed", lambda: text_of(
            page, f"#schedule-proposals li[data-group='{a.group}']"), timeout_s=30)
        assert "predicted" in proposal and "saved (" in proposal and "% against full light" in proposal
        writer = Writer(served.db_dsn)
        try:
            writer.write([_ack(a.tenant, device.controller, seq, command.id, status)
                          for device, command in zip(devices, commands, strict=True)
                          for seq, status in ((1, "accepted"), (2, "done"))],
                         now_us=max(int(time.time() * 1e6), TIME_MIN_US))
        finally:
            writer.close()
        until(page, "the push done", lambda: page.execute_script(
            "const p = document.querySelector(arguments[0]); return p && p.dataset.done === '2'",
            push), timeout_s=30)
        assert page.execute_script("return window.lucioleSchedules.refreshes") > refreshes
        still = page.find_element(By.ID, "schedule-name")
        assert still.get_attribute("value") == "half-typ"
        assert page.execute_script("return document.activeElement.id") == "schedule-name"
    finally:
        for device in devices:
            device.disconnect()
