"""The Functions page in a real browser (headless Chromium): the template's functions with triggers and
roles, a test event from a template invoked with its result, log lines and OSS requests, saved by name
and loaded again; and the expiry timer fired 8 days later on the local cloud's clock, the tag leaving."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlencode

from console_fixtures import WAIT, ConsoleCloud, browser, console_cloud, signed_in
from console_fixtures import text as _text
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

__all__ = ["browser", "console_cloud", "signed_in"]  # the fixtures, for the tests below


def _click_and_load(driver: Any, element_id: str) -> None:
    """Click a link or a form's button, and wait for the page it loads (not the old one)."""
    driver.execute_script("window.oldPage = true")
    driver.find_element(By.ID, element_id).click()
    WebDriverWait(driver, WAIT).until(lambda d: d.execute_script("return window.oldPage") is None)


def _tags(console: ConsoleCloud, key: str) -> dict[str, str]:
    return dict(console.bucket().get_object_tagging(key).tag_set.tagging_rule)


def _wait_for_tag(console: ConsoleCloud, key: str, tag: str, present: bool = True) -> None:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline and (tag in _tags(console, key)) != present:
        time.sleep(0.3)
    assert (tag in _tags(console, key)) == present


def test_the_functions_of_the_template_with_triggers_and_roles(
    signed_in: Any, console_cloud: ConsoleCloud
) -> None:
    signed_in.get(f"{console_cloud.address}/functions")
    upload = _text(signed_in, 'tr[data-name="tag-on-upload"]')
    assert "tag_on_upload.handler" in upload and "OSS" in upload and "acs:ram::" in upload, upload
    expiry = _text(signed_in, 'tr[data-name="tag-expiry"]')
    assert "Timer nightly-expiry" in expiry and '"buckets": ["autotag-demo"]' in expiry, expiry


def test_a_test_event_from_a_template_is_invoked_saved_and_loaded(
    signed_in: Any, console_cloud: ConsoleCloud
) -> None:
    console_cloud.bucket().put_object("uploads/example.jpg", b"x", headers={"Content-Type": "image/jpeg"})
    signed_in.get(f"{console_cloud.address}/function?name=tag-on-upload")
    for kind in ("eventbridge", "batch", "timer", "oss"):
        _click_and_load(signed_in, f"template-{kind}")
    event = signed_in.find_element(By.ID, "event").get_attribute("value")
    assert '"uploads/example.jpg"' in event and '"ObjectCreated:PutObject"' in event, event

    _click_and_load(signed_in, "invoke")
    WebDriverWait(signed_in, WAIT).until(lambda d: d.find_elements(By.ID, "answer"))
    assert _text(signed_in, "#outcome").startswith("returned"), _text(signed_in, "#outcome")
    assert '"key": "uploads/example.jpg"' in _text(signed_in, "#answer")
    assert "uploads/example.jpg" in _text(signed_in, "#log")
    assert "HeadObject" in _text(signed_in, "#requests"), _text(signed_in, "#requests")
    assert _tags(console_cloud, "uploads/example.jpg")["kind"] == "image"

    signed_in.find_element(By.ID, "event-name").send_keys("example upload")
    _click_and_load(signed_in, "save")
    WebDriverWait(signed_in, WAIT).until(lambda d: d.find_elements(By.ID, "flash"))
    assert "saved as example upload" in _text(signed_in, "#flash"), _text(signed_in, "main")
    signed_in.get(f"{console_cloud.address}/function?name=tag-on-upload")
    signed_in.execute_script("window.oldPage = true")
    signed_in.find_element(By.LINK_TEXT, "example upload").click()
    WebDriverWait(signed_in, WAIT).until(lambda d: d.execute_script("return window.oldPage") is None)
    assert '"uploads/example.jpg"' in signed_in.find_element(By.ID, "event").get_attribute("value")
    assert list(console_cloud.folder.glob("**/test-events.json")), "saved in the local cloud's folder"


def test_the_expiry_timer_fired_8_days_later_removes_the_expired_tag(
    signed_in: Any, console_cloud: ConsoleCloud
) -> None:
    key = "tmp/scratch.txt"
    console_cloud.bucket().put_object(key, b"x")
    _wait_for_tag(console_cloud, key, "lifecycle")
    try:
        signed_in.get(f"{console_cloud.address}/function?name=tag-expiry")
        offset = signed_in.find_element(By.ID, "offset")
        offset.clear()
        offset.send_keys("8d")
        _click_and_load(signed_in, "set-clock")
        WebDriverWait(signed_in, WAIT).until(lambda d: d.find_elements(By.ID, "flash"))
        assert "offset 8d" in _text(signed_in, "#clock") or "8d" in _text(signed_in, "#flash")
        _click_and_load(signed_in, "fire")
        WebDriverWait(signed_in, WAIT).until(lambda d: d.find_elements(By.ID, "answer"))
        assert "nightly-expiry fired at" in _text(signed_in, "#fired")
        answer = _text(signed_in, "#answer")
        # Past the schedule on the local cloud's clock, the local FC fires the timer by itself too: the two
        # sweeps share one lease, so the page's fire may find the scope held; the tag goes either way.
        assert '"tagsRemoved": 1' in answer or "another sweep holds this scope" in answer, answer
        _wait_for_tag(console_cloud, key, "lifecycle", present=False)  # before the clock goes back
    finally:
        console_cloud.admin("PUT", "clock", {"offset": "0"})
    assert "lifecycle" not in _tags(console_cloud, key)
    signed_in.get(f"{console_cloud.address}/object?{urlencode({'bucket': 'autotag-demo', 'key': key})}")
    WebDriverWait(signed_in, WAIT).until(lambda d: d.find_elements(By.ID, "metadata"))
    assert not signed_in.find_elements(By.CSS_SELECTOR, 'tr.tag[data-key="lifecycle"]')
