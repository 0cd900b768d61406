"""The rule engine: what each rule form derives, how conflicts between rules resolve, and load errors that
name the rule and the field."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autotag.facts import ObjectFacts
from autotag.rules import RulesError, derive_tags, load_rules, parse_rules

SHIPPED_RULES = Path(__file__).parents[2] / "functions" / "autotag" / "rules" / "default.json"


def rules(*rule_specs: dict[str, Any], **extra: Any) -> Any:
    return parse_rules({"version": 1, "rules": list(rule_specs), **extra})


def tags(rule_set: Any, **facts: Any) -> dict[str, str]:
    return {k: t.value for k, t in derive_tags(rule_set, ObjectFacts(**facts)).tags.items()}


def test_key_regex_captures_feed_templates() -> None:
    rule_set = rules(
        {
            "name": "r",
            "key_regex": r"^(?P<team>[a-z]+)/(?P<year>\d{4})/",
            "tags": {"team": "{team}", "period": "{year}-{extension}"},
        }
    )
    assert tags(rule_set, key="media/2024/clip.MP4") == {
        "team": "media",
        "period": "2024-mp4",
    }
    assert tags(rule_set, key="other.txt") == {}


def test_extension_map_default_and_prefix_longest_match() -> None:
    rule_set = rules(
        {
            "name": "kind",
            "tags": {"kind": {"from": "extension", "map": {"jpg": "image"}, "default": "other"}},
        },
        {"name": "dept", "tags": {"dept": {"from": "prefix", "map": {"a/": "A", "a/b/": "AB"}}}},
    )
    assert tags(rule_set, key="a/b/x.JPG") == {"kind": "image", "dept": "AB"}
    assert tags(rule_set, key="a/c/.hidden") == {"kind": "other", "dept": "A"}
    assert tags(rule_set, key="z/noext") == {"kind": "other"}


def test_metadata_sources() -> None:
    rule_set = rules(
        {
            "name": "m",
            "tags": {
                "family": {"from": "content_type_family"},
                "type": {"from": "content_type", "map": {"image/jpeg": "jpeg"}},
                "owner": {"from": "meta", "name": "x-oss-meta-Owner"},
                "size": {"from": "size", "buckets": [{"max": "1KiB", "value": "small"}, {"value": "big"}]},
                "month": {"from": "modified", "part": "month"},
                "day": "{modified.date} by {meta.owner}",
            },
        }
    )
    facts = {
        "key": "k",
        "content_type": "image/jpeg",
        "user_meta": {"owner": "bob"},
        "size": 1024,
        "last_modified": datetime(2026, 3, 4, tzinfo=timezone.utc),
    }
    assert tags(rule_set, **facts) == {
        "family": "image",
        "type": "jpeg",
        "owner": "bob",
        "size": "small",
        "month": "03",
        "day": "2026-03-04 by bob",
    }
    assert tags(rule_set, **{**facts, "size": 1025})["size"] == "big"
    assert rule_set.needs == {"content_type", "meta", "size", "modified"}


def test_missing_facts_leave_the_tag_out_and_say_why() -> None:
    rule_set = rules({"name": "m", "tags": {"owner": {"from": "meta", "name": "owner"}, "k": "{key}"}})
    derivation = derive_tags(rule_set, ObjectFacts(key="x"))
    assert set(derivation.tags) == {"k"}
    assert derivation.unresolved == (
        ("m", "owner", "the object has no x-oss-meta-owner, and the rule gives no default"),
    )


@pytest.mark.parametrize(
    ("condition", "matches"),
    [
        ({"prefix": ["in/", "up/"]}, True),
        ({"suffix": ".png"}, False),
        ({"extension": [".JPG"]}, True),
        ({"content_type": "image/*"}, True),
        ({"content_type": ["video/*", "text/plain"]}, False),
        ({"size": {"min": "1KB", "max": "2KB"}}, True),
        ({"size": {"max": 10}}, False),
        ({"meta": {"owner": "bob", "missing": False}}, True),
        ({"meta": {"owner": True, "reviewed": True}}, False),
        ({"key_regex": r"\.jpg$"}, True),
        ({"all": [{"prefix": "in/"}, {"not": {"suffix": ".tmp"}}]}, True),
        ({"any": [{"prefix": "zz/"}, {"extension": "png"}]}, False),
    ],
)
def test_conditions(condition: dict[str, Any], matches: bool) -> None:
    rule_set = rules({"name": "r", "when": condition, "tags": {"hit": "yes"}})
    facts = {
        "key": "in/photo.jpg",
        "content_type": "image/jpeg; charset=x",
        "size": 1500,
        "user_meta": {"owner": "bob"},
    }
    assert (tags(rule_set, **facts) == {"hit": "yes"}) is matches


def test_priority_then_file_order_decides_between_rules() -> None:
    rule_set = rules(
        {"name": "low", "tags": {"k": "low", "j": "first"}, "priority": 10},
        {"name": "high", "tags": {"k": "high"}, "priority": 90},
        {"name": "same", "tags": {"j": "second"}, "priority": 10},
    )
    derivation = derive_tags(rule_set, ObjectFacts(key="x"))
    assert {k: (t.value, t.rule) for k, t in derivation.tags.items()} == {
        "k": ("high", "high"),
        "j": ("first", "low"),
    }


def test_options_inherit_from_defaults_rule_and_tag() -> None:
    rule_set = rules(
        {
            "name": "r",
            "ttl": "2d",
            "tags": {
                "a": "1",
                "b": {"from": "template", "template": "2", "ttl": "3h", "conflict": "overwrite"},
            },
        },
        defaults={"priority": 7, "conflict": "keep-existing"},
    )
    derived = derive_tags(rule_set, ObjectFacts(key="x")).tags
    assert (derived["a"].priority, derived["a"].conflict, derived["a"].ttl_seconds) == (
        7,
        "keep-existing",
        172800,
    )
    assert (derived["b"].conflict, derived["b"].ttl_seconds) == ("overwrite", 10800)


def test_fingerprint_changes_with_the_rules_only() -> None:
    one = {"version": 1, "rules": [{"name": "r", "tags": {"a": "1"}}]}
    assert parse_rules(one).fingerprint == parse_rules(json.loads(json.dumps(one))).fingerprint
    two = {"version": 1, "rules": [{"name": "r", "tags": {"a": "2"}}]}
    assert parse_rules(one).fingerprint != parse_rules(two).fingerprint


BAD_RULES = {
    "no rules": ({"version": 1, "rules": []}, "rules: a rules file has at least one rule"),
    "wrong version": ({"version": 2, "rules": [{"name": "r", "tags": {"a": "1"}}]}, "version"),
    "bad conflict": (
        {"version": 1, "rules": [{"name": "r1", "conflict": "clobber", "tags": {"a": "1"}}]},
        "rule 'r1' (rules[0]).conflict: 'clobber' is not one of overwrite, keep-existing",
    ),
    "bad regex": (
        {"version": 1, "rules": [{"name": "r2", "key_regex": "(unclosed", "tags": {"a": "1"}}]},
        "rule 'r2' (rules[0]).key_regex: '(unclosed' is not a valid RE2 pattern",
    ),
    "backreference": (
        {"version": 1, "rules": [{"name": "r3", "key_regex": r"(a)\1", "tags": {"a": "1"}}]},
        "rule 'r3' (rules[0]).key_regex",
    ),
    "unknown placeholder": (
        {"version": 1, "rules": [{"name": "r4", "tags": {"a": "{nope}"}}]},
        "rule 'r4' (rules[0]).tags.a: unknown placeholder {nope}",
    ),
    "duplicate name": (
        {"version": 1, "rules": [{"name": "d", "tags": {"a": "1"}}, {"name": "d", "tags": {"b": "1"}}]},
        "rule 'd' (rules[1]): another rule already has this name",
    ),
    "prefix without map": (
        {"version": 1, "rules": [{"name": "r5", "tags": {"a": {"from": "prefix"}}}]},
        "rule 'r5' (rules[0]).tags.a: `from: prefix` needs `map`",
    ),
    "unknown field": (
        {"version": 1, "rules": [{"name": "r6", "tags": {"a": "1"}, "colour": "red"}]},
        "rule 'r6' (rules[0]): unknown field `colour` (known: conflict, description, key_regex, name",
    ),
    "bad ttl": (
        {"version": 1, "rules": [{"name": "r7", "ttl": "forever", "tags": {"a": "1"}}]},
        "rule 'r7' (rules[0]).ttl: a ttl is a whole number and a unit, such as 7d",
    ),
    "unbalanced brace": (
        {"version": 1, "rules": [{"name": "r9", "tags": {"a": "x}"}}]},
        "rule 'r9' (rules[0]).tags.a: unbalanced brace",
    ),
    "tag key too long": ({"version": 1, "rules": [{"name": "r8", "tags": {"k" * 129: "1"}}]}, "rule 'r8'"),
}


@pytest.mark.parametrize("case", BAD_RULES)
def test_bad_rules_name_the_rule_and_field(case: str) -> None:
    document, fragment = BAD_RULES[case]
    with pytest.raises(RulesError) as caught:
        parse_rules(document)
    assert fragment in str(caught.value)


def test_load_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match="cannot read the rules file"):
        load_rules(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    with pytest.raises(RulesError, match=r"broken\.json: not valid JSON"):
        load_rules(broken)
    # the functions read JSON (FC's runtimes have no PyYAML): a YAML name is refused, saying so
    yaml_file = tmp_path / "rules.yaml"
    yaml_file.write_text("version: 1\nrules:\n  - name: y\n    tags: {a: '{extension}'}\n")
    with pytest.raises(RulesError, match=r"rules\.yaml: the functions read rules as JSON, not YAML"):
        load_rules(yaml_file)


def test_shipped_rules_load_and_derive() -> None:
    rule_set = load_rules(SHIPPED_RULES)
    assert tags(rule_set, key="projects/apollo/tmp.png", size=10, user_meta={"owner": "ann"}) == {
        "kind": "image",
        "project": "apollo",
        "owner": "ann",
        "size": "small",
    }
    assert tags(rule_set, key="tmp/x", size=2**31)["lifecycle"] == "temporary"


def test_pathological_pattern_on_a_1023_byte_key_finishes() -> None:
    """(a+)+$ is exponential for backtracking engines; RE2 matches in linear time."""
    rule_set = rules({"name": "r", "key_regex": "^(a+)+$", "tags": {"a": "1"}})
    assert tags(rule_set, key="a" * 1022 + "b") == {}
    assert tags(rule_set, key="a" * 1023) == {"a": "1"}


@given(st.text(min_size=1, max_size=300), st.integers(min_value=0, max_value=2**40) | st.none())
def test_any_key_derives_string_tags_without_error(key: str, size: int | None) -> None:
    derived = derive_tags(load_rules(SHIPPED_RULES), ObjectFacts(key=key, size=size)).tags
    assert all(isinstance(t.value, str) and t.key for t in derived.values())
