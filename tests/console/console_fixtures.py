"""Fixtures of the console tests, which import them: a local cloud with its console, shared by a
module's tests, and a headless Chromium to drive it.

The browser is Debian's `chromium` with its `chromium-driver` (.ci/run installs both), the driver named
by its path: nothing is downloaded. Without them the browser tests skip, with one line saying so, unless
AUTOTAG_REQUIRE_BROWSER=1 (CI sets it), when they fail instead."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import oss2
import pytest
from conftest import ROOT, LocalCloudProcess, local_cloud_process

CHROMEDRIVER = "/usr/bin/chromedriver"
RECORD_SECRET = "console-test-record-secret-5e1f"


@dataclass
class ConsoleCloud:
    cloud: LocalCloudProcess
    address: str  # http://127.0.0.1:<port>
    login_link: str  # one-time
    folder: Path

    @property
    def admin_token(self) -> str:
        found = re.search(r"admin token: ([^)\s;]+)", self.cloud.banner[0])
        assert found, self.cloud.banner[0]
        return found[1]

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        """One call of the local OSS's admin API (faults, clock), as docs/local-oss.md describes it."""
        import urllib.request

        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.cloud.oss_endpoint}/_admin/{path}", data=data, method=method)
        request.add_header("Authorization", f"Bearer {self.admin_token}")
        with urllib.request.urlopen(request, timeout=60) as answer:
            return json.loads(answer.read() or b"null")

    def bucket(self, name: str = "autotag-demo") -> oss2.Bucket:
        auth = oss2.Auth("local-access-key", "local-secret-key")
        return oss2.Bucket(auth, self.cloud.oss_endpoint, name)


@pytest.fixture(scope="module")
def console_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleCloud]:
    folder = tmp_path_factory.mktemp("console")
    env_vars = folder / "env.json"
    env_vars.write_text(json.dumps({"Parameters": {"AUTOTAG_RECORD_SECRET": RECORD_SECRET}}))
    with local_cloud_process(folder, ROOT / "template.yml", "--env-vars", str(env_vars)) as cloud:
        ready = cloud.line_containing("console ready at", 60)
        found = re.search(r"console ready at (http://127\.0\.0\.1:\d+) .* sign in once at (\S+)", ready)
        assert found, ready
        yield ConsoleCloud(cloud, found[1], found[2], folder)


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    binary = _chromium()
    if binary is None or not os.path.exists(CHROMEDRIVER):
        if os.environ.get("AUTOTAG_REQUIRE_BROWSER") == "1":
            pytest.fail("AUTOTAG_REQUIRE_BROWSER=1 but chromium or /usr/bin/chromedriver is missing")
        pytest.skip("no chromium and chromium-driver here (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


WAIT = 120  # seconds a page may take to show something: generous, the machine may be loaded; never a measure


@pytest.fixture(scope="module")
def signed_in(browser: Any, console_cloud: ConsoleCloud) -> Any:
    """The browser, signed in through the one-time login link (once per module)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(console_cloud.login_link)
    WebDriverWait(browser, WAIT).until(lambda d: d.find_elements(By.ID, "buckets"))
    return browser


def texts(driver: Any, css: str) -> list[str]:
    """The rendered text of each element `css` selects, read at once: a live update may replace them
    between two WebDriver calls."""
    script = "return Array.from(document.querySelectorAll(arguments[0])).map(e => e.innerText)"
    return [str(t) for t in driver.execute_script(script, css)]


def text(driver: Any, css: str) -> str:
    found = texts(driver, css)
    assert found, f"nothing matches {css}"
    return found[0]
