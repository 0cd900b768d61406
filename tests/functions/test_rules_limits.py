"""A rules file is refused at load for everything knowable then — values that can never fit OSS, keys OSS
would refuse, numbers no clock or object can reach, nesting and expansion no real file needs — with one
line that speaks of the limit, not of JSON Schema, and nothing on stderr."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from autotag.facts import ObjectFacts
from autotag.rules import RulesError, derive_tags, load_rules, parse_rules


def document(*rules: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"version": 1, "rules": list(rules), **extra}


def refused(doc: Any) -> str:
    with pytest.raises(RulesError) as caught:
        parse_rules(doc)
    return str(caught.value)


CHARSET = "letters, digits, spaces and + - = . _ : /"
KEYS = "letters, digits and + - = . _ : / (no space: the ownership record separates keys with spaces)"

CASES: dict[str, tuple[Any, str]] = {
    "literal value over 256": (
        document({"name": "r", "tags": {"note": "x" * 257}}),
        "rule 'r' (rules[0]).tags.note: a tag value is at most 256 characters; this one is 257",
    ),
    "literal default over 256": (
        document({"name": "r", "tags": {"k": {"from": "extension", "default": "y" * 300}}}),
        "rule 'r' (rules[0]).tags.k.default: a tag value is at most 256 characters; this one is 300",
    ),
    "map value outside the charset": (
        document({"name": "r", "tags": {"k": {"from": "extension", "map": {"jpg": "a@b"}}}}),
        f"rule 'r' (rules[0]).tags.k.map.jpg: a tag value may hold only {CHARSET}",
    ),
    "literal text around a placeholder over 256": (
        document({"name": "r", "tags": {"k": "z" * 250 + "{extension}" + "z" * 10}}),
        "rule 'r' (rules[0]).tags.k: a tag value is at most 256 characters",
    ),
    "tag key over 128": (
        document({"name": "r", "tags": {"k" * 129: "1"}}),
        "rule 'r' (rules[0]).tags: a tag key is at most 128 characters",
    ),
    "tag key outside the charset": (
        document({"name": "r", "tags": {"a@b": "1"}}),
        f"rule 'r' (rules[0]).tags: a tag key may hold only {KEYS}",
    ),
    "eleven tags in a rule": (
        document({"name": "r", "tags": {f"k{i}": "1" for i in range(11)}}),
        "rule 'r' (rules[0]).tags: at most 10 tags per rule",
    ),
    "unknown field": (
        document({"name": "r", "tags": {"a": "1"}, "tll": "7d"}),
        "rule 'r' (rules[0]): unknown field `tll` (did you mean `ttl`?)",
    ),
    "unknown field in a tag": (
        document({"name": "r", "tags": {"a": {"from": "meta", "nmae": "owner"}}}),
        "rule 'r' (rules[0]).tags.a: unknown field `nmae` (did you mean `name`?)",
    ),
    "bad ttl": (
        document({"name": "r", "ttl": "forever", "tags": {"a": "1"}}),
        "rule 'r' (rules[0]).ttl: a ttl is a whole number and a unit, such as 7d (s, m, h, d or w)",
    ),
    "ttl beyond any clock": (
        document({"name": "r", "ttl": "999999w", "tags": {"a": "1"}}),
        "rule 'r' (rules[0]).ttl: a ttl is at most 100 years (36500d); '999999w' is more",
    ),
    "size of 400 nines": (
        document({"name": "r", "when": {"size": {"max": "9" * 400}}, "tags": {"a": "1"}}),
        "rule 'r' (rules[0]).when.size.max: a size is at most 1 PB",
    ),
    "size bucket of 400 nines": (
        document({"name": "r", "tags": {"s": {"from": "size", "buckets": [{"max": 10**400, "value": "x"}]}}}),
        "rule 'r' (rules[0]).tags.s.buckets[0].max: a size is at most 1 PB",
    ),
    "conflict typo": (
        document({"name": "r", "conflict": "overwrites", "tags": {"a": "1"}}),
        "rule 'r' (rules[0]).conflict: 'overwrites' is not one of overwrite, keep-existing",
    ),
    "ownership tag outside the charset": (
        document({"name": "r", "tags": {"a": "1"}}, ownership_tag="auto tag"),
        f"ownership_tag: a tag key may hold only {KEYS}",
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_what_is_known_at_load_is_refused_in_the_limits_words(case: str) -> None:
    doc, expected = CASES[case]
    message = refused(doc)
    assert expected in message
    assert "(b'" not in message and "Error(" not in message  # no bytes reprs, no exception reprs
    assert "is not valid under any of the given schemas" not in message


def test_a_bad_pattern_logs_nothing_and_shows_no_bytes(capfd: pytest.CaptureFixture[str]) -> None:
    message = refused(document({"name": "r", "key_regex": "(unclosed", "tags": {"a": "1"}}))
    assert message.endswith(
        "rules: rule 'r' (rules[0]).key_regex: '(unclosed' is not a valid RE2 pattern (missing ))"
    )
    out, err = capfd.readouterr()
    assert out == err == ""  # RE2's own log lines (absl WARNING / E0000) never reach the user


def nested(depth: int) -> dict[str, Any]:
    condition: dict[str, Any] = {"prefix": "a"}
    for _ in range(depth):
        condition = {"not": condition}
    return condition


@pytest.mark.parametrize("depth", [33, 900, 5_000])
def test_deeply_nested_conditions_are_refused(depth: int) -> None:
    message = refused(document({"name": "r", "when": nested(depth), "tags": {"a": "1"}}))
    assert "conditions nest at most 32 levels deep" in message


def test_nesting_within_the_limit_still_works() -> None:
    rules = parse_rules(document({"name": "r", "when": nested(30), "tags": {"a": "1"}}))
    assert derive_tags(rules, ObjectFacts("a/x")).tags["a"].value == "1"


def test_a_deeply_nested_json_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text('{"version": 1, "rules": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(RulesError, match=r"deep\.json: .*nests more than"):
        load_rules(path)


def test_a_huge_rules_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "huge.json"
    path.write_text(json.dumps(document({"name": "r", "tags": {"a": "1"}, "description": "d" * 2_000_000})))
    with pytest.raises(RulesError, match=r"huge\.json: .*at most 1 MiB"):
        load_rules(path)
