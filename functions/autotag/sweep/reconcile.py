"""Reconcile one listed object: read its tags, prune the stale ones it owns, write only on change."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..facts import ObjectFacts
from ..gateway import ObjectGone, ObjectHead, PermanentOssError
from ..ownership import object_digest, read_record
from ..planning import TagPlan, prune_tags, split_expired
from ..rules import RuleSet, derive_tags
from .gateway import ListedObject, SweepGateway
from .rules_watch import RulesWatch

# Outcomes
PRUNED = "pruned"  # stale tags removed (PutObjectTagging with the rest, or DeleteObjectTagging)
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
        if not write:
            return Reconciled(listed, PLANNED, "dry run: nothing written", plan)
        if watch is not None:
            in_force = watch.in_force(ticket)
            if in_force.fingerprint != rules.fingerprint:
                why = f"the rules changed ({rules.fingerprint} to {in_force.fingerprint}) during the pass"
                return Reconciled(listed, RULES_CHANGED, why)
        if plan.desired:
            gateway.put_tags(key, plan.desired, version)
            return Reconciled(listed, PRUNED, "", plan)
        gateway.delete_tags(key, version)
        return Reconciled(listed, PRUNED, "", plan, deleted_all=True)
    except ObjectGone as gone:
        return Reconciled(listed, SKIPPED, f"the object is gone ({gone})")
    except PermanentOssError as refused:
        return Reconciled(listed, REJECTED, str(refused))
