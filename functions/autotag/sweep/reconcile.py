"""Reconcile one listed object: read its tags, prune the stale ones it owns, write only on change
(`reconcile_object`); or, in a pass after a change of rules, give it the full plan of the rules, as the
upload path does: derived tags added or changed, owned ones no longer derived removed, nobody else's touched
(`retag_object`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from ..facts import ObjectFacts
from ..gateway import ObjectGone, ObjectHead, PermanentOssError, SymlinkTargetGone
from ..ownership import object_digest, read_record
from ..planning import TagPlan, explain_unresolved, plan_tags, prune_tags, split_expired
from ..rules import RuleSet, derive_tags
from .gateway import ListedObject, SweepGateway
from .rules_watch import RulesWatch

# Outcomes
PRUNED = "pruned"  # stale tags removed (PutObjectTagging with the rest, or DeleteObjectTagging)
TAGGED = "tagged"  # the full plan written: tags added, changed or removed
PLANNED = "planned"  # a dry run found stale tags and wrote nothing
UNCHANGED = "unchanged"  # nothing stale
SKIPPED = "skipped"  # gone, or replaced since it was listed (its own upload event handles the new one)
REJECTED = "rejected"  # OSS refused the write (not retried)
RULES_CHANGED = "rules changed"  # the rules in force are not the pass's: nothing written, judged again

_FACTS_ONLY_HEAD_GIVES = frozenset({"content_type", "meta"})


REPLACED = "replaced since it was listed; its upload event tags it"


def _still_listed(listed: ListedObject, head: ObjectHead) -> bool:
    return head.etag == listed.etag and head.last_modified == listed.last_modified


@dataclass(frozen=True)
class Reconciled:
    listed: ListedObject
    outcome: str
    reason: str = ""
    plan: TagPlan | None = None
    deleted_all: bool = False  # DeleteObjectTagging was used: nothing remained
    foreign: bool = False  # left alone: its ownership record is not one this system wrote

    def summary(self) -> dict[str, object]:
        return {
            "key": self.listed.key,
            "versionId": self.listed.version_id,
            "outcome": self.outcome,
            "reason": self.reason,
            "removed": [{"key": r.key, "value": r.value, "reason": r.reason} for r in self.plan.removed]
            if self.plan
            else [],
            "remaining": self.plan.desired if self.plan else None,
            **(
                {"added": self.plan.added, "changed": {k: v[1] for k, v in self.plan.changed.items()}}
                if self.plan and (self.plan.added or self.plan.changed)
                else {}
            ),
        }


def reconcile_object(
    listed: ListedObject,
    rules: RuleSet,
    gateway: SweepGateway,
    clock: datetime,
    *,
    write: bool = True,
    watch: RulesWatch | None = None,
) -> Reconciled:
    """Raises TransientOssError when OSS keeps failing (the caller keeps the checkpoint before it). With a
    `watch` (rules kept in OSS), nothing is written unless the rules in force, asked after the tags were
    read, are still `rules`."""
    key, version = listed.key, listed.version_id
    try:
        facts = ObjectFacts(key, listed.size, last_modified=listed.last_modified)
        listed_digest = object_digest(listed.etag, listed.last_modified)
        # The tags are read last before the write, so nothing but the write's own round trip separates
        # them from it. Without a version id, tags are read and written on whatever object has the key
        # now: the record names the object the tags were written for, and when that is the listed one
        # no HEAD is needed; otherwise HEAD confirms the listed object is still there, so a newer upload's
        # tags are never judged by the old one. Rules that need metadata HEAD first anyway.
        if rules.needs & _FACTS_ONLY_HEAD_GIVES:
            head = gateway.head(key, version)
            if version is None and not _still_listed(listed, head):
                return Reconciled(listed, SKIPPED, REPLACED)
            facts = ObjectFacts(key, head.size, head.content_type, head.user_meta, head.last_modified)
        current = gateway.get_tags(key, version)
        ticket = watch.ticket() if watch is not None else 0  # only a check sent after this read vouches
        record = read_record(current, rules.ownership)
        if record.foreign:
            why = f"the tag {rules.ownership.tag!r} holds a value this system did not write ({record.why})"
            return Reconciled(listed, UNCHANGED, why, foreign=True)
        if not record.owned:
            return Reconciled(listed, UNCHANGED, "the object has no tags this system set")
        confirmed = record.written_for == listed_digest or bool(rules.needs & _FACTS_ONLY_HEAD_GIVES)
        if version is None and not confirmed:
            head = gateway.head(key, version)  # the record names no object, or an earlier one: HEAD
            if not _still_listed(listed, head):
                return Reconciled(listed, SKIPPED, REPLACED)
        live, expired = split_expired(derive_tags(rules, facts).tags, facts.last_modified, clock)
        plan = prune_tags(current, live, rules.ownership, expired)
        if not plan.needs_write:
            return Reconciled(listed, UNCHANGED, "nothing is stale", plan)
        return _written(listed, plan, PRUNED, rules, gateway, write, watch, ticket)
    except ObjectGone as gone:
        return Reconciled(listed, SKIPPED, f"the object is gone ({gone})")
    except PermanentOssError as refused:
        return Reconciled(listed, REJECTED, str(refused))


def retag_object(
    listed: ListedObject,
    rules: RuleSet,
    gateway: SweepGateway,
    clock: datetime,
    *,
    write: bool = True,
    watch: RulesWatch | None = None,
    reaches: Callable[[ObjectFacts], bool] | None = None,
) -> Reconciled:
    """The upload path's plan (tagger.tag_object) for a listed object: the object's facts from OSS (a HEAD
    when the rules need more than the key, or have TTLs), its tags, `plan_tags` at `clock`, a write only on
    change. Without a version id, an object replaced since it was listed is left to its own upload event.
    With a `watch`, nothing is written unless the rules in force, asked after the tags were read, are
    still `rules`. A selected pass passes `reaches` (reach.Affected.reaches): an object whose metadata,
    read by the HEAD, no changed rule matches derives what it did, and its tags are not read. Raises
    TransientOssError when OSS keeps failing."""
    key, version = listed.key, listed.version_id
    try:
        facts = ObjectFacts(key)
        written_for = ""
        if rules.needs or rules.ttls:
            try:
                head = gateway.head(key, version)
                symlink = head.object_type == "Symlink"  # HEAD answers with its target's ETag
                if version is None and not symlink and not _still_listed(listed, head):
                    return Reconciled(listed, SKIPPED, REPLACED)
                facts = ObjectFacts(key, head.size, head.content_type, head.user_meta, head.last_modified)
                if reaches is not None and not reaches(facts):
                    return Reconciled(listed, UNCHANGED, "no changed rule matches it: it derives what it did")
                if version is None and not symlink:
                    written_for = object_digest(head.etag, head.last_modified)
                current = gateway.get_tags(key, version) if head.tag_count else {}
            except SymlinkTargetGone:  # a dangling link is still there to tag, by its key alone
                current = gateway.get_tags(key, version)
        else:
            current = gateway.get_tags(key, version)
        ticket = watch.ticket() if watch is not None else 0  # only a check sent after this read vouches
        derivation = derive_tags(rules, facts)
        live, expired = split_expired(derivation.tags, facts.last_modified, clock)
        plan = explain_unresolved(
            plan_tags(current, live, rules.ownership, expired, written_for), derivation.unresolved
        )
        if plan.hands_off:
            return Reconciled(listed, UNCHANGED, plan.hands_off, foreign=True)
        if not plan.needs_write:
            return Reconciled(listed, UNCHANGED, "the object already has the derived tags", plan)
        return _written(listed, plan, TAGGED, rules, gateway, write, watch, ticket)
    except ObjectGone as gone:
        return Reconciled(listed, SKIPPED, f"the object is gone ({gone})")
    except PermanentOssError as refused:
        return Reconciled(listed, REJECTED, str(refused))


def _written(
    listed: ListedObject,
    plan: TagPlan,
    outcome: str,
    rules: RuleSet,
    gateway: SweepGateway,
    write: bool,
    watch: RulesWatch | None,
    ticket: int,
) -> Reconciled:
    """Write `plan` (a dry run writes nothing): with a `watch`, only when the rules in force, asked after
    the tags were read (`ticket`), are still `rules`; DeleteObjectTagging when no tag remains."""
    if not write:
        return Reconciled(listed, PLANNED, "dry run: nothing written", plan)
    if watch is not None:
        in_force = watch.in_force(ticket)
        if in_force.fingerprint != rules.fingerprint:
            why = f"the rules changed ({rules.fingerprint} to {in_force.fingerprint}) during the pass"
            return Reconciled(listed, RULES_CHANGED, why)
    if plan.desired:
        gateway.put_tags(listed.key, plan.desired, listed.version_id)
        return Reconciled(listed, outcome, "", plan)
    gateway.delete_tags(listed.key, listed.version_id)
    return Reconciled(listed, outcome, "", plan, deleted_all=True)
