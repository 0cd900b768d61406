"""Which objects a change of rules can reach, decided from what a listing shows (pure).

derive_tags gives an object what the rules that match it give, so when only some rules change, an object
none of their versions (before or after) matches derives exactly what it did. `affected_objects` turns the
changed rules into what a reconcile has to visit:
- the key prefixes to list: those a rule's `prefix` conditions and the literal start of its anchored
  key_regex (`^`/`\\A`, then literal characters, small classes and alternations) allow, combined through
  `all` (intersection) and `any` (union); a rule with no such bound lists the whole bucket;
- a filter on each listed key and size (`may_reach`), run before any request about the object: false only
  when no changed rule can match (content type and metadata conditions count as unknown, true);
- whether candidates need their metadata read first (`head_needed`), and `reaches`, exact on full facts;
- `removal_only`: every change removes rules whose tag keys no remaining rule gives, so an object that
  carries no tags at all (an inventory's TaggingCount 0) has nothing to change.
Everything here errs towards visiting more: a pattern it cannot read, flags that make `^` or letters mean
more (i, m), or a bound that would need more than MAX_PREFIXES prefixes all widen the listing."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from ..facts import ObjectFacts
from ..oss_tags import MAX_KEY_LENGTH
from ..planning import sanitise
from .changes import REMOVED, RulesDiff
from .checks import size_bytes
from .engine import Rule

MAX_PREFIXES = 16  # prefixes one pattern may expand to; past that its shorter common start is listed
MAX_CLASS = 4  # characters a class ([ab]) may expand to: each prefix listed costs at least one request
MAX_LISTINGS = 64  # prefixes one reconcile lists; past that they are cut to shorter common starts
ANYWHERE = ("",)  # the whole bucket


@dataclass(frozen=True)
class Affected:
    prefixes: tuple[str, ...]  # minimal and sorted; ANYWHERE lists the whole bucket, () lists nothing
    rules: tuple[Rule, ...]  # the changed rules' versions, before and after
    everything: bool = False  # every object may be affected: list everything, filter nothing
    head_needed: bool = False  # a changed rule's condition reads the content type or metadata
    removal_only: bool = False  # the change can only take tags away

    def may_reach(self, key: str, size: int | None = None) -> bool:
        """False only when no changed rule can match an object with this key (and size, when known)."""
        if self.everything:
            return True
        if not key.startswith(self.prefixes):
            return False
        return any(_may_match(rule, key, size) for rule in self.rules)

    def reaches(self, facts: ObjectFacts) -> bool:
        """Whether a changed rule matches an object with these (full) facts."""
        return self.everything or any(rule.matches(facts) for rule in self.rules)


def affected_objects(diff: RulesDiff) -> Affected:
    if diff.everything:
        return Affected(ANYWHERE, (), everything=True)
    versions = tuple(rule for change in diff.changes for rule in change.versions)
    prefixes = _collapsed(_minimal(p for rule in versions for p in rule_prefixes(rule)), MAX_LISTINGS)
    head_needed = any(_reads_head(_spec(rule).get("when")) for rule in versions)
    return Affected(prefixes, versions, head_needed=head_needed, removal_only=_removal_only(diff))


def rule_prefixes(rule: Rule) -> tuple[str, ...]:
    """The key prefixes objects this rule matches start with (ANYWHERE when it can match any key)."""
    spec = _spec(rule)
    bounds = [b for b in (_regex_prefixes(spec.get("key_regex")), _condition_prefixes(spec.get("when"))) if b]
    if not bounds:
        return ANYWHERE
    found = bounds[0] if len(bounds) == 1 else _intersect(bounds[0], bounds[1])
    return _minimal(found)


def describe_reach(rule: Rule) -> list[str]:
    """One line per condition this rule puts on the objects it matches, as the rules file writes them."""
    spec = _spec(rule)
    lines = [f"key matches {_quoted(spec['key_regex'])}"] if "key_regex" in spec else []
    if "when" in spec:
        lines.append(_describe(spec["when"]))
    return lines or ["every object"]


# ---- reading a rule's definition ----------------------------------------------------------------------


def _spec(rule: Rule) -> dict[str, Any]:
    return _parsed(rule.definition)


@cache
def _parsed(definition: str) -> dict[str, Any]:
    rule: dict[str, Any] = json.loads(definition)["rule"] if definition else {}
    return rule


def _removal_only(diff: RulesDiff) -> bool:
    """Whether the change only removes rules, and no rule left gives one of their tag keys (which could
    then take a key over on objects that carry none of the system's tags)."""
    if not diff.changes or any(change.kind != REMOVED for change in diff.changes):
        return False
    removed = {sanitise(t.key, MAX_KEY_LENGTH) for c in diff.changes for r in c.versions for t in r.tags}
    return not removed & diff.remaining_keys


def _reads_head(condition: Mapping[str, Any] | None) -> bool:
    if not condition:
        return False
    ((kind, value),) = condition.items()
    if kind in ("all", "any"):
        return any(_reads_head(c) for c in value)
    if kind == "not":
        return _reads_head(value)
    return kind in ("content_type", "meta")


# ---- prefixes -------------------------------------------------------------------------------------------


def _minimal(prefixes: Iterable[str]) -> tuple[str, ...]:
    """Sorted, without any prefix another one already covers."""
    kept: list[str] = []
    for prefix in sorted(set(prefixes)):
        if not kept or not prefix.startswith(kept[-1]):
            kept.append(prefix)
    return tuple(kept)


def _collapsed(prefixes: tuple[str, ...], limit: int) -> tuple[str, ...]:
    """At most `limit` prefixes covering `prefixes`: the longest are cut by a character until they fit."""
    while len(prefixes) > limit:
        longest = max(len(p) for p in prefixes)
        prefixes = _minimal(p[: longest - 1] if len(p) == longest else p for p in prefixes)
    return prefixes


def _intersect(first: tuple[str, ...], second: tuple[str, ...]) -> tuple[str, ...]:
    """The prefixes keys starting with one of `first` and one of `second` start with."""
    both = {a for a in first for b in second if a.startswith(b)}
    both |= {b for b in second for a in first if b.startswith(a)}
    return _minimal(both)


def _condition_prefixes(condition: Mapping[str, Any] | None) -> tuple[str, ...] | None:
    """The prefixes a condition bounds keys to, None when it does not bound them."""
    if not condition:
        return None
    ((kind, value),) = condition.items()
    if kind == "prefix":
        return _minimal([value] if isinstance(value, str) else value)
    if kind == "key_regex":
        return _regex_prefixes(value)
    if kind == "all":
        bounds = [b for b in (_condition_prefixes(c) for c in value) if b is not None]
        if not bounds:
            return None
        found = bounds[0]
        for bound in bounds[1:]:
            found = _intersect(found, bound)
        return found
    if kind == "any":
        parts = [_condition_prefixes(c) for c in value]
        if any(part is None for part in parts):
            return None
        return _minimal(p for part in parts if part is not None for p in part)
    return None  # not, suffix, extension, content_type, size, meta: keys anywhere


@cache
def _regex_prefixes(pattern: str | None) -> tuple[str, ...] | None:
    """The literal starts every match of an anchored pattern begins with; None when it has none."""
    if not pattern:
        return None
    try:
        parsed = _parser().parse(pattern)
    except Exception:  # a pattern only RE2 reads: no bound, the whole bucket is listed
        return None
    if _widening(parsed.state.flags):
        return None
    found = _anchored(list(parsed))
    if found is None or found == {""}:
        return None
    return _minimal(found)


def _parser() -> Any:
    try:
        from re import _parser as parser  # type: ignore[attr-defined]  # Python 3.11+
    except ImportError:  # Python 3.10, FC's python3.10 runtime
        import sre_parse as parser
    return parser


def _anchored(items: list[Any]) -> set[str] | None:
    """The starts of a sequence that must begin at the start of the key."""
    if not items:
        return None
    op, arg = items[0]
    name = str(op)
    if name == "AT" and str(arg) in ("AT_BEGINNING", "AT_BEGINNING_STRING"):
        return _literal_starts(items[1:])[0]
    if name == "BRANCH":
        found: set[str] = set()
        for alternative in arg[1]:
            starts = _anchored(list(alternative) + items[1:])
            if starts is None:
                return None
            found |= starts
        return found
    if name == "SUBPATTERN" and not _widening(arg[1]):
        return _anchored(list(arg[3]) + items[1:])
    return None


def _widening(flags: int) -> bool:
    """Flags under which a literal start bounds nothing: letters of either case, `^` after a newline."""
    return bool(flags & (re.IGNORECASE | re.MULTILINE))


def _literal_starts(items: list[Any]) -> tuple[set[str], bool]:
    """(starts, whole): every match of `items` begins with one of `starts`; `whole` when each start is
    all a match can be (so what follows may be appended)."""
    found = {""}
    for op, arg in items:
        name = str(op)
        if name == "LITERAL":
            found = {s + chr(arg) for s in found}
            continue
        if name == "IN":
            characters = _class_characters(arg)
            if (
                characters is None
                or len(characters) > MAX_CLASS
                or len(found) * len(characters) > MAX_PREFIXES
            ):
                return found, False
            found = {s + c for s in found for c in characters}
            continue
        if name == "SUBPATTERN" and not _widening(arg[1]):
            inner, whole = _literal_starts(list(arg[3]))
        elif name == "BRANCH":
            parts = [_literal_starts(list(alternative)) for alternative in arg[1]]
            inner = {s for starts, _ in parts for s in starts}
            whole = all(w for _, w in parts)
        elif name in ("MAX_REPEAT", "MIN_REPEAT") and arg[0] >= 1:
            inner, whole = _literal_starts(list(arg[2]))
            whole = whole and arg[0] == arg[1] == 1
        else:
            return found, False
        if len(found) * len(inner) > MAX_PREFIXES:
            return found, False
        found = {s + i for s in found for i in inner}
        if not whole:
            return found, False
    return found, True


def _class_characters(members: list[Any]) -> list[str] | None:
    characters: list[str] = []
    for op, arg in members:
        name = str(op)
        if name == "LITERAL":
            characters.append(chr(arg))
        elif name == "RANGE" and arg[1] - arg[0] < MAX_CLASS:
            characters.extend(chr(c) for c in range(arg[0], arg[1] + 1))
        else:  # NEGATE, a category such as \d: no literal start
            return None
    return characters


# ---- the filter on a listed key and size ------------------------------------------------------------------


def _may_match(rule: Rule, key: str, size: int | None) -> bool:
    spec = _spec(rule)
    if "key_regex" in spec and _compiled(spec["key_regex"]).search(key) is None:
        return False
    return _may(spec.get("when"), key, size) is not False


def _may(condition: Mapping[str, Any] | None, key: str, size: int | None) -> bool | None:
    """A condition judged on a key and size: True, False, or None when the listing cannot tell."""
    if not condition:
        return True
    ((kind, value),) = condition.items()
    listed = [value] if isinstance(value, str) else value
    if kind in ("all", "any"):
        answers = [_may(c, key, size) for c in value]
        decisive, other = (False, True) if kind == "all" else (True, False)
        if decisive in answers:
            return decisive
        return other if all(a is other for a in answers) else None
    if kind == "not":
        inner = _may(value, key, size)
        return None if inner is None else not inner
    if kind == "prefix":
        return key.startswith(tuple(listed))
    if kind == "suffix":
        return key.endswith(tuple(listed))
    if kind == "extension":
        return ObjectFacts(key).extension in {e.lower().lstrip(".") for e in listed}
    if kind == "key_regex":
        return _compiled(value).search(key) is not None
    if kind == "size" and size is not None:
        low, high = size_bytes(value.get("min", 0)), size_bytes(value["max"]) if "max" in value else None
        return (low is None or size >= low) and (high is None or size <= high)
    return None  # content_type, meta, or a size the listing did not give


@cache
def _compiled(pattern: str) -> Any:
    from .loader import _compile_regex

    return _compile_regex(pattern, "key_regex")


def _describe(condition: Mapping[str, Any]) -> str:
    ((kind, value),) = condition.items()
    if kind in ("all", "any"):
        joined = f" {'and' if kind == 'all' else 'or'} ".join(_describe(c) for c in value)
        return f"({joined})"
    if kind == "not":
        return f"not {_describe(value)}"
    if kind == "size":
        bounds = [
            f"size >= {value['min']}" if "min" in value else "",
            f"size <= {value['max']}" if "max" in value else "",
        ]
        return " and ".join(b for b in bounds if b)
    if kind == "meta":
        return " and ".join(f"metadata {name}" + _wanted(want) for name, want in value.items())
    shown = value if isinstance(value, str) else ", ".join(value)
    return f"{kind.replace('_', ' ')} {_quoted(shown)}"


def _wanted(want: Any) -> str:
    return "" if want is True else " absent" if want is False else f" = {_quoted(want)}"


def _quoted(value: Any) -> str:
    """`value` quoted as the rules file writes it, unescaped: whoever shows it escapes what must be."""
    text = str(value)
    quote = '"' if "'" in text and '"' not in text else "'"
    return f"{quote}{text}{quote}"
