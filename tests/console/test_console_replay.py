"""The console's replays in a real browser (headless Chromium): an upload that fails until it is
dead-lettered, replayed from the Dead letters page until it succeeds and its letter leaves; a letter whose
replay fails again stays, with its new reason; and an invocation replayed from its page, marked as a
replay of the original."""

from __future__ import annotations

import json
import time
from typing import Any

from console_fixtures import WAIT, ConsoleCloud, browser, console_cloud, signed_in
from console_fixtures import texts as _texts
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

__all__ = ["browser", "console_cloud", "signed_in"]  # the fixtures, for the tests below

FAULTS = {"faults": [{"kind": "throttle", "rate": 1.0, "apis": ["HeadObject", "GetObjectTagging"]}]}


def _click_and_load(driver: Any, element_id: str) -> None:
    """Click a button that submits a form, and wait for the page it loads (not the old one, whose flash
    may still be there)."""
    driver.execute_script("window.oldPage = true")
    driver.find_element(By.ID, element_id).click()
    WebDriverWait(driver, WAIT).until(lambda d: d.execute_script("return window.oldPage") is None)


def _letter_rows(driver: Any, console: ConsoleCloud, key: str) -> list[Any]:
    driver.get(f"{console.address}/dead-letters")
    return driver.find_elements(By.XPATH, f'//tbody[@id="letters"]/tr[contains(., "{key}")]')


def _dead_lettered(driver: Any, console: ConsoleCloud, key: str) -> Any:
    """Upload `key` while OSS throttles every read the upload function makes, until its letter shows."""
    console.admin("PUT", "conditions", FAULTS)
    try:
        console.bucket().put_object(key, b"x", headers={"Content-Type": "image/jpeg"})
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline and not _letter_rows(driver, console, key):
            time.sleep(1)
    finally:
        console.admin("PUT", "conditions", {"faults": []})
    rows = _letter_rows(driver, console, key)
    assert rows, f"no dead letter for {key} on the page"
    return rows[0]


def test_a_dead_lettered_upload_is_replayed_from_the_console_and_its_letter_leaves(
    signed_in: Any, console_cloud: ConsoleCloud
) -> None:
    key = "letters/photo.jpg"
    row = _dead_lettered(signed_in, console_cloud, key)
    assert "tag-on-upload" in row.text
    assert int(row.find_element(By.CLASS_NAME, "attempts").text) >= 1
    assert row.find_element(By.CLASS_NAME, "reason").text.strip(), "the letter says why it failed"
    assert "kind" not in console_cloud.bucket().get_object_tagging(key).tag_set.tagging_rule

    row.find_element(By.CSS_SELECTOR, 'input[type="checkbox"]').click()
    _click_and_load(signed_in, "replay-picked")
    flash = _texts(signed_in, "#flash")[0]
    assert "tag-on-upload" in flash and key in flash and "replayed (" in flash, flash
    assert not signed_in.find_elements(By.XPATH, f'//tbody[@id="letters"]/tr[contains(., "{key}")]')
    assert console_cloud.bucket().get_object_tagging(key).tag_set.tagging_rule["kind"] == "image"
    letters = (console_cloud.folder / "dl.jsonl").read_text()
    assert key not in letters, "the letter left the store"


def test_a_letter_whose_replay_fails_again_stays_with_its_new_reason(
    signed_in: Any, console_cloud: ConsoleCloud
) -> None:
    key = "letters/again.jpg"
    _dead_lettered(signed_in, console_cloud, key)
    console_cloud.admin("PUT", "conditions", FAULTS)
    try:
        _click_and_load(signed_in, "replay-all")
    finally:
        console_cloud.admin("PUT", "conditions", {"faults": []})
    flash = _texts(signed_in, "#flash")[0]
    assert "failed again" in flash or "not done" in flash, flash
    rows = signed_in.find_elements(By.XPATH, f'//tbody[@id="letters"]/tr[contains(., "{key}")]')
    assert rows, "the letter stays"
    assert key in (console_cloud.folder / "dl.jsonl").read_text()

    _click_and_load(signed_in, "replay-all")  # OSS answers again: now it leaves
    flash = _texts(signed_in, "#flash")[0]
    assert "replayed (" in flash, (flash, (console_cloud.folder / "dl.jsonl").read_text())
    assert not signed_in.find_elements(By.XPATH, f'//tbody[@id="letters"]/tr[contains(., "{key}")]')


def test_an_invocation_is_replayed_from_its_page_marked_as_a_replay(
    signed_in: Any, console_cloud: ConsoleCloud
) -> None:
    key = "replays/photo.jpg"
    console_cloud.bucket().put_object(key, b"x", headers={"Content-Type": "image/jpeg"})
    row = (By.XPATH, f'//tbody[@id="invocations"]/tr[contains(., "{key}")]')
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        signed_in.get(f"{console_cloud.address}/invocations?function=tag-on-upload&outcome=ok")
        if signed_in.find_elements(*row):
            break
        time.sleep(1)
    signed_in.find_element(*row).find_element(By.TAG_NAME, "a").click()
    WebDriverWait(signed_in, WAIT).until(lambda d: d.find_elements(By.ID, "replay"))
    original = _texts(signed_in, "#summary tr:nth-child(2) td")[0]
    _click_and_load(signed_in, "replay")
    flash = _texts(signed_in, "#flash")[0]
    assert f"Replay of {original}: tag-on-upload ran" in flash, flash
    answer = json.loads(flash.split("): ", 1)[1])
    assert answer["results"][0]["key"] == key
    assert answer.get("replayOf") == original or answer["results"][0].get("replayOf") == original, answer
