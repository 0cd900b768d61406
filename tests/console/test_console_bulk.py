"""The Bulk work page in a real browser (headless Chromium): backfill runs (CloudFlow executions of the
template's flows) with progress and counts, one cancelled from the page (StopExecution); and the sweep's
passes with the counts each reports."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any

from console_fixtures import WAIT, ConsoleCloud, browser, console_cloud, signed_in
from console_fixtures import text as _text
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from autotag_cli.backfill_cloud import PREFIX_FLOW, plan_execution, start
from deployer.flows import cloudflow_client

__all__ = ["browser", "console_cloud", "signed_in"]  # the fixtures, for the tests below

REPORT = "oss://autotag-demo-state/backfill/reports"


def _start(console: ConsoleCloud, prefix: str, count: int) -> str:
    bucket = console.bucket()
    for n in range(count):
        bucket.put_object(f"{prefix}{n:03}.jpg", b"x")
    keys = ("local-access-key", "local-secret-key")
    client = cloudflow_client(console.cloud.cloudflow_endpoint, "cn-hangzhou", *keys)
    flow, given = plan_execution("autotag-demo", prefix, None, None, REPORT, 2, 0.0)
    assert flow == PREFIX_FLOW
    return start(client, flow, given, datetime.now(timezone.utc)).execution


def _row(driver: Any, console: ConsoleCloud, execution: str, until: str) -> str:
    deadline = time.monotonic() + WAIT
    text = ""
    while time.monotonic() < deadline:
        driver.get(f"{console.address}/bulk")
        rows = driver.find_elements(By.CSS_SELECTOR, f'tr.run[data-execution="{execution}"]')
        text = rows[0].text if rows else ""
        if until in text:
            return text
        time.sleep(1)
    raise AssertionError(f"{execution}: {text!r} never showed {until!r}")


def test_a_backfill_run_shows_its_progress_and_counts(signed_in: Any, console_cloud: ConsoleCloud) -> None:
    execution = _start(console_cloud, "bulk/done/", 3)
    row = _row(signed_in, console_cloud, execution, "Succeeded")
    assert f"{PREFIX_FLOW}/{execution}" in row and "3 of 3 read: 3 done, 0 failed" in row, row


def test_a_running_backfill_is_cancelled_from_the_page(signed_in: Any, console_cloud: ConsoleCloud) -> None:
    console_cloud.admin("PUT", "conditions", {"latency_ms": 400})  # a run long enough to cancel
    try:
        execution = _start(console_cloud, "bulk/cancel/", 30)
        _row(signed_in, console_cloud, execution, "Running")
        signed_in.find_element(By.CSS_SELECTOR, f'tr.run[data-execution="{execution}"] button.cancel').click()
        WebDriverWait(signed_in, WAIT).until(lambda d: d.find_elements(By.ID, "flash"))
        assert f"cancelled {PREFIX_FLOW}/{execution}" in _text(signed_in, "#flash")
    finally:
        console_cloud.admin("PUT", "conditions", {"latency_ms": 0})
    row = _row(signed_in, console_cloud, execution, "Stopped")
    assert "Cancel" not in row


def test_sweep_passes_show_their_counts(signed_in: Any, console_cloud: ConsoleCloud) -> None:
    signed_in.get(f"{console_cloud.address}/function?name=tag-expiry")
    signed_in.find_element(By.ID, "fire").click()
    WebDriverWait(signed_in, WAIT).until(lambda d: d.find_elements(By.ID, "answer"))
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        signed_in.get(f"{console_cloud.address}/bulk")
        if signed_in.find_elements(By.CSS_SELECTOR, "tr.pass"):
            break
        time.sleep(1)
    row = _text(signed_in, "tr.pass")
    assert "tag-expiry" in row and "autotag-demo:" in row, row
