"""The Rules page in a real browser (headless Chromium): the rules in force and where they come from; the
playground deriving tags for a key and metadata, naming the rule of each tag and why the others did not
match; an edit changing the derived tags; a bad edit refused in the loader's words; and "what would
change" over a sample of the bucket before anything is pushed."""

from __future__ import annotations

from typing import Any

from console_fixtures import WAIT, ConsoleCloud, browser, console_cloud, signed_in
from console_fixtures import text as _text
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

__all__ = ["browser", "console_cloud", "signed_in"]  # the fixtures, for the tests below


def _fill(driver: Any, element_id: str, value: str) -> None:
    driver.execute_script("document.getElementById(arguments[0]).value = arguments[1]", element_id, value)


def _derive(driver: Any, button: str = "derive") -> None:
    driver.execute_script("window.submitted = true")
    driver.find_element(By.ID, button).click()
    WebDriverWait(driver, WAIT).until(lambda d: d.execute_script("return window.submitted") is None)


def test_the_rules_in_force_and_where_they_come_from(signed_in: Any, console_cloud: ConsoleCloud) -> None:
    signed_in.get(f"{console_cloud.address}/rules")
    assert "the rules shipped with the functions" in _text(signed_in, "#where")
    assert "file-kind" in _text(signed_in, "#in-force") and "5 rules" in _text(signed_in, "#in-force")
    assert '"name": "scratch-space"' in signed_in.find_element(By.ID, "rules").get_attribute("value")


def test_the_playground_derives_tags_and_an_edit_changes_them(
    signed_in: Any, console_cloud: ConsoleCloud
) -> None:
    signed_in.get(f"{console_cloud.address}/rules")
    _fill(signed_in, "key", "projects/apollo/pic.jpg")
    _fill(signed_in, "metadata", "x-oss-meta-team: blue")
    _derive(signed_in)
    assert "image" in _text(signed_in, 'tr.derived[data-key="kind"]')
    assert "file-kind" in _text(signed_in, 'tr.derived[data-key="kind"]')
    assert "apollo" in _text(signed_in, 'tr.derived[data-key="project"]')
    owner = _text(signed_in, 'tr.verdict[data-rule="owner-from-metadata"]')
    assert "did not match" in owner and 'when: meta {"owner": true} does not hold' in owner, owner
    assert 'when: prefix "tmp/" does not hold' in _text(signed_in, 'tr.verdict[data-rule="scratch-space"]')

    rules = signed_in.find_element(By.ID, "rules").get_attribute("value")
    _fill(signed_in, "rules", rules.replace('"jpg": "image"', '"jpg": "picture"'))
    _derive(signed_in)
    assert "picture" in _text(signed_in, 'tr.derived[data-key="kind"]'), "the edit changed the derived tag"

    broken = rules.replace('"tags": {"project": "{project}"}', '"tags": {"project": "{projet}"}')
    _fill(signed_in, "rules", broken)
    _derive(signed_in)
    error = _text(signed_in, "#rules-error")
    assert "rule 'project-from-key' (rules[1]).tags.project: unknown placeholder {projet}" in error, error
    assert not signed_in.find_elements(By.ID, "derived")


def test_what_would_change_over_a_sample_before_anything_is_pushed(
    signed_in: Any, console_cloud: ConsoleCloud
) -> None:
    bucket = console_cloud.bucket()
    for key in ("sample/a.jpg", "sample/b.txt"):
        bucket.put_object(key, b"x")
    signed_in.get(f"{console_cloud.address}/rules")
    rules = signed_in.find_element(By.ID, "rules").get_attribute("value")
    _fill(signed_in, "rules", rules.replace('"jpg": "image"', '"jpg": "picture"'))
    _fill(signed_in, "prefix", "sample/")
    _derive(signed_in, "compare")
    assert "2 objects of oss://autotag-demo/sample/ read; 1 would change" in _text(signed_in, "#sampled")
    change = _text(signed_in, "tr.change")
    assert "sample/a.jpg" in change and "kind: image → picture" in change, change
    # nothing was pushed: the rules in force are as before
    signed_in.get(f"{console_cloud.address}/rules")
    assert '"jpg": "image"' in signed_in.find_element(By.ID, "rules").get_attribute("value")
