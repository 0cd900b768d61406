"""A reconcile never misses an object: over random rule sets and random changes to them, every object whose
derived tags really change is one the selection lists (its key starts with a selected prefix), passes the
filter on its key and size, and is reached on its full facts.

Over-selection (objects selected whose derived tags do not change) is reported as hypothesis events: run
`pytest tests/functions/test_reach_properties.py --hypothesis-show-statistics` (figures in docs/reconcile.md).
"""

from __future__ import annotations

import copy
import json
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from autotag.facts import ObjectFacts
from autotag.rules import RulesError, derive_tags, parse_rules
from autotag.rules.changes import ADDED, CHANGED, MOVED, REMOVED, diff_rules
from autotag.rules.reach import ANYWHERE, affected_objects, rule_prefixes

# More examples on request (AUTOTAG_PROPERTY_EXAMPLES=10000 ran clean; docs/reconcile.md).
EXAMPLES = int(os.environ.get("AUTOTAG_PROPERTY_EXAMPLES", "400"))
ALPHABET = "ab/.xA"
keys = st.text(alphabet=ALPHABET, min_size=1, max_size=7)
literals = st.text(alphabet=ALPHABET, min_size=1, max_size=3)


def _escaped(text: str) -> str:
    return "".join("\\" + c if c in "./" else c for c in text)


@st.composite
def patterns(draw: st.DrawFn) -> str:
    """Regexes with and without a literal start: anchors, classes, groups, alternation, repeats, flags."""
    parts = st.one_of(
        literals.map(_escaped),
        st.sampled_from(["[ab]", "[a-b]", "[^a]", ".", "\\w", "(?:a|b/)", "(a|bx)", "(?P<g>[ab]+)"]),
        st.sampled_from(["a*", "a+", "(?:ab)?", "b{2}", "x{1,2}"]),
    )
    body = "".join(draw(st.lists(parts, min_size=1, max_size=3)))
    start = draw(st.sampled_from(["^", "^", "\\A", "", "(?i)^", "(?m)^", "^(?:"]))
    if start == "^(?:":
        body = f"{body}|{draw(literals.map(_escaped))})"
    elif draw(st.booleans()) and start:
        body = f"{body}|^{draw(literals.map(_escaped))}"
    return start + body + draw(st.sampled_from(["", "$", "/"]))


def conditions(depth: int = 2) -> st.SearchStrategy[dict[str, Any]]:
    leaves = st.one_of(
        st.builds(lambda p: {"prefix": p}, st.lists(literals, min_size=1, max_size=2)),
        st.builds(lambda s: {"suffix": s}, literals),
        st.builds(lambda e: {"extension": e}, st.sampled_from(["x", "a", "ab"])),
        st.builds(lambda p: {"key_regex": p}, patterns()),
        st.builds(lambda p: {"content_type": p}, st.sampled_from(["text/*", "image/png"])),
        st.builds(
            lambda low, high: (
                {"size": {k: v for k, v in (("min", low), ("max", high)) if v is not None} or {"min": 0}}
            ),
            st.none() | st.integers(0, 3000),
            st.none() | st.integers(0, 3000),
        ),
        st.builds(lambda want: {"meta": {"owner": want}}, st.sampled_from([True, False, "ann", "bob"])),
    )
    if depth == 0:
        return leaves
    inner = conditions(depth - 1)
    return st.one_of(
        leaves,
        st.builds(lambda c: {"all": c}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda c: {"any": c}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda c: {"not": c}, inner),
    )


@st.composite
def rule_specs(draw: st.DrawFn, name: str) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": name}
    if draw(st.booleans()):
        spec["key_regex"] = draw(patterns())
    if draw(st.booleans()):
        spec["when"] = draw(conditions())
    values = st.sampled_from(["v1", "v2", "{extension}", "{filename}"])
    tag_keys = draw(st.lists(st.sampled_from(["k1", "k2", "k3"]), min_size=1, max_size=2, unique=True))
    spec["tags"] = {key: draw(values) for key in tag_keys}
    if draw(st.booleans()):
        spec["priority"] = draw(st.sampled_from([50, 100, 200]))
    if draw(st.booleans()):
        spec["ttl"] = draw(st.sampled_from(["1d", "7d"]))
    return spec


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    count = draw(st.integers(1, 4))
    rules = [draw(rule_specs(f"r{i}")) for i in range(count)]
    document: dict[str, Any] = {"version": 1, "rules": rules}
    if draw(st.booleans()):
        document["defaults"] = {"priority": draw(st.sampled_from([100, 150]))}
    return document


@st.composite
def changed(draw: st.DrawFn, document: dict[str, Any]) -> dict[str, Any]:
    """`document` with one to three edits: a rule added, removed, rewritten in part, or moved; the
    defaults or the protected keys changed; or a description alone."""
    after = copy.deepcopy(document)
    for _ in range(draw(st.integers(1, 3))):
        rules = after["rules"]
        edit = draw(
            st.sampled_from(
                ["add", "remove", "regex", "when", "tags", "priority", "move", "describe", "defaults"]
            )
        )
        index = draw(st.integers(0, len(rules) - 1))
        if edit == "add":
            rules.insert(index, draw(rule_specs(f"n{draw(st.integers(0, 99))}")))
        elif edit == "remove" and len(rules) > 1:
            rules.pop(index)
        elif edit == "regex":
            rules[index]["key_regex"] = draw(patterns())
        elif edit == "when":
            rules[index]["when"] = draw(conditions())
        elif edit == "tags":
            rules[index]["tags"] = draw(rule_specs("x"))["tags"]
        elif edit == "priority":
            rules[index]["priority"] = draw(st.sampled_from([50, 100, 200]))
        elif edit == "move":
            rules.insert(draw(st.integers(0, len(rules) - 1)), rules.pop(index))
        elif edit == "describe":
            rules[index]["description"] = draw(st.text(max_size=5))
        elif edit == "defaults":
            after["defaults"] = {"priority": draw(st.sampled_from([100, 120]))}
        elif draw(st.booleans()):
            after["ownership_tag"] = "mine"
        else:
            after["protected_keys"] = ["k1"]
    names = [r["name"] for r in after["rules"]]
    if len(set(names)) != len(names):  # an added rule took a name already there: rename it
        for i, rule in enumerate(after["rules"]):
            rule["name"] = f"{rule['name']}-{i}"
    return after


facts_strategy = st.builds(
    ObjectFacts,
    key=keys,
    size=st.integers(0, 3000),
    content_type=st.sampled_from([None, "text/plain", "image/png"]),
    user_meta=st.sampled_from([{}, {"owner": "ann"}, {"owner": "bob"}]),
)


def _rules_or_skip(document: dict[str, Any]) -> Any:
    try:
        return parse_rules(document)
    except RulesError:  # a drawn pattern RE2 refuses, or a placeholder the rule cannot fill
        return None


@settings(max_examples=EXAMPLES, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(data=st.data())
def test_the_selection_holds_every_object_whose_derived_tags_change(data: st.DataObject) -> None:
    before_document = data.draw(documents())
    after_document = data.draw(changed(before_document))
    before, after = _rules_or_skip(before_document), _rules_or_skip(after_document)
    if before is None or after is None:
        event("rules refused by the loader")
        return
    affected = affected_objects(diff_rules(before, after))
    selected = changing = 0
    for facts in data.draw(st.lists(facts_strategy, min_size=1, max_size=20)):
        old, new = derive_tags(before, facts).tags, derive_tags(after, facts).tags
        listed = facts.key.startswith(affected.prefixes)
        reached = listed and affected.may_reach(facts.key, facts.size) and affected.reaches(facts)
        selected += reached
        if old != new:
            changing += 1
            assert listed, (facts.key, affected.prefixes, json.dumps([before_document, after_document]))
            assert reached, (facts, json.dumps([before_document, after_document]))
            if affected.removal_only:
                assert all(old.get(k) == tag for k, tag in new.items()), (old, new)
    event(_over_selection(selected, changing))


def _over_selection(selected: int, changing: int) -> str:
    """How much of what the selection reached does not change, in bands (one event per example)."""
    if not selected:
        return "over-selection: nothing selected"
    share = (selected - changing) / selected
    band = "0%" if share == 0 else "under 50%" if share < 0.5 else "50% or more"
    return f"over-selection: {band} of the selected objects keep their derived tags"


@settings(max_examples=EXAMPLES, suppress_health_check=[HealthCheck.too_slow])
@given(pattern=patterns(), key=keys)
def test_a_key_a_pattern_matches_starts_with_one_of_its_prefixes(pattern: str, key: str) -> None:
    rules = _rules_or_skip({"version": 1, "rules": [{"name": "r", "key_regex": pattern, "tags": {"k": "v"}}]})
    if rules is None:
        return
    rule = rules.rules[0]
    if rule.matches(ObjectFacts(key)):
        assert key.startswith(rule_prefixes(rule)), (pattern, key, rule_prefixes(rule))


def _rules(*specs: dict[str, Any], **document: Any) -> Any:
    return parse_rules({"version": 1, "rules": list(specs), **document})


def test_one_rule_changed_under_one_prefix_lists_that_prefix_alone() -> None:
    kind = {"name": "kind", "tags": {"kind": "{extension}"}}
    logs = {"name": "logs", "key_regex": "^logs/(?P<app>[a-z]+)/", "tags": {"app": "{app}"}}
    moved_logs = {**logs, "tags": {"app": "{app}", "team": "ops"}}
    affected = affected_objects(diff_rules(_rules(kind, logs), _rules(kind, moved_logs)))
    assert affected.prefixes == ("logs/",)
    assert affected.may_reach("logs/web/1.txt", 10)
    assert not affected.may_reach("logs/WEB/1.txt", 10)  # the pattern cannot match it: no request
    assert not affected.may_reach("images/1.png", 10)
    assert not affected.head_needed and not affected.removal_only


@pytest.mark.parametrize(
    ("pattern", "prefixes"),
    [
        ("^logs/", ("logs/",)),
        ("\\Alogs/", ("logs/",)),
        ("^(?:photos|videos)/", ("photos/", "videos/")),
        ("^[ab]/x", ("a/x", "b/x")),
        ("^a+/", ("a",)),
        ("^projects/(?P<p>[a-z]+)/", ("projects/",)),
        ("logs/", ANYWHERE),  # not anchored: anywhere in the key
        ("(?i)^logs/", ANYWHERE),  # case-insensitive: LOGS/ matches too
        ("(?m)^logs/", ANYWHERE),  # ^ after a newline inside the key
        ("^a*b", ANYWHERE),
        ("^logs/|tmp/", ANYWHERE),  # the second branch is not anchored
        ("^logs/|^tmp/", ("logs/", "tmp/")),
    ],
)
def test_the_literal_start_of_a_pattern(pattern: str, prefixes: tuple[str, ...]) -> None:
    rule = _rules({"name": "r", "key_regex": pattern, "tags": {"k": "v"}}).rules[0]
    assert rule_prefixes(rule) == prefixes


def test_conditions_bound_prefixes_through_all_and_any() -> None:
    both = {"all": [{"prefix": ["tmp/", "scratch/"]}, {"key_regex": "^tmp/a"}]}
    either = {"any": [{"prefix": "tmp/"}, {"key_regex": "^logs/"}]}
    unbounded = {"any": [{"prefix": "tmp/"}, {"suffix": ".log"}]}
    prefixes = [
        rule_prefixes(_rules({"name": "r", "when": when, "tags": {"k": "v"}}).rules[0])
        for when in (both, either, unbounded)
    ]
    assert prefixes == [("tmp/a",), ("logs/", "tmp/"), ANYWHERE]


def test_kinds_of_change() -> None:
    a = {"name": "a", "tags": {"k1": "v"}}
    b = {"name": "b", "when": {"prefix": "b/"}, "tags": {"k2": "v"}}
    c = {"name": "c", "when": {"prefix": "c/"}, "tags": {"k3": "v"}}
    before = _rules(a, b, c)
    diff = diff_rules(before, _rules(b, {**a, "description": "only words"}, {**c, "tags": {"k3": "w"}}))
    kinds = {change.name: change.kind for change in diff.changes}
    assert kinds == {"a": MOVED, "c": CHANGED} or kinds == {"b": MOVED, "c": CHANGED}
    diff = diff_rules(before, _rules(a, {"name": "d", "tags": {"k4": "v"}}))
    assert {change.name: change.kind for change in diff.changes} == {"d": ADDED, "b": REMOVED, "c": REMOVED}
    assert diff_rules(before, _rules(a, b, {**c, "description": "words"})).unchanged


def test_removing_a_rule_nobody_else_covers_only_takes_tags_away() -> None:
    a = {"name": "a", "tags": {"k1": "v"}}
    b = {"name": "b", "when": {"prefix": "b/"}, "tags": {"k2": "v"}}
    assert affected_objects(diff_rules(_rules(a, b), _rules(a))).removal_only
    other = {"name": "c", "tags": {"k2": "w"}, "priority": 10}
    assert not affected_objects(diff_rules(_rules(a, b, other), _rules(a, other))).removal_only


def test_a_changed_ownership_tag_reaches_every_object() -> None:
    a = {"name": "a", "when": {"prefix": "a/"}, "tags": {"k1": "v"}}
    affected = affected_objects(diff_rules(_rules(a), _rules(a, ownership_tag="mine")))
    assert affected.everything and affected.prefixes == ANYWHERE and affected.may_reach("z", 1)


def test_a_metadata_condition_needs_the_objects_metadata() -> None:
    before = {"name": "m", "key_regex": "^in/", "when": {"meta": {"owner": "ann"}}, "tags": {"k": "v"}}
    after = {**before, "when": {"meta": {"owner": "bob"}}}
    affected = affected_objects(diff_rules(_rules(before), _rules(after)))
    assert affected.head_needed and affected.prefixes == ("in/",)
    assert affected.may_reach("in/1", None)
    assert affected.reaches(ObjectFacts("in/1", 1, user_meta={"owner": "bob"}))
    assert not affected.reaches(ObjectFacts("in/1", 1, user_meta={"owner": "eve"}))
