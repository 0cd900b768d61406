"""The console in a real browser (headless Chromium): signing in with the one-time link, hostile keys
shown as text, tags appearing live as the upload function writes them, "Tag again", and the live list of
invocations with one opened."""

from __future__ import annotations

import time
from typing import Any

import pytest
from console_fixtures import WAIT, ConsoleCloud, browser, console_cloud, signed_in
from console_fixtures import text as _text
from console_fixtures import texts as _texts
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

__all__ = ["browser", "console_cloud", "signed_in"]  # the fixtures, for the tests below

HOSTILE = "<img src=x onerror=alert(1)>"
CONTROL = "ctl/a\x1bb\rc\u202ed.txt"


def _no_alert(driver: Any) -> None:
    with pytest.raises(NoAlertPresentException):
        driver.switch_to.alert.text  # noqa: B018 - reading it is the check


def _object_url(console: ConsoleCloud, key: str) -> str:
    from urllib.parse import urlencode

    return f"{console.address}/object?{urlencode({'bucket': 'autotag-demo', 'key': key})}"


def test_the_login_link_opens_the_console_and_a_second_browser_is_refused(
    signed_in: Any, console_cloud: ConsoleCloud
) -> None:
    assert "autotag-demo" in signed_in.find_element(By.ID, "buckets").text
    assert signed_in.get_cookie("autotag_console")["httpOnly"] is True
    assert signed_in.get_cookie("autotag_console")["sameSite"] == "Strict"
    assert signed_in.execute_script("return document.cookie") == "", "the session is not readable by scripts"


def test_hostile_keys_and_metadata_are_shown_as_text(signed_in: Any, console_cloud: ConsoleCloud) -> None:
    bucket = console_cloud.bucket()
    bucket.put_object(HOSTILE, b"x", headers={"x-oss-meta-note": "<script>alert(2)</script>"})
    bucket.put_object(CONTROL, b"x")
    signed_in.get(f"{console_cloud.address}/bucket?name=autotag-demo")
    assert HOSTILE in _texts(signed_in, "#objects a")
    assert not signed_in.find_elements(By.CSS_SELECTOR, "main img"), "no element was injected"
    _no_alert(signed_in)

    links = "return Array.from(document.querySelectorAll('#objects a'))"
    href = signed_in.execute_script(f"{links}.find(a => a.innerText === arguments[0]).href", HOSTILE)
    signed_in.get(href)
    WebDriverWait(signed_in, WAIT).until(lambda d: d.find_elements(By.ID, "metadata"))
    assert _text(signed_in, "#key") == HOSTILE
    assert "<script>alert(2)</script>" in _text(signed_in, "#metadata")
    assert not signed_in.find_elements(By.CSS_SELECTOR, "main img, main script")
    _no_alert(signed_in)

    signed_in.get(_object_url(console_cloud, CONTROL))
    WebDriverWait(signed_in, WAIT).until(lambda d: d.find_elements(By.ID, "metadata"))
    # each control character and the bidi override visible as an escape, the text in one line
    assert _text(signed_in, "#key") == "ctl/a\\x1bb\\rc\\u202ed.txt"
    signed_in.get(f"{console_cloud.address}/bucket?name=autotag-demo&prefix=ctl/")
    assert "a\\x1bb\\rc\\u202ed.txt" in _texts(signed_in, "#objects a")
    _no_alert(signed_in)


def test_tags_appear_live_as_the_upload_function_writes_them(
    signed_in: Any, console_cloud: ConsoleCloud
) -> None:
    key = "live/photo.jpg"
    signed_in.get(_object_url(console_cloud, key))
    assert signed_in.find_element(By.ID, "missing").is_displayed()
    signed_in.execute_script("window.notReloaded = true")
    console_cloud.bucket().put_object(key, b"x" * 10, headers={"Content-Type": "image/jpeg"})
    WebDriverWait(signed_in, WAIT).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, 'tr.tag.system[data-key="kind"]')
    )
    assert signed_in.execute_script("return window.notReloaded") is True, "the page was not reloaded"
    row = _text(signed_in, 'tr.tag.system[data-key="kind"]')
    assert "image" in row and "the system's" in row and "file-kind" in row, row
    assert _text(signed_in, "#plan-outcome").startswith("unchanged")


def test_tag_again_runs_the_upload_function_for_the_object(
    signed_in: Any, console_cloud: ConsoleCloud
) -> None:
    key = "again/photo.jpg"
    bucket = console_cloud.bucket()
    bucket.put_object(key, b"x", headers={"Content-Type": "image/jpeg", "x-oss-tagging": "team=blue"})
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline and "kind" not in bucket.get_object_tagging(key).tag_set.tagging_rule:
        time.sleep(0.2)
    bucket.put_object_tagging(key, _tagging({"team": "blue"}))  # the system's tags gone, someone's kept
    signed_in.get(_object_url(console_cloud, key))
    WebDriverWait(signed_in, WAIT).until(lambda d: d.find_elements(By.ID, "plan-outcome"))
    assert _text(signed_in, "#plan-outcome").startswith("planned")
    assert "+ kind=image" in _text(signed_in, "#plan")
    assert "someone else's" in _text(signed_in, 'tr.tag[data-key="team"]')

    signed_in.find_element(By.ID, "tag-again").click()
    WebDriverWait(signed_in, WAIT).until(lambda d: d.find_elements(By.ID, "flash"))
    assert "Tag again: tag-on-upload ran" in _text(signed_in, "#flash")
    WebDriverWait(signed_in, WAIT).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, 'tr.tag.system[data-key="kind"]')
    )
    assert "someone else's" in _text(signed_in, 'tr.tag[data-key="team"]')
    assert bucket.get_object_tagging(key).tag_set.tagging_rule["team"] == "blue"


def test_invocations_arrive_live_and_open(signed_in: Any, console_cloud: ConsoleCloud) -> None:
    signed_in.get(f"{console_cloud.address}/invocations?function=tag-on-upload")
    signed_in.execute_script("window.notReloaded = true")
    key = "invocations/new-one.jpg"
    console_cloud.bucket().put_object(key, b"x", headers={"Content-Type": "image/jpeg"})
    row = (By.XPATH, f'//tbody[@id="invocations"]/tr[contains(., "{key}")]')
    WebDriverWait(signed_in, WAIT).until(lambda d: d.find_elements(*row))
    assert signed_in.execute_script("return window.notReloaded") is True
    assert "ok" in signed_in.find_element(*row).text
    signed_in.find_element(*row).find_element(By.TAG_NAME, "a").click()
    WebDriverWait(signed_in, WAIT).until(lambda d: d.find_elements(By.ID, "event"))
    assert key in _text(signed_in, "#event")
    assert '"outcome": "tagged"' in _text(signed_in, "#result")

    signed_in.get(f"{console_cloud.address}/invocations?outcome=failed")
    assert not signed_in.find_elements(By.CSS_SELECTOR, "tr.invocation.ok")


def _tagging(tags: dict[str, str]) -> Any:
    import oss2

    rules = oss2.models.TaggingRule()
    for name, value in tags.items():
        rules.add(name, value)
    return oss2.models.Tagging(rules)
