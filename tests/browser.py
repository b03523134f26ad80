"""Headless Chromium for the tests that look at the dashboard (tests/dashboard's session browser
and the demo's): Debian's chromium and chromium-driver (scripts/bootstrap.sh installs them;
missing, the test fails and says so), with bench/dashboard.py's flags: software WebGL and
compositing, 1280 x 900."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver

from bench.dashboard import CHROMIUM_ARGS


def _binary(*names: str) -> str:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    pytest.fail(f"{' or '.join(names)} is missing: scripts/bootstrap.sh installs Debian's chromium "
                "and chromium-driver, which the browser tests need", pytrace=False)


@contextmanager
def chromium() -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = _binary("chromium", "chromium-browser")
    for arg in CHROMIUM_ARGS:
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(_binary("chromedriver")))
    driver.set_script_timeout(20)
    try:
        yield driver
    finally:
        driver.quit()
