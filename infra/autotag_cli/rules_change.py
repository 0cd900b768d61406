"""A change of rules as `autotag rules diff` and `autotag reconcile` show it: OLD and NEW read (a file or
an oss:// location, as every command reads rules), what changed rule by rule (autotag.rules.changes), which
prefixes and conditions the changed rules can reach (autotag.rules.reach), and what a selection of the
bucket read and kept with its estimated cost (backfill.selection, backfill.estimate).

What is shown is one document (`--json` prints it) and its text: what an operator copies — a prefix, a
location — on a line of its own, whole at any width."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from autotag.rules import RuleSet
from autotag.rules.changes import RulesDiff, diff_rules
from autotag.rules.engine import Rule
from autotag.rules.reach import ANYWHERE, Affected, affected_objects, describe_reach, rule_prefixes
from backfill.selection import Selection

from .console import counted, shown_as_written
from .errors import CliError
from .options import rules_from
from .target import Target


@dataclass(frozen=True)
class Change:
    """OLD and NEW, and what separates them."""

    old_source: str
    new_source: str
    old: RuleSet
    new: RuleSet
    diff: RulesDiff
    affected: Affected

    @property
    def new_reads_head(self) -> bool:
        """Whether tag_object HEADs each candidate under NEW: its rules read facts beyond the key or give
        tags a TTL (which runs from the object's Last-Modified)."""
        return bool(self.new.needs or self.new.ttls)


def compare(old: str, new: str, target: Target, *, new_for_functions: bool = False) -> Change:
    """OLD and NEW read (files, `default`, or oss:// at `target`) and compared. `new_for_functions`: NEW
    must be what the functions can load (JSON), as the rules a run tags with."""
    before = _read("OLD", old, target, False)
    after = _read("NEW", new, target, new_for_functions)
    diff = diff_rules(before, after)
    return Change(old, new, before, after, diff, affected_objects(diff))


def _read(which: str, path: str, target: Target, functions_read: bool) -> RuleSet:
    """The rules at `path`; a failure names which side it is (the loader names the file or location)."""
    try:
        return rules_from(path, target, functions_read=functions_read)
    except CliError as error:  # keeps its exit code: bad input, or OSS unreachable
        error.message = f"{which} {error.message.removeprefix('AUTOTAG_RULES ')}"
        raise


def _rules(source: str, rules: RuleSet) -> dict[str, Any]:
    return {"source": source, "rules": len(rules.rules), "fingerprint": rules.fingerprint}


def reach_document(change: Change) -> dict[str, Any]:
    """What changed and what it can reach, as JSON."""
    affected = change.affected
    changes = []
    for rule_change in change.diff.changes:
        prefixes = sorted({p for rule in rule_change.versions for p in rule_prefixes(rule)})
        changes.append(
            {
                "rule": rule_change.name,
                "change": rule_change.kind,
                "before": describe_reach(rule_change.before) if rule_change.before else None,
                "after": describe_reach(rule_change.after) if rule_change.after else None,
                "prefixes": prefixes,
            }
        )
    whole = affected.everything or affected.prefixes == ANYWHERE
    return {
        "old": _rules(change.old_source, change.old),
        "new": _rules(change.new_source, change.new),
        "unchanged": change.diff.unchanged,
        "changes": changes,
        "prefixes": list(affected.prefixes),
        "wholeBucket": whole,
        "whyWholeBucket": _why_whole(change) if whole else None,
        "headNeeded": affected.head_needed,
        "newRulesHeadEachObject": change.new_reads_head,
        "removalOnly": affected.removal_only,
    }


def _why_whole(change: Change) -> str:
    if change.diff.everything:
        return str(change.diff.everything)
    reasons = []
    for rule_change in change.diff.changes:
        unbounded = [rule for rule in rule_change.versions if rule_prefixes(rule) == ANYWHERE]
        if unbounded:
            reasons.append(f"{rule_change.name!r} {_why_unbounded(unbounded[0])}")
    return "; ".join(reasons) or "a changed rule can match a key anywhere: no key prefix bounds it"


def _why_unbounded(rule: Rule) -> str:
    """Why no key prefix bounds `rule`: what its key pattern does (by its flags and anchor), or that it
    has no key condition a prefix comes from."""
    for pattern in _patterns(json.loads(rule.definition)["rule"] if rule.definition else {}):
        try:
            flags = re.compile(pattern).flags
        except re.error:
            continue
        if flags & re.IGNORECASE:
            return "has a key pattern that is case-insensitive: no one literal start to list"
        if flags & re.MULTILINE:
            return "has a key pattern that is multi-line: ^ also matches after a newline inside a key"
        if not pattern.startswith("^"):
            return "has a key pattern that is not anchored (no leading ^): it can match a key anywhere"
    return "can match a key anywhere: no key prefix bounds it"


def _patterns(spec: Any) -> list[str]:
    """Every key_regex in a rule's definition, its own and its conditions'."""
    if isinstance(spec, list):
        return [p for item in spec for p in _patterns(item)]
    if not isinstance(spec, dict):
        return []
    found = [spec["key_regex"]] if isinstance(spec.get("key_regex"), str) else []
    return found + [p for key, value in spec.items() if key != "key_regex" for p in _patterns(value)]


def _prefix_line(prefix: str) -> str:
    return 'prefix: "" (the whole bucket)' if prefix == "" else f"prefix: {prefix}"


def reach_lines(document: dict[str, Any]) -> list[str]:
    """The reach document as text, one fact a line; prefixes each on a line of their own."""
    old, new = document["old"], document["new"]
    lines = [
        f"OLD: {old['rules']} rules, fingerprint {old['fingerprint']}",
        f"NEW: {new['rules']} rules, fingerprint {new['fingerprint']}",
    ]
    if document["unchanged"]:
        lines.append("OLD and NEW derive the same tags for every object: nothing to reconcile")
        return lines
    for entry in document["changes"]:
        lines.append(f"{entry['change']} rule: {entry['rule']}")
        # conditions as the rules file writes them: a pattern's backslashes not doubled, controls escaped
        if entry["before"] == entry["after"]:  # the same objects; what the rule gives them changed
            lines += [shown_as_written(f"  matches: {condition}") for condition in entry["after"]]
            continue
        for side in ("before", "after"):
            for condition in entry[side] or []:
                lines.append(shown_as_written(f"  {side}: {condition}"))
    if document["wholeBucket"]:
        lines.append(f"whole bucket: yes: {document['whyWholeBucket']}")
    else:
        under = counted(len(document["prefixes"]), "prefix", "prefixes")
        lines.append(f"whole bucket: no; only keys under {under} can change:")
    lines += [_prefix_line(prefix) for prefix in document["prefixes"]]
    if not document["prefixes"]:
        lines.append("no key can match a changed rule: nothing to list")
    if document["headNeeded"]:
        lines.append("a changed rule reads the content type or metadata: candidates are judged after a HEAD")
    if document["removalOnly"]:
        lines.append("the change only removes tags: an object with no tags at all needs nothing")
    return lines


def selection_lines(selection: Selection, estimate: dict[str, Any] | None) -> list[str]:
    """What a selection read and kept (and, given, its estimated cost), one fact a line."""
    source = "listed" if selection.source == "listing" else "read from the inventory"
    lines = [
        f"objects {source}: {selection.listed:,}",
        f"candidates (a changed rule may reach them): {selection.candidates:,}",
    ]
    if selection.untagged:
        lines.append(f"passed over, no tags at all (inventory TaggingCount 0): {selection.untagged:,}")
    lines.append(f"selection requests (list pages, inventory files): {selection.requests:,}")
    if selection.source != "listing":
        lines.append(f"inventory: {selection.source}")
    if not selection.complete:
        lines.append(f"the sample stopped at {selection.listed:,} objects, after the key:")
        lines.append(f"key: {selection.stopped_after}")
        lines.append("so every figure is a lower bound (a larger --sample lists more)")
    if estimate is not None:
        per = estimate["perCandidate"]
        scope = " of the sample" if estimate["lowerBound"] else ""
        lines += [
            f"OSS requests{scope}, at most: {estimate['requestsAtMost']:,} "
            f"({estimate['requestsPerListedObject']:.2f} per listed object)",
            f"  HeadObject {per['HeadObject']:,}, GetObjectTagging {per['GetObjectTagging']:,}, "
            f"PutObjectTagging {per['PutObjectTagging']:,}",
            f"time{scope}: {estimate['seconds']:,} s at {estimate['objectsPerSecond']:,} objects/s",
            f"  rate from: {estimate['rateSource']}",
        ]
    return lines
