"""The energy page in headless Chromium on a night accounted by the real energy and settlement
jobs: the municipality's total on the page is the API's, the unit switch shows euros and CO2,
estimated buckets are marked; then the grid operator sees its supply points' energy and downloads the
settlement job's files, and no other page, and its session is renewed before the token expires."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from api.roles import Role
from tests.api.api_world import PASSWORD
from tests.api.energy_world import DAY, energy_night
from tests.conftest import RunningStack
from tests.dashboard.conftest import Served
from tests.dashboard.test_dashboard import log_in, text_of, until

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _period(driver: WebDriver, first: str, last: str) -> None:
    """Choose a custom period of local days [first, last] and show it."""
    driver.execute_script(
        "const f = document.getElementById('energy-form'); f.period.value = 'custom';"
        " f.period.dispatchEvent(new Event('change')); f.from.value = arguments[0];"
        " f.to.value = arguments[1]; f.requestSubmit()", first, last)


def _from_day(driver: WebDriver, day: str) -> str:
    """The `from=` the page sends for a period starting on a local day (the browser's zone)."""
    return "from=" + driver.execute_script(  # type: ignore[no-any-return]
        "const [y, m, d] = arguments[0].split('-').map(Number);"
        " return encodeURIComponent(new Date(y, m - 1, d).toISOString())", day)


def _shown(driver: WebDriver, path_part: str) -> dict[str, Any]:
    """The report the page shows once it has loaded one whose request holds `path_part`."""
    return until(driver, f"a report for {path_part}", lambda: driver.execute_script(  # type: ignore[no-any-return]
        "const p = window.lucioleEnergy; return p.shown && p.shown.includes(arguments[0])"
        " && document.getElementById('energy-total') ? {path: p.shown, report: p.report} : null",
        path_part))


def _total_in(driver: WebDriver, unit: str) -> str:
    text = text_of(driver, "#energy-total")
    return text if text.endswith(unit) else ""


def _number(text: str) -> float:
    return float(text.split(":")[1].split()[0])


def test_the_energy_page_for_a_municipality_then_for_the_grid_operator(
        page: WebDriver, served: Served, stack: RunningStack, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    a = served.world.a
    night = energy_night(stack, served.db_dsn, a)
    log_in(page, served, a, Role.ENERGY_MANAGER)
    page.get(f"{served.url}/dashboard/#/energy")
    until(page, "the energy page", lambda: page.find_element(By.ID, "energy-form").is_displayed())
    _period(page, DAY.isoformat(), "2026-11-21")
    shown = _shown(page, _from_day(page, DAY.isoformat()))
    token = page.execute_script("return sessionStorage.getItem('luciole.token')")
    api = httpx.get(f"{served.url}/api/v1{shown['path']}",
                    headers={"Authorization": f"Bearer {token}"}).json()
    assert api["energy_wh"] > 1000  # the night's four luminaires
    total = text_of(page, "#energy-total")
    assert total.endswith(" kWh") and _number(total) == round(api["energy_wh"] / 1000, 3)
    # estimated buckets: marked in the table, and a legend line in the chart
    estimated = [b for b in api["intervals"] if b["estimated"]]
    assert estimated and len(estimated) < len(api["intervals"])
    rows = page.find_elements(By.CSS_SELECTOR, "#energy-table tbody tr.estimated")
    assert len(rows) == len(estimated)
    assert all("estimated" in r.text for r in rows)
    assert "estimated" in text_of(page, "#energy-chart .u-legend")
    shot = tmp_path / "energy-page.png"
    page.save_screenshot(str(shot))
    with capsys.disabled():
        sys.stdout.write(f"\nenergy page screenshot: {shot}\n")
    # the unit switch: euros, the API's cost
    page.find_element(By.CSS_SELECTOR, "#energy-unit input[value=eur]").click()
    euros = until(page, "the total in euros", lambda: _total_in(page, " €"))
    assert _number(euros) == round(api["cost_eur"], 2) and api["cost_eur"] > 0
    page.find_element(By.CSS_SELECTOR, "#energy-unit input[value=co2]").click()
    co2 = until(page, "the total in CO2", lambda: _total_in(page, " kg CO₂e"))
    assert _number(co2) == round(api["co2_kg"], 3)
    assert night.day == DAY
    _the_grid_operator_sees_supply_points_energy_and_settlement_files(page, served)


def _the_grid_operator_sees_supply_points_energy_and_settlement_files(page: WebDriver,
                                                                     served: Served) -> None:
    """(On the same night: the jobs run once for both logins.)"""
    a = served.world.a
    page.find_element(By.ID, "logout").click()
    page.get(f"{served.url}/dashboard/")
    form = until(page, "the login form", lambda: page.find_element(By.ID, "login-form"))
    form.find_element(By.NAME, "username").send_keys("grid@dso.example")
    form.find_element(By.NAME, "password").send_keys(PASSWORD)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    until(page, "the grid operator's bar", lambda: text_of(page, "#who") == "grid operator · grid_operator")
    until(page, "the energy page", lambda: page.find_element(By.ID, "energy-form").is_displayed())
    visible = [a.text for a in page.find_elements(By.CSS_SELECTOR, "header nav a") if a.is_displayed()]
    assert visible == ["Energy"]
    options = until(page, "the supply points", lambda: page.execute_script(
        "return [...document.getElementById('energy-scope').options].map(o => o.value)"))
    assert options == [f"s:{served.world.a.ean}", f"s:{served.world.b.ean}"]
    _period(page, DAY.isoformat(), DAY.isoformat())
    shown = _shown(page, _from_day(page, DAY.isoformat()))
    assert f"/grid/supply-points/{a.ean}/energy?" in shown["path"]
    assert _number(text_of(page, "#energy-total")) > 1.0, shown
    links = until(page, "the settlement files", lambda: page.find_elements(
        By.CSS_SELECTOR, "#settlement-files a.download"))
    names = sorted(link.text for link in links)
    kinds = ("events", "faults", "inventory", "profile")
    assert names == sorted([f"Download {a.ean}_{DAY}_{k}_v1.csv" for k in kinds]
                           + [f"Download {a.ean}_2026-01-01_profile_v1.csv"])
    body = page.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        " window.lucioleEnergy.download({url: arguments[0], filename: 'x.csv'}, {save: false})"
        "   .then((b) => b.text()).then(done, (e) => done('failed: ' + e.message))",
        f"/api/v1/grid/settlement-files/{a.ean}_{DAY}_profile_v1")
    with psycopg.connect(served.db_dsn) as conn:
        stored = conn.execute("SELECT content FROM settlement_files WHERE ean = %s AND day = %s"
                              " AND kind = 'profile'", (a.ean, DAY)).fetchone()
    assert stored is not None and body == stored[0]
    page.get(f"{served.url}/dashboard/#/map")  # no other page for the grid operator
    until(page, "the way back to energy", lambda: page.execute_script("return location.hash") == "#/energy")
    assert not page.find_element(By.ID, "page-map").is_displayed()
    _the_grid_operators_session_is_renewed(page, served)


def _the_grid_operators_session_is_renewed(page: WebDriver, served: Served) -> None:
    """A minute and a second before expiry the page renews the grid operator's token in its own
    scope (POST /grid/auth/refresh), and the renewed token is the grid operator's again."""
    first = page.execute_script("return sessionStorage.getItem('luciole.token')")
    page.execute_script("sessionStorage.setItem('luciole.token.expires', String(Date.now() + 61000));"
                        " window.luciole.rearm()")
    renewed = until(page, "the renewed token", lambda: (lambda t: t if t != first else None)(
        page.execute_script("return sessionStorage.getItem('luciole.token')")), timeout_s=15)
    expires = page.execute_script("return Number(sessionStorage.getItem('luciole.token.expires'))"
                                  " - Date.now()")
    assert 800_000 < expires <= 900_000
    bearer = {"Authorization": f"Bearer {renewed}"}
    assert httpx.get(f"{served.url}/api/v1/grid/supply-points", headers=bearer).status_code == 200
    assert httpx.get(f"{served.url}/api/v1/me", headers=bearer).status_code == 403
    assert page.find_element(By.ID, "bar").is_displayed()
    assert text_of(page, "#who") == "grid operator · grid_operator"
