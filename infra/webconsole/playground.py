"""The Rules page's playground (pure): edited rules checked by the functions' own loader (its errors as it
words them), the tags they derive for a key and metadata, which rule made each, and why every other rule
did not (its key_regex, each of its `when` conditions tried alone, a tag it could not give a value, a tag
a rule of higher priority set); and "what would change" over a sample of objects, the rules in force
against the edited ones."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from autotag.facts import ObjectFacts
from autotag.rules import RulesError, RuleSet, derive_tags
from autotag.rules.loader import parse_rules, rules_from_bytes

MAX_SAMPLE = 100


def check_rules(text: str, record_secrets: tuple[str, ...]) -> tuple[RuleSet | None, str]:
    """The edited rules compiled, or the loader's error in its words."""
    try:
        return rules_from_bytes(text.encode("utf-8"), "the edited rules", record_secrets), ""
    except RulesError as error:
        return None, str(error)


@dataclass(frozen=True)
class RuleVerdict:
    name: str
    matched: bool
    why: list[str] = field(default_factory=list)  # why it did not match, or what it gave and lost


@dataclass(frozen=True)
class Derived:
    key: str
    value: str
    rule: str
    ttl_seconds: int | None


def explain(text: str, rules: RuleSet, facts: ObjectFacts) -> tuple[list[Derived], list[RuleVerdict]]:
    """The tags the edited rules derive for `facts`, and for each rule whether it matched and why (not)."""
    derivation = derive_tags(rules, facts)
    tags = [Derived(t.key, t.value, t.rule, t.ttl_seconds) for t in derivation.tags.values()]
    try:
        document = json.loads(text)
    except ValueError:  # a YAML file: the reasons are then the engine's alone
        document = {}
    specs = {str(s.get("name")): s for s in document.get("rules", []) if isinstance(s, dict)}
    verdicts = []
    for rule in rules.rules:
        spec = specs.get(rule.name, {})
        if rule.name not in derivation.matched_rules:
            verdicts.append(RuleVerdict(rule.name, False, _unmatched(spec, document, facts)))
            continue
        why = [
            f"no value for tag {key!r}: {reason}"
            for name, key, reason in derivation.unresolved
            if name == rule.name
        ]
        for tag in rule.tags:
            won = derivation.tags.get(tag.key)
            if won is not None and won.rule != rule.name and all(tag.key not in w for w in why):
                why.append(f"tag {tag.key!r}: rule {won.rule!r} set it (priority {won.priority})")
        verdicts.append(RuleVerdict(rule.name, True, why))
    return tags, verdicts


def _unmatched(spec: Mapping[str, Any], document: Mapping[str, Any], facts: ObjectFacts) -> list[str]:
    """Why a rule did not match: its key_regex, or each `when` condition that fails when tried alone."""
    if "key_regex" in spec:
        probe = _probe(document, {"key_regex": spec["key_regex"]})
        if probe is not None and not derive_tags(probe, facts).matched_rules:
            return [f"key_regex {spec['key_regex']} does not match the key"]
    when = spec.get("when")
    # `when` is one condition; `all` of several fails on each one that fails alone
    parts = when["all"] if isinstance(when, dict) and isinstance(when.get("all"), list) else [when]
    failing = []
    for condition in parts:
        if not isinstance(condition, dict):
            continue
        probe_spec: dict[str, Any] = {"when": condition}
        if "key_regex" in spec:
            probe_spec["key_regex"] = spec["key_regex"]
        probe = _probe(document, probe_spec)
        if probe is not None and not derive_tags(probe, facts).matched_rules:
            shown = ", ".join(f"{k} {json.dumps(v, ensure_ascii=False)}" for k, v in condition.items())
            failing.append(f"when: {shown} does not hold")
    return failing or ["its conditions do not hold together"]


def _probe(document: Mapping[str, Any], spec: dict[str, Any]) -> RuleSet | None:
    """A rule set of one rule with `spec`'s conditions and a fixed tag: whether those conditions hold."""
    probe = {"version": document.get("version", 1), "rules": [{"name": "probe", **spec, "tags": {"p": "x"}}]}
    try:
        return parse_rules(probe, "probe")
    except RulesError:
        return None


@dataclass(frozen=True)
class Change:
    key: str
    added: list[tuple[str, str]]
    changed: list[tuple[str, str, str]]  # key, from, to
    removed: list[tuple[str, str]]


def what_would_change(before: RuleSet, after: RuleSet, sample: list[ObjectFacts]) -> list[Change]:
    """Per object of the sample whose derived tags differ, how: tags the edited rules add, change, drop."""
    changes = []
    for facts in sample[:MAX_SAMPLE]:
        old = {k: t.value for k, t in derive_tags(before, facts).tags.items()}
        new = {k: t.value for k, t in derive_tags(after, facts).tags.items()}
        added = [(k, v) for k, v in sorted(new.items()) if k not in old]
        changed = [(k, old[k], v) for k, v in sorted(new.items()) if k in old and old[k] != v]
        removed = [(k, v) for k, v in sorted(old.items()) if k not in new]
        if added or changed or removed:
            changes.append(Change(facts.key, added, changed, removed))
    return changes


def parse_metadata(text: str) -> dict[str, str]:
    """`name: value` lines (an `x-oss-meta-` prefix allowed) as the user metadata the rules read."""
    found = {}
    for line in text.splitlines():
        name, colon, value = line.partition(":")
        if colon and name.strip():
            found[name.strip().lower().removeprefix("x-oss-meta-")] = value.strip()
    return found
