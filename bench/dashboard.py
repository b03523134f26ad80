"""Dashboard benchmark: the map with 100,000 luminaires of one municipality in headless Chromium
with software WebGL (SwiftShader: no GPU). Prints the time to the first rendered map and the p95
frame time while panning, against their floors (5 s, 50 ms), with the load average. The browser
test tests/dashboard/test_map_100k.py runs the same code on the session's stack and prints the
same line; this script runs it on a stack of its own:

    .venv/bin/python bench/dashboard.py [--luminaires 100000]

Last line: `dashboard: first map M ms (floor 5000), pan p95 P ms (floor 50), ...` with the same pan
drawn on every frame (with and without the points), a still map's frame p95 (the machine's
ceiling at that moment) and the load average."""

from __future__ import annotations

import sys
from pathlib import Path

_here = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _here]
sys.path.insert(0, str(_here.parent))

import json
import os
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg

from api.credentials import hash_password
from controller_fw_sim.fleet_inventory import Tenant, build_inventory
from luciole.seed import seed_inventory

FLOOR_FIRST_MAP_MS = 5000.0
FLOOR_PAN_P95_MS = 50.0
CITY = Tenant("bigcity", "Bigcity", 50.85, 4.35, 1.0)

# In the page, after navigation: resolves with performance.now() at the first idle map holding
# the luminaires (navigation start is 0), or an error string.
FIRST_MAP_JS = """
const done = arguments[arguments.length - 1];
const deadline = performance.now() + 120000;
(function poll() {
  const s = window.luciole;
  if (s && s.firstMapMs) return done({ms: s.firstMapMs, points: s.features.size, marks: s.marks});
  if (performance.now() > deadline) return done({error: 'no map within 120 s'});
  setTimeout(poll, 50);
})();
"""

# A scripted pan: map.panBy with animation, right then down then back, frames timed by
# requestAnimationFrame timestamps (each one a frame the compositor showed). `mode`: "shown" (the
# dashboard as it is: the drawn frame translated while the camera only pans), "redrawn" (every
# frame drawn again by MapLibre, 100,000 points included) or "bare" (every frame drawn, the
# points hidden: what any MapLibre frame costs on this machine). Also returns how many frames
# were drawn and how many only moved.
PAN_JS = """
const done = arguments[arguments.length - 1];
const mode = arguments[0];
const s = window.luciole;
const map = s.map;
const stamps = [];
let running = true;
function frame(t) { stamps.push(t); if (running) requestAnimationFrame(frame); }
requestAnimationFrame(frame);
const steps = [[400, 0], [0, 300], [-400, 0], [0, -300]];
s.panning.enabled = mode === 'shown';
if (mode === 'bare') map.setLayoutProperty('luminaires', 'visibility', 'none');
const [drawn, moved] = [s.panning.drawn, s.panning.moved];
let i = 0;
function next() {
  if (i === steps.length) {
    running = false;
    s.panning.enabled = true;
    if (mode === 'bare') map.setLayoutProperty('luminaires', 'visibility', 'visible');
    const d = stamps.slice(1).map((t, k) => t - stamps[k]);
    return done({frames: d, drawn: s.panning.drawn - drawn, moved: s.panning.moved - moved});
  }
  map.once('moveend', () => setTimeout(next, 0));
  map.panBy(steps[i++], {duration: 1000, easing: (x) => x});
}
next();
"""

# The machine's pace with nothing to draw: requestAnimationFrame intervals over 2 s of a still
# map (the ceiling of any frame time measured at that moment).
IDLE_JS = """
const done = arguments[arguments.length - 1];
const stamps = [];
const end = performance.now() + 2000;
function frame(t) {
  stamps.push(t);
  if (t < end) requestAnimationFrame(frame);
  else done({frames: stamps.slice(1).map((x, k) => x - stamps[k])});
}
requestAnimationFrame(frame);
"""

# Debian's Chromium as the browser tests and this bench run it: headless, software WebGL by
# SwiftShader, and the compositor in software as Chrome does by itself on a machine without a
# usable GPU (compositing through SwiftShader instead costs a whole-window GL frame per frame).
CHROMIUM_ARGS = ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900",
                 "--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--ignore-gpu-blocklist",
                 "--enable-webgl", "--disable-gpu-compositing")


@dataclass
class Figures:
    luminaires: int
    first_map_ms: float
    pan_p95_ms: float
    pan_median_ms: float
    pan_frames: int
    pan_frames_drawn: int  # of the pan's frames, how many MapLibre drew (the rest only moved)
    redrawn_pan_p95_ms: float | None  # the same pan with every frame drawn, 100,000 points included
    bare_pan_p95_ms: float | None  # the same pan drawn every frame with the points hidden
    idle_frame_p95_ms: float  # frames of a still map: this machine's ceiling at that moment
    marks: dict[str, float]  # ms since navigation: map style loaded, data parsed, layer added
    load_average: float
    floor_first_map_ms: float = FLOOR_FIRST_MAP_MS
    floor_pan_p95_ms: float = FLOOR_PAN_P95_MS

    def line(self) -> str:
        return (f"dashboard: first map {self.first_map_ms:.0f} ms (floor {self.floor_first_map_ms:.0f}), "
                f"pan p95 {self.pan_p95_ms:.1f} ms (floor {self.floor_pan_p95_ms:.0f}), "
                f"median {self.pan_median_ms:.1f} ms over {self.pan_frames} frames "
                f"({self.pan_frames_drawn} drawn); "
                + (f"every frame drawn: p95 {self.redrawn_pan_p95_ms:.1f} ms, without the points "
                   f"{self.bare_pan_p95_ms:.1f} ms; " if self.redrawn_pan_p95_ms is not None
                   and self.bare_pan_p95_ms is not None else "")
                + f"ceiling (a still map's frames) p95 {self.idle_frame_p95_ms:.1f} ms, "
                f"{self.luminaires:,} luminaires, load {self.load_average:.1f}; first map steps {self.marks}")


def seed_city(dsn: str, luminaires: int, email: str, password: str) -> int:
    """One municipality of `luminaires` luminaires (COPY through luciole.seed), their live state,
    and an operator who logs in with `email` and `password`. Returns the luminaire count."""
    inventory = build_inventory(luminaires // 4, 4, seed=7, tenants=(CITY,))
    seed_inventory(dsn, inventory)
    now = datetime.now(UTC)
    with psycopg.connect(dsn) as conn:
        conn.execute(
            "INSERT INTO luminaire_state (controller_key, luminaire, time, level, status, power_w,"
            " energy_wh, voltage_v, power_factor, driver_temp_c, failure)"
            " SELECT c.key, l.idx, %s, (l.id %% 3) * 127, 0, 31.5, 1000, 231, 0.95, 41, 0"
            " FROM luminaires l JOIN controllers c ON c.id = l.controller_id WHERE l.tenant_id = %s",
            (now, CITY.id))
        conn.execute("UPDATE controllers SET online = (key %% 50 <> 0), last_seen = %s"
                     " WHERE tenant_id = %s", (now, CITY.id))
        conn.execute("INSERT INTO users (tenant_id, email, role, password_hash) VALUES"
                     " (%s, %s, 'operator', %s)", (CITY.id, email, hash_password(password)))
        row = conn.execute("SELECT count(*) FROM luminaires WHERE tenant_id = %s", (CITY.id,)).fetchone()
        conn.commit()
    assert row is not None
    return int(row[0])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def measure(driver: Any, url: str, token: str, compare: bool = True) -> Figures:
    """Open the dashboard's map with `token` (a fresh page load), time it, then pan; `compare`:
    also pan with every frame drawn, with and without the points."""
    driver.set_script_timeout(180)
    driver.get(f"{url}/healthz")  # the origin, to hand the page its token
    driver.execute_script("sessionStorage.setItem('luciole.token', arguments[0])", token)
    driver.get("about:blank")
    driver.get(f"{url}/dashboard/#/map")
    first = driver.execute_async_script(FIRST_MAP_JS)
    if "error" in first:
        raise RuntimeError(first["error"])
    idle = [float(f) for f in driver.execute_async_script(IDLE_JS)["frames"]]
    shown = driver.execute_async_script(PAN_JS, "shown")
    frames = [float(f) for f in shown["frames"]]
    redrawn = [float(f) for f in driver.execute_async_script(PAN_JS, "redrawn")["frames"]] if compare else []
    bare = [float(f) for f in driver.execute_async_script(PAN_JS, "bare")["frames"]] if compare else []
    return Figures(luminaires=int(first["points"]), first_map_ms=float(first["ms"]),
                   pan_p95_ms=percentile(frames, 95), pan_median_ms=percentile(frames, 50),
                   pan_frames=len(frames), pan_frames_drawn=int(shown["drawn"]),
                   redrawn_pan_p95_ms=percentile(redrawn, 95) if compare else None,
                   bare_pan_p95_ms=percentile(bare, 95) if compare else None,
                   idle_frame_p95_ms=percentile(idle, 95),
                   marks={k: round(float(v)) for k, v in first["marks"].items()},
                   load_average=os.getloadavg()[0])


def write(figures: Figures, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**asdict(figures), "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                                time.gmtime())}, indent=2))


def main() -> None:
    import argparse
    import shutil
    import socket
    import tempfile
    import threading

    import httpx
    import uvicorn
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    from api.app import create_app
    from api.settings import ApiSettings, MqttAccount
    from luciole.broker_config import Role as BrokerRole
    from luciole.db_roles import DbService
    from luciole.migrate import migrate
    from luciole.settings import StackSettings
    from luciole.stack import Stack, wait_for

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--luminaires", type=int, default=100_000)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    email, password = "operator@bigcity.example", "a long password for the big city"
    with tempfile.TemporaryDirectory(prefix="bench-dashboard-") as tmp:
        stack = Stack(StackSettings(var_dir=Path(tmp) / "var", mqtt_port=0, pg_port=0, pg_fsync=False))
        endpoints = stack.up()
        server: uvicorn.Server | None = None
        thread: threading.Thread | None = None
        driver = None
        try:
            migrate(endpoints.dsn())
            t0 = time.perf_counter()
            n = seed_city(endpoints.dsn(), args.luminaires, email, password)
            print(f"seeded {n:,} luminaires by COPY in {time.perf_counter() - t0:.1f} s")
            username, mqtt_password = stack.service_account("api-bench", BrokerRole.API)
            settings = ApiSettings.model_validate(dict(
                dsn=endpoints.service_dsn(DbService.API), token_secret="bench-" + os.urandom(16).hex(),
                mqtt_host=endpoints.mqtt_host, mqtt_port=endpoints.mqtt_port,
                mqtt_accounts=[MqttAccount(username=username, password=mqtt_password)],
                run_dir=Path(tmp) / "run"))
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            url = f"http://127.0.0.1:{sock.getsockname()[1]}"
            server = uvicorn.Server(uvicorn.Config(create_app(settings), log_level="warning",
                                                   timeout_graceful_shutdown=3))
            thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
            thread.start()
            wait_for(lambda: httpx.get(f"{url}/healthz", timeout=2).status_code == 200, 30, "the API")
            issued = httpx.post(f"{url}/api/v1/auth/token", data={"username": email, "password": password})
            issued.raise_for_status()
            options = webdriver.ChromeOptions()
            options.binary_location = shutil.which("chromium") or "chromium"
            for arg in CHROMIUM_ARGS:
                options.add_argument(arg)
            driver = webdriver.Chrome(options=options,
                                      service=Service(shutil.which("chromedriver") or "chromedriver"))
            figures = measure(driver, url, issued.json()["access_token"])
            if args.json:
                write(figures, args.json)
            print(figures.line())
        finally:
            if driver is not None:
                driver.quit()
            if server is not None and thread is not None:
                server.should_exit = True
                thread.join(15)
            stack.down()


if __name__ == "__main__":
    main()
