"""The console's pure parts: whose each tag is (with its rule, TTL and expiry), the visible escaping of
hostile text, and the invocation index's pages over a large log, read without loading it whole."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path

from autotag.ownership import Ownership, ownership_record
from autotag.rules import DerivedTag
from webconsole.invocations import PAGE, InvocationIndex
from webconsole.objects import OTHER, RECORD, SYSTEM, TagRow, tag_rows
from webconsole.text import shown

SECRETS = ("s1",)


def _derived(key: str, value: str, rule: str, ttl: int | None) -> DerivedTag:
    return DerivedTag(key, value, rule, 0, "keep-existing", ttl)


def test_tags_are_the_systems_only_under_a_sealed_record() -> None:
    ownership = Ownership(secrets=SECRETS)
    tags = {"kind": "image", "temp": "yes", "team": "blue"}
    tags["autotag"] = ownership_record(tags, ["kind", "temp"], ownership)
    derived = {
        "kind": _derived("kind", "image", "file-kind", None),
        "temp": _derived("temp", "yes", "tmp", 86400),
    }
    modified = datetime(2026, 12, 1, 3, 0, tzinfo=timezone.utc)
    rows, reading = tag_rows(tags, ownership, derived, modified)
    assert reading.state == "trusted"
    assert rows == [
        TagRow("autotag", tags["autotag"], RECORD),
        TagRow("kind", "image", SYSTEM, "file-kind"),
        TagRow("team", "blue", OTHER),
        TagRow("temp", "yes", SYSTEM, "tmp", "1d", "2026-12-02T03:00:00Z"),
    ]
    # the same record under another secret is not the system's: every tag is someone else's
    stranger, reading = tag_rows(tags, Ownership(secrets=("other",)), derived, modified)
    assert reading.foreign and {row.owner for row in stranger} == {OTHER}


def test_hostile_text_is_shown_with_visible_escapes() -> None:
    assert shown("a\x1bb\rc\nd\te\\f\u202eg") == "a\\x1bb\\rc\\nd\\te\\\\f\\u202eg"
    assert shown("<img src=x onerror=alert(1)>") == "<img src=x onerror=alert(1)>"  # HTML: autoescape's


def test_the_invocation_index_pages_a_large_log(tmp_path: Path) -> None:
    log = tmp_path / "invocations.jsonl"
    functions = ("tag-on-upload", "tag-expiry")
    with log.open("w") as file:
        for number in range(10_000):
            record = {
                "time": f"t{number}",
                "function": functions[number % 2],
                "requestId": f"r{number}",
                "kind": "done",
                "line": f"line {number}",
                "error": "boom" if number % 10 == 0 else "",
                "event": "{}",
                "log": [],
            }
            file.write(json.dumps(record) + "\n")
        file.write('{"time": "half a line')  # one still being written: not read until it ends
    index = InvocationIndex(log)
    index.start()
    try:
        deadline = time.monotonic() + 60
        while len(index.entries) < 10_000 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(index.entries) == 10_000
        newest, older = index.page("", "", None)
        assert [e.request_id for e in newest[:2]] == ["r9999", "r9998"] and len(newest) == PAGE
        second, _ = index.page("", "", older)
        assert second[0].request_id == f"r{9999 - PAGE}"
        failed, _ = index.page("tag-on-upload", "failed", None)
        assert {e.outcome for e in failed} == {"failed"} and failed[0].request_id == "r9990"
        whole = index.record(newest[0])
        assert whole is not None and whole["requestId"] == "r9999"
        with log.open("a") as file:
            file.write(" and broken\n")  # the half line ends, not JSON: skipped
            file.write(json.dumps({"function": "tag-on-upload", "kind": "retry", "line": "x"}) + "\n")
        assert index.wait_for_more(10_000, 60) == 10_001
        assert index.entries[-1].outcome == "retry"
    finally:
        index.stop()
