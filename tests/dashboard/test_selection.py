"""The map's selection and urban sensors in headless Chromium against the real app, database and
broker: an operator selects a group, then draws a lasso around three of six luminaires, sends a
command to the selection and watches each device reach done from the controllers' acks; the
sensors layer is toggled on and a sensor's popup shows its latest readings; a viewer selects a
group and gets no command form. The lasso's point-in-polygon is checked against its plain reference and
timed over 100,000 points in the page."""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select

from api.roles import Role
from ingest.writer import Writer
from tests.conftest import RunningStack
from tests.dashboard.conftest import Served
from tests.dashboard.test_dashboard import log_in, map_features, text_of, until
from tests.devices import Device
from tests.devices import ack as _ack
from tests.sensor_rows import store_readings
from wire.messages import LuminaireTarget, SetLevel, parse_command
from wire.records import TIME_MIN_US, Quantity

pytestmark = [pytest.mark.integration, pytest.mark.slow]

STEP = 0.002  # degrees between luminaires: hundreds of pixels once the map fits them


def _spread(served: Served) -> dict[tuple[int, int], int]:
    """Tenant A's luminaires on a 3 x 2 grid (a third luminaire added to each controller):
    (column, row) -> luminaire id; controller 0 on row 0, controller 1 on row 1. A sensor box on
    controller 1 with two readings of noise and one of NO2."""
    a = served.world.a
    grid: dict[tuple[int, int], int] = {}
    with psycopg.connect(served.db_dsn, autocommit=True) as conn:
        for row, controller in enumerate(a.controllers):
            for column in range(3):
                lat, lon = 50.8 + row * STEP, 4.3 + column * STEP
                found = conn.execute(
                    "INSERT INTO luminaires (tenant_id, controller_id, idx, model, rated_power_w, lat, lon)"
                    " VALUES (%s, %s, %s, 'LX', 40, %s, %s) ON CONFLICT (controller_id, idx) DO UPDATE"
                    " SET lat = excluded.lat, lon = excluded.lon RETURNING id",
                    (a.tenant, controller, column, lat, lon)).fetchone()
                assert found is not None
                grid[(column, row)] = int(found[0])
        conn.execute("UPDATE controllers SET lat = %s, lon = %s WHERE id = %s",
                     (50.8 + STEP / 2, 4.3 + STEP * 1.5, a.controllers[1]))  # between the rows
    now = datetime.now(UTC)
    store_readings(served.db_dsn, [
        (a.controllers[1], 32, int(quantity), value, now - timedelta(minutes=minutes))
        for quantity, value, minutes in ((Quantity.NOISE_DBA, 48.0, 12), (Quantity.NOISE_DBA, 57.5, 2),
                                         (Quantity.NO2_UGM3, 31.0, 2))])
    return grid


def _screen(page: WebDriver, luminaire: int) -> tuple[float, float]:
    x, y = page.execute_script("const s = window.luciole; const p = s.map.project("
                               "s.features.get(arguments[0]).geometry.coordinates); return [p.x, p.y]",
                               luminaire)
    return float(x), float(y)


def _draw_lasso(page: WebDriver, around: list[tuple[float, float]], margin: float = 40.0) -> None:
    """Press the lasso button and drag the pointer around the screen points (map pixels), their
    triangle pushed `margin` pixels out from its centre, with steps between the corners."""
    page.find_element(By.ID, "lasso").click()
    until(page, "the lasso overlay", lambda: page.execute_script(
        "return getComputedStyle(document.getElementById('lasso-overlay')).display") != "none")
    overlay = page.find_element(By.ID, "map")  # the overlay covers it (chromedriver cannot aim at an <svg>)
    cx = sum(p[0] for p in around) / len(around)
    cy = sum(p[1] for p in around) / len(around)
    corners = []
    for x, y in around:
        d = max(((x - cx) ** 2 + (y - cy) ** 2) ** 0.5, 1.0)
        corners.append((x + (x - cx) / d * margin, y + (y - cy) / d * margin))
    width, height = overlay.size["width"], overlay.size["height"]
    path = []
    for (x0, y0), (x1, y1) in zip(corners, corners[1:] + corners[:1], strict=True):
        path += [(x0 + (x1 - x0) * t / 4, y0 + (y1 - y0) * t / 4) for t in range(4)]
    path.append(corners[0])
    chain = ActionChains(page, duration=20)
    chain.move_to_element_with_offset(overlay, int(path[0][0] - width / 2), int(path[0][1] - height / 2))
    chain.click_and_hold()
    for (x0, y0), (x1, y1) in zip(path, path[1:], strict=False):
        chain.move_by_offset(int(round(x1)) - int(round(x0)), int(round(y1)) - int(round(y0)))
    chain.release().perform()


def _rows(page: WebDriver) -> list[tuple[str, str, str]]:
    return [tuple(page.execute_script(  # type: ignore[misc]
        "return Array.from(arguments[0].cells, (c) => c.innerText)", row))
        for row in page.find_elements(By.CSS_SELECTOR, "#command-devices tbody tr")]


def test_lasso_a_selection_command_it_and_see_the_sensors(page: WebDriver, served: Served,
                                                          stack: RunningStack, artifacts: Path) -> None:
    a = served.world.a
    started = time.monotonic()
    phases: dict[str, float] = {}  # seconds since the test began, at the end of each phase

    def mark(name: str) -> None:
        phases[name] = round(time.monotonic() - started, 1)

    grid = _spread(served)
    devices = [Device(stack, a.tenant, controller) for controller in a.controllers]
    for device in devices:
        device.connect(first=True)
    try:
        log_in(page, served, a, Role.OPERATOR)
        assert until(page, "the six luminaires on the map", lambda: map_features(page)) == 6
        mark("logged in, map drawn")
        # one map, one lasso overlay (a login routes twice: both wait for the same map)
        assert page.execute_script("return document.querySelectorAll('#map canvas.maplibregl-canvas').length"
                                   " + document.querySelectorAll('#lasso-overlay').length") == 2

        # select the group (A's four original luminaires), then clear
        until(page, "the groups to select",
              lambda: Select(page.find_element(By.ID, "selection-group")).options)
        Select(page.find_element(By.ID, "selection-group")).select_by_value(str(a.group))
        page.find_element(By.ID, "select-group").click()
        until(page, "the group selected", lambda: text_of(page, "#selection-count")
              == "Group main: 4 luminaire(s), 4 on the map")
        assert sorted(page.execute_script("return window.luciole.selection.selected")) == sorted(a.luminaires)
        assert page.execute_script("return window.luciole.selection.target()") == {"group": a.group}
        page.find_element(By.ID, "selection-clear").click()
        mark("group selected")
        assert page.execute_script("return window.luciole.selection.selected") == []

        # a lasso around columns 1-2 of row 0 and column 1 of row 1
        wanted = [grid[(1, 0)], grid[(2, 0)], grid[(1, 1)]]
        _draw_lasso(page, [_screen(page, i) for i in wanted])
        chosen = until(page, "the lasso's selection",
                       lambda: page.execute_script("return window.luciole.selection.selected"))
        assert sorted(chosen) == sorted(wanted)
        assert text_of(page, "#selection-count") == "3 luminaire(s) selected"
        assert all(str(i) in text_of(page, "#selection-ids") for i in wanted)
        # the selection is ringed on the map: three rendered features of the selection layer
        ringed = until(page, "the rings drawn", lambda: page.execute_script(
            "const m = window.luciole.map; return m.loaded() &&"
            " m.queryRenderedFeatures({layers: ['selection']}).length"))
        assert ringed == 3
        assert page.save_screenshot(str(artifacts / "selection.png"))
        mark("lassoed")

        # the command form sends to the selection: controller 0 gets one command per chosen
        # luminaire (two of its three), controller 1 one for its second luminaire
        form = page.find_element(By.ID, "selection-command")
        level = form.find_element(By.NAME, "level")
        level.clear()
        level.send_keys("60")
        page.find_element(By.ID, "send-selection").click()
        first = [parse_command(devices[0].expect()), parse_command(devices[0].expect())]
        second = [parse_command(devices[1].expect())]
        assert all(isinstance(c, SetLevel) and c.level == 60 for c in first + second)
        assert sorted(str(c.target) for c in first) == sorted(
            str(LuminaireTarget(luminaire=i)) for i in (1, 2))
        assert second[0].target == LuminaireTarget(luminaire=1)
        until(page, "three devices sent", lambda: (lambda r: len(r) == 3 and {s for _, _, s, *_ in r}
                                                    == {"sent"})(_rows(page)))
        assert text_of(page, "#command-progress h2") == "set level 60 → 3 selected luminaire(s)"
        mark("commands received and sent")
        writer = Writer(served.db_dsn)
        try:
            now_us = max(int(time.time() * 1e6), TIME_MIN_US)
            acks = [(device, command) for device, commands in zip(devices, (first, second), strict=True)
                    for command in commands]
            writer.write([_ack(a.tenant, device.controller, 10 * n + seq, command.id, status)
                          for n, (device, command) in enumerate(acks)
                          for seq, status in ((1, "accepted"), (2, "done"))], now_us=now_us)
        finally:
            writer.close()
        done = until(page, "each device done", lambda: (lambda r: r if len(r) == 3 and {
            s for _, _, s, *_ in r} == {"done"} else None)(_rows(page)))
        assert sorted((c, int(lum)) for c, lum, *_ in done) == sorted(
            [(a.controllers[0], grid[(1, 0)]), (a.controllers[0], grid[(2, 0)]),
             (a.controllers[1], grid[(1, 1)])])
        assert text_of(page, "#command-summary") == "3 of 3 done, 0 failed"
        assert page.save_screenshot(str(artifacts / "selection-commands.png"))
        mark("each device done")
    finally:
        for device in devices:
            device.disconnect()

    # the urban sensors layer: off at first, toggled on, one diamond; its popup has the readings
    page.get(f"{served.url}/dashboard/#/map")
    until(page, "the map again", lambda: map_features(page))
    assert not page.execute_script("return !!window.luciole.map.getLayer('sensors')")
    # a selection past the API's bound is not offered to send (nor ringed)
    page.execute_script("window.luciole.selection.set(Array.from({length: 10001}, (_, i) => i + 1))")
    panel = text_of(page, "#selection")
    assert "At most 10000 luminaires per command" in panel and "not ringed on the map" in panel
    assert not page.find_elements(By.ID, "selection-command")
    page.find_element(By.ID, "selection-clear").click()
    page.find_element(By.ID, "toggle-sensors").click()
    drawn = until(page, "the sensor drawn", lambda: page.execute_script(
        "const m = window.luciole.map; return m.getLayer('sensors') && m.loaded() &&"
        " m.queryRenderedFeatures({layers: ['sensors']}).length"))
    assert drawn == 1
    x, y = page.execute_script("const s = window.luciole.sensors.located[0];"
                               " const p = window.luciole.map.project([s.lon, s.lat]); return [p.x, p.y]")
    canvas = page.find_element(By.CSS_SELECTOR, "#map canvas.maplibregl-canvas")
    ActionChains(page).move_to_element_with_offset(
        canvas, int(x - canvas.size["width"] / 2), int(y - canvas.size["height"] / 2)).click().perform()
    popup = until(page, "the sensor's popup", lambda: text_of(page, ".sensor-popup"))
    assert f"Sensor 32 on {a.controllers[1]}" in popup
    assert "noise" in popup and "57.5 dB(A)" in popup and "no2" in popup and "31 µg/m³" in popup
    assert page.save_screenshot(str(artifacts / "sensors.png"))
    mark("sensors shown")
    page.find_element(By.ID, "toggle-sensors").click()
    assert page.execute_script(
        "return window.luciole.map.getLayoutProperty('sensors', 'visibility')") == "none"

    # the lasso's kernel agrees with its plain reference, and is timed over 100,000 points
    figures = page.execute_async_script(LASSO_CHECK)
    assert figures["disagreements"] == 0 and figures["checked"] == 20000
    bench = figures["bench"]
    assert bench["points"] == 100000 and 0 < bench["inside"] < 100000
    sys.stdout.write(f"\nlasso: point-in-polygon over {bench['points']} points and a"
                     f" {bench['vertices']}-vertex polygon {bench['best_ms']:.1f} ms (best of 20; one"
                     f" bounding-box pass over the same typed arrays {bench['bbox_pass_ms']:.1f} ms)\n")
    mark("lasso kernel checked and timed")

    # a viewer selects too, but gets no command form (a token issued by the app's secret: the login
    # form itself is the operator's above)
    page.execute_script("sessionStorage.clear(); sessionStorage.setItem('luciole.token', arguments[0])",
                        served.world.token(a, Role.VIEWER))
    page.refresh()
    until(page, "the viewer's map", lambda: map_features(page))
    assert text_of(page, "#who") == f"{a.tenant} · viewer"
    until(page, "the groups to select", lambda: Select(page.find_element(By.ID, "selection-group")).options)
    page.find_element(By.ID, "select-group").click()
    until(page, "the viewer's selection", lambda: text_of(page, "#selection-count")
          == "Group main: 4 luminaire(s), 4 on the map")
    assert not page.find_elements(By.ID, "selection-command")
    assert not page.find_elements(By.ID, "send-selection")
    mark("viewer")
    sys.stdout.write(f"selection test phases (s): {phases}\n")
    (artifacts / "selection.json").write_text(json.dumps({**figures, "phases_s": phases}, indent=2))


LASSO_CHECK = """
const done = arguments[arguments.length - 1];
Promise.all([import(new URL('lasso.js', location.href)), import(new URL('selection.js', location.href))])
  .then(([lasso, selection]) => {
    let seed = 7;
    const rand = () => { seed = (seed * 16807) % 2147483647; return seed / 2147483647; };
    const n = 20000;
    const xs = new Float64Array(n); const ys = new Float64Array(n);
    for (let i = 0; i < n; i++) { xs[i] = rand(); ys[i] = rand(); }
    const vertices = [];
    for (let k = 0; k < 40; k++) {  // a ragged star, concave: the hard case for a lasso
      const a = (2 * Math.PI * k) / 40; const r = 0.15 + 0.3 * rand();
      vertices.push([0.5 + r * Math.cos(a), 0.5 + r * Math.sin(a)]);
    }
    vertices.push([vertices[39][0] + 0.02, vertices[39][1]]);  // and a horizontal edge
    for (let i = 0; i < n; i += 10) ys[i] = vertices[i % vertices.length][1];  // points at vertex heights
    const found = new Set(lasso.pointsInPolygon(xs, ys, Float64Array.from(vertices.flat())));
    let disagreements = 0;
    for (let i = 0; i < n; i++) {
      if (found.has(i) !== lasso.insidePlain([xs[i], ys[i]], vertices)) disagreements++;
    }
    done({ checked: n, inside: found.size, disagreements, bench: selection.benchLasso(100000) });
  }).catch((e) => done({ error: String(e) }));
"""
