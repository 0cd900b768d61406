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


# ---- the Dead letters, Rules and Bulk work pages' pure parts ------------------------------------------


def test_a_replay_is_done_only_when_the_function_says_every_record_is() -> None:
    from webconsole.fc_calls import Invoked
    from webconsole.letters import settle

    done = Invoked("r1", "", json.dumps({"results": [{"bucket": "b", "key": "k", "outcome": "tagged"}]}), ())
    assert settle(done).done and settle(done).outcome == "replayed (r1)"
    rejected = {"results": [{"bucket": "b", "key": "k", "outcome": "rejected", "reason": "NoSuchBucket"}]}
    left = settle(Invoked("r2", "", json.dumps(rejected), ()))
    assert not left.done and left.renewal == ("ReplayNotDone", "b/k: rejected: NoSuchBucket")
    error = json.dumps({"errorType": "RetryableFailure", "errorMessage": "OSS kept failing"})
    failed = settle(Invoked("r3", "UnhandledInvocationError", error, ()))
    assert not failed.done and failed.outcome == "failed again: RetryableFailure: OSS kept failing"
    assert failed.renewal == ("UnhandledInvocationError", "RetryableFailure: OSS kept failing")
    unreachable = settle(Invoked("", "", "", (), unreachable="the FC API did not answer (ConnectionError)"))
    assert not unreachable.done and unreachable.renewal is None


def test_the_store_keeps_letters_that_arrived_while_a_replay_ran(tmp_path: Path) -> None:
    from cloudformats.dead_letters import DeadLetter, read_dead_letters
    from webconsole.letters import rewrite

    def letter(n: int) -> DeadLetter:
        arn = "acs:fc:cn-hangzhou:1:services/s/functions/f"
        return DeadLetter(f"id{n}", arn, f"req{n}", "{}", "E", "m", 4, "2026-12-07T00:00:00Z")

    store = tmp_path / "dl.jsonl"
    store.write_text("".join(json.dumps(letter(n).message()) + "\n" for n in (1, 2, 3)))
    rewrite(store, {"id1"}, {"id2": ("ReplayNotDone", "why")})
    kept = read_dead_letters(store)
    assert [d.id for d in kept] == ["id2", "id3"] and kept[0].error_message == "why"


def test_the_playground_says_which_rule_made_each_tag_and_why_the_others_did_not_match() -> None:
    from autotag.facts import ObjectFacts
    from webconsole.playground import check_rules, explain, what_would_change

    text = json.dumps(
        {
            "version": 1,
            "rules": [
                {"name": "images", "when": {"suffix": ".jpg"}, "tags": {"kind": "image"}},
                {"name": "projects", "key_regex": "^projects/(?P<p>[a-z]+)/", "tags": {"project": "{p}"}},
                {
                    "name": "owned",
                    "when": {"all": [{"meta": {"owner": True}}, {"suffix": ".jpg"}]},
                    "tags": {"o": "yes"},
                },
            ],
        }
    )
    rules, error = check_rules(text, ())
    assert rules is not None and error == ""
    tags, verdicts = explain(text, rules, ObjectFacts("other/a.jpg", 1, "image/jpeg", {}))
    assert [(t.key, t.value, t.rule) for t in tags] == [("kind", "image", "images")]
    why = {v.name: (v.matched, v.why) for v in verdicts}
    assert why["images"] == (True, [])
    assert why["projects"] == (False, ["key_regex ^projects/(?P<p>[a-z]+)/ does not match the key"])
    assert why["owned"] == (False, ['when: meta {"owner": true} does not hold'])

    bad, error = check_rules(text.replace("{p}", "{q}"), ())
    assert bad is None and "rule 'projects' (rules[1]).tags.project: unknown placeholder {q}" in error

    edited, _ = check_rules(text.replace('"kind": "image"', '"kind": "picture"'), ())
    assert edited is not None
    sample = [ObjectFacts("a.jpg", 1), ObjectFacts("b.txt", 1)]
    (change,) = what_would_change(rules, edited, sample)
    assert change.key == "a.jpg" and change.changed == [("kind", "image", "picture")]


def test_bulk_progress_and_sweep_counts() -> None:
    from webconsole.bulk import progress, sweep_counts

    now = datetime(2026, 12, 7, 0, 0, 10, tzinfo=timezone.utc)
    counts = {"Total": 40, "Succeed": 18, "Failed": 2}
    run = progress("f", "e", "Running", "2026-12-07T00:00:00Z", "", counts, now)
    assert (run.done, run.total, run.rate, run.running) == (20, 40, 2.0, True)
    result = json.dumps({"sweeps": [{"bucket": "b", "listed": 5, "tagsRemoved": 1, "complete": True}]})
    assert sweep_counts(result) == ["b: listed 5, tagsRemoved 1 (complete True)"]
    assert sweep_counts("not json") == []


def test_saved_test_events_are_named_plainly_and_kept_per_function(tmp_path: Path) -> None:
    from webconsole.test_events import SavedEvents

    saved = SavedEvents(tmp_path / "events.json")
    assert saved.save("f", "upload one", '{"events": []}') == ""
    assert "letters, digits" in saved.save("f", "../evil", "{}")
    assert saved.names("f") == ["upload one"] and saved.names("g") == []
    assert saved.get("f", "upload one") == '{"events": []}'
