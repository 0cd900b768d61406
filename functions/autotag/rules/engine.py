"""Compiled rules and their evaluation: pure functions of (RuleSet, ObjectFacts)."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..facts import ObjectFacts
from ..ownership import DEFAULT_OWNERSHIP, Ownership

Captures = Mapping[str, str]
Condition = Callable[[ObjectFacts, Captures], bool]


@dataclass(frozen=True)
class Missing:
    """What a value source returns when the object offers nothing for the tag, and why."""

    reason: str


# A value source returns the tag value, or Missing when the object offers nothing for it.
ValueSource = Callable[[ObjectFacts, Captures], "str | Missing"]

KEEP_EXISTING = "keep-existing"
OVERWRITE = "overwrite"


@dataclass(frozen=True)
class TagOptions:
    priority: int = 100
    conflict: str = KEEP_EXISTING
    ttl_seconds: int | None = None


@dataclass(frozen=True)
class TagRule:
    key: str
    value: ValueSource
    options: TagOptions


@dataclass(frozen=True)
class Rule:
    name: str
    index: int
    key_regex: Any | None  # a compiled re2 pattern; its named groups feed templates
    when: Condition | None
    tags: tuple[TagRule, ...]
    # A condition on what a listing shows (key, size, Last-Modified) that is false only when the rule
    # cannot match; None: the listing cannot tell. Lets the sweep pick candidates without reading tags.
    listing_filter: Condition | None = None
    # The rule as written, description left out and the file's defaults beside it (canonical JSON): two
    # versions of a rule derive alike when their definitions are equal (rules/changes.py compares them).
    definition: str = ""

    @property
    def ttls(self) -> frozenset[int]:
        return frozenset(t.options.ttl_seconds for t in self.tags if t.options.ttl_seconds is not None)

    def matches(self, facts: ObjectFacts) -> bool:
        """Whether this rule matches an object with these facts, as derive_tags decides it."""
        if self.key_regex is None:
            return self.when is None or self.when(facts, {})
        found = self.key_regex.search(facts.key)
        if found is None:
            return False
        captures = {k: v for k, v in found.groupdict().items() if v is not None}
        return self.when is None or self.when(facts, captures)

    def may_match(self, facts: ObjectFacts) -> bool:
        """False only when this rule surely does not match an object with these listing facts."""
        if self.key_regex is not None and self.key_regex.search(facts.key) is None:
            return False
        return self.listing_filter is None or self.listing_filter(facts, {})


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...]
    fingerprint: str  # hash of the normalised rules document: changes exactly when the rules do
    needs: frozenset[str] = frozenset()  # facts beyond the key: content_type, meta, size, modified
    ownership: Ownership = DEFAULT_OWNERSHIP

    @property
    def ttls(self) -> frozenset[int]:
        return frozenset().union(*(rule.ttls for rule in self.rules))


def expiry_horizons(rules: RuleSet, facts: ObjectFacts) -> frozenset[int]:
    """The TTLs (seconds) of tags that rules which may match this listed object could have given it."""
    return frozenset().union(*(rule.ttls for rule in rules.rules if rule.ttls and rule.may_match(facts)))


@dataclass(frozen=True)
class DerivedTag:
    key: str
    value: str
    rule: str
    priority: int
    conflict: str
    ttl_seconds: int | None


@dataclass(frozen=True)
class Derivation:
    tags: dict[str, DerivedTag] = field(default_factory=dict)
    matched_rules: tuple[str, ...] = ()
    # (rule, tag key, why no value) for tags a matching rule could not produce
    unresolved: tuple[tuple[str, str, str], ...] = ()


def derive_tags(rules: RuleSet, facts: ObjectFacts) -> Derivation:
    """The tags the rules give this object. When two rules set one key, the higher priority wins, then the
    earlier rule."""
    chosen: dict[str, DerivedTag] = {}
    matched: list[str] = []
    unresolved: list[tuple[str, str, str]] = []
    for rule in rules.rules:
        captures: Captures = {}
        if rule.key_regex is not None:
            match = rule.key_regex.search(facts.key)
            if match is None:
                continue
            captures = {k: v for k, v in match.groupdict().items() if v is not None}
        if rule.when is not None and not rule.when(facts, captures):
            continue
        matched.append(rule.name)
        for tag in rule.tags:
            value = tag.value(facts, captures)
            if isinstance(value, Missing):
                unresolved.append((rule.name, tag.key, value.reason))
                continue
            candidate = DerivedTag(
                tag.key, value, rule.name, tag.options.priority, tag.options.conflict, tag.options.ttl_seconds
            )
            current = chosen.get(tag.key)
            if current is None or candidate.priority > current.priority:
                chosen[tag.key] = candidate
    return Derivation(chosen, tuple(matched), tuple(unresolved))


# ---- building blocks the loader compiles rules into ----------------------------------------------------


def all_of(conditions: list[Condition]) -> Condition:
    return lambda facts, captures: all(c(facts, captures) for c in conditions)


def any_of(conditions: list[Condition]) -> Condition:
    return lambda facts, captures: any(c(facts, captures) for c in conditions)


def negate(condition: Condition) -> Condition:
    return lambda facts, captures: not condition(facts, captures)


def key_prefix(prefixes: list[str]) -> Condition:
    return lambda facts, _c: facts.key.startswith(tuple(prefixes))


def key_suffix(suffixes: list[str]) -> Condition:
    return lambda facts, _c: facts.key.endswith(tuple(suffixes))


def extension_in(extensions: list[str]) -> Condition:
    wanted = {e.lower().lstrip(".") for e in extensions}
    return lambda facts, _c: facts.extension in wanted


def key_matches(pattern: Any) -> Condition:
    return lambda facts, _c: pattern.search(facts.key) is not None


def content_type_matches(globs: list[str]) -> Condition:
    lowered = [g.lower() for g in globs]

    def check(facts: ObjectFacts, _c: Captures) -> bool:
        content_type = (facts.content_type or "").split(";", 1)[0].strip().lower()
        return bool(content_type) and any(fnmatch.fnmatchcase(content_type, g) for g in lowered)

    return check


def size_between(minimum: int | None, maximum: int | None) -> Condition:
    def check(facts: ObjectFacts, _c: Captures) -> bool:
        if facts.size is None:
            return False
        return (minimum is None or facts.size >= minimum) and (maximum is None or facts.size <= maximum)

    return check


def meta_matches(expected: dict[str, str | bool]) -> Condition:
    def check(facts: ObjectFacts, _c: Captures) -> bool:
        for name, want in expected.items():
            have = facts.user_meta.get(name.lower())
            if (want is True and have is None) or (want is False and have is not None):
                return False
            if isinstance(want, str) and have != want:
                return False
        return True

    return check
