"""What changed between two rule sets, rule by rule (pure).

Rules are matched by name (names are unique in a rules file). A rule is `added` or `removed` when only one
side has it, `changed` when its definition differs (its description aside, the file's defaults included),
and `moved` when only its order against the other rules changed: derive_tags lets the earlier of two rules
with one priority win a tag key, so an order change can change what objects both rules match get. Which
unchanged rules moved is decided by the longest run of them that kept its order; the others moved.

A change of the ownership record's key or of the protected keys changes how every object's tags are
planned, not what rules derive: it reaches every object (`everything` says why). Under another key, the
records the system wrote are no longer read as its own: `ownership_moved` says so, and a reconcile refuses."""

from __future__ import annotations

from dataclasses import dataclass

from ..oss_tags import MAX_KEY_LENGTH
from ..planning import sanitise
from .engine import Rule, RuleSet

ADDED = "added"
REMOVED = "removed"
CHANGED = "changed"
MOVED = "moved"


@dataclass(frozen=True)
class RuleChange:
    name: str
    kind: str  # ADDED, REMOVED, CHANGED or MOVED
    before: Rule | None
    after: Rule | None

    @property
    def versions(self) -> tuple[Rule, ...]:
        """The rule as it was and as it is, where it exists: the objects either matches may change."""
        return tuple(rule for rule in (self.before, self.after) if rule is not None)


@dataclass(frozen=True)
class RulesDiff:
    changes: tuple[RuleChange, ...]
    everything: str = ""  # why every object may be affected, "" when the changed rules alone decide
    remaining_keys: frozenset[str] = frozenset()  # the tag keys (as OSS gets them) the rules after give

    ownership_moved: bool = False  # the ownership record's key changed: what the system set is orphaned

    @property
    def unchanged(self) -> bool:
        return not self.changes and not self.everything


def diff_rules(before: RuleSet, after: RuleSet) -> RulesDiff:
    """The changes that take `before` to `after`, in the order of `after` (removed rules last)."""
    old = {rule.name: rule for rule in before.rules}
    new = {rule.name: rule for rule in after.rules}
    same = [name for name in new if name in old and old[name].definition == new[name].definition]
    kept_order = set(_longest_common_run([n for n in old if n in same], same))
    changes: list[RuleChange] = []
    for name, rule in new.items():
        if name not in old:
            changes.append(RuleChange(name, ADDED, None, rule))
        elif old[name].definition != rule.definition:
            changes.append(RuleChange(name, CHANGED, old[name], rule))
        elif name not in kept_order:
            changes.append(RuleChange(name, MOVED, old[name], rule))
    changes.extend(RuleChange(name, REMOVED, rule, None) for name, rule in old.items() if name not in new)
    remaining = frozenset(sanitise(tag.key, MAX_KEY_LENGTH) for rule in after.rules for tag in rule.tags)
    moved = before.ownership.tag != after.ownership.tag
    return RulesDiff(tuple(changes), _everything(before, after), remaining, moved)


def _everything(before: RuleSet, after: RuleSet) -> str:
    if before.ownership.tag != after.ownership.tag:
        return (
            f"the ownership record's key changed ({before.ownership.tag!r} to {after.ownership.tag!r}): the "
            f"tags the system set are recorded under {before.ownership.tag!r}, and under the new rules they "
            "are no longer its own (no reconcile moves them; docs/reconcile.md#the-ownership-tag)"
        )
    if before.ownership.protected != after.ownership.protected:
        return "the protected keys changed: which owned tags may be removed changed on every object"
    return ""


def _longest_common_run(first: list[str], second: list[str]) -> list[str]:
    """The longest subsequence of both lists (the rules that kept their order against each other)."""
    lengths = [[0] * (len(second) + 1) for _ in range(len(first) + 1)]
    for i in range(len(first) - 1, -1, -1):
        for j in range(len(second) - 1, -1, -1):
            lengths[i][j] = (
                lengths[i + 1][j + 1] + 1
                if first[i] == second[j]
                else max(lengths[i + 1][j], lengths[i][j + 1])
            )
    run: list[str] = []
    i = j = 0
    while i < len(first) and j < len(second):
        if first[i] == second[j]:
            run.append(first[i])
            i, j = i + 1, j + 1
        elif lengths[i + 1][j] >= lengths[i][j + 1]:
            i += 1
        else:
            j += 1
    return run
