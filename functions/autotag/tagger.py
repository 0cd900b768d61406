"""Tag one created object: read only what the rules need, plan, write only when the tag set changes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from .events import ObjectEvent
from .facts import ObjectFacts
from .gateway import ObjectGone, ObjectHead, OssGateway, PermanentOssError, SymlinkTargetGone
from .ownership import object_digest
from .planning import TagPlan, explain_unresolved, plan_tags, split_expired
from .rules import RuleSet, derive_tags

# Outcomes in summaries and logs.
TAGGED = "tagged"  # tags written
UNCHANGED = "unchanged"  # the object already had the derived tags: nothing written
PLANNED = "planned"  # a dry run found changes and wrote nothing
SKIPPED = "skipped"  # the object is gone, or its tags are not the system's to change (a foreign record)
IGNORED = "ignored"  # the event leaves no object to tag (multipart initiate and parts, removals)
REJECTED = "rejected"  # OSS refused the request for good (a missing bucket, refused tags): not retried
FAILED = "failed"  # OSS kept failing or refused the credentials; the handler raises so FC retries the event


@dataclass
class ObjectResult:
    event: ObjectEvent
    outcome: str
    reason: str = ""
    plan: TagPlan | None = None
    requests: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        plan = self.plan
        return {
            "bucket": self.event.bucket,
            "key": self.event.key,
            "versionId": self.event.version_id,
            "eventName": self.event.event_name,
            "outcome": self.outcome,
            "reason": self.reason,
            "added": plan.added if plan else {},
            "changed": {k: {"from": old, "to": new} for k, (old, new) in plan.changed.items()}
            if plan
            else {},
            "kept": plan.kept if plan else {},
            "removed": [{"key": r.key, "value": r.value, "reason": r.reason} for r in plan.removed]
            if plan
            else [],
            "dropped": [
                {"key": d.key, "value": d.value, "rule": d.rule, "reason": d.reason} for d in plan.dropped
            ]
            if plan
            else [],
            "ossRequests": self.requests,
            **({"replayOf": self.event.replay_of} if self.event.replay_of else {}),
            **({"element": self.event.element} if self.event.element is not None else {}),
        }


def _same_etag(first: str, second: str) -> bool:
    return first.strip().strip('"').upper() == second.strip().strip('"').upper()


def _replaced_since_event(event: ObjectEvent, head: ObjectHead) -> str:
    """Why the object HEAD found is not the one the event is about ("" when it is, or cannot be told).
    Without a version id the key may have been overwritten, appended to or copied onto since the event
    was sent: tags read now would belong to that newer object, and its own event tags it. The eTag the
    event carries is the check (a symlink's HEAD answers with its target's ETag, so links go unchecked)."""
    if event.version_id or not event.etag or head.object_type == "Symlink":
        return ""
    if _same_etag(event.etag, head.etag):
        return ""
    return (
        f"replaced since its event (the event's ETag {event.etag.strip(chr(34))}, now "
        f"{head.etag.strip(chr(34))}): the newer object's own event tags it"
    )


def tag_object(
    event: ObjectEvent,
    rules: RuleSet,
    gateway: OssGateway,
    *,
    write: bool = True,
    clock: datetime | None = None,
    ignored_prefix: str = "",
    reaches: Callable[[ObjectFacts], bool] | None = None,
) -> ObjectResult:
    """Tag the object of a created-object event (with `write=False`, only plan). The event names the
    object; its facts are what OSS answers for it. TTLs run from its Last-Modified (when the version was
    created; unknown for a dangling symlink, whose TTL tags the sweep judges) and tags already expired at
    `clock` are not added. `clock`
    defaults to OSS's clock, the `Date` of the answers just read (as the sweep judges expiry; no request is
    added for it), and to this machine's clock only when no answer carried one. A reconcile passes
    `reaches` (reach.Affected.reaches): an object whose metadata, read by the HEAD, no changed rule matches
    derives what it did, and its tags are not read. Raises TransientOssError when OSS keeps failing."""
    if not event.creates_object:
        return ObjectResult(event, IGNORED, f"{event.event_name} leaves no finished object to tag")
    if ignored_prefix and event.key.startswith(ignored_prefix):
        return ObjectResult(event, IGNORED, f"keys under {ignored_prefix!r} hold the sweep's own state")
    try:
        event.key.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate from a JSON escape: no OSS key is named so
        return ObjectResult(event, REJECTED, f"the key is not valid UTF-8 (character {exc.start})")
    before = gateway.requests
    # An event's size, metadata and time are whatever its sender wrote: a queue producer, anyone who may
    # invoke the function. Only its bucket, key and version say which object to ask OSS about, and OSS's
    # answers are the facts (docs/tag-on-upload.md, "Trust").
    facts = ObjectFacts(key=event.key)
    plan: TagPlan | None = None
    written_for = ""  # which object the tags are for, in the record (unversioned keys, after a HEAD)
    try:
        if rules.needs or rules.ttls:  # facts beyond the key, or when the object was created (TTLs)
            try:
                # HEAD carries the metadata and x-oss-tagging-count: GetObjectTagging only for tags.
                head = gateway.head(event.key, event.version_id)
                replaced = _replaced_since_event(event, head)
                if replaced:
                    return ObjectResult(event, SKIPPED, replaced, None, gateway.requests - before)
                facts = ObjectFacts(
                    event.key, head.size, head.content_type, head.user_meta, head.last_modified
                )
                if reaches is not None and not reaches(facts):
                    why = "the rules change does not reach it: no changed rule matches its metadata"
                    return ObjectResult(event, UNCHANGED, why, None, gateway.requests - before)
                if event.version_id is None and head.object_type != "Symlink":
                    written_for = object_digest(head.etag, head.last_modified)
                current = gateway.get_tags(event.key, event.version_id) if head.tag_count else {}
            except SymlinkTargetGone:  # a dangling link is still there to tag, by its key alone: OSS
                current = gateway.get_tags(event.key, event.version_id)  # answers nothing else of it
        else:
            current = gateway.get_tags(event.key, event.version_id)
        created = facts.last_modified
        now = clock or gateway.oss_now() or datetime.now(timezone.utc)
        derivation = derive_tags(rules, facts)
        live, expired = split_expired(derivation.tags, created, now)
        planned = plan_tags(current, live, rules.ownership, expired, written_for)
        plan = explain_unresolved(planned, derivation.unresolved)
        if plan.hands_off:
            return ObjectResult(event, SKIPPED, plan.hands_off, plan, gateway.requests - before)
        if not plan.needs_write:
            return ObjectResult(
                event, UNCHANGED, "the object already has the derived tags", plan, gateway.requests - before
            )
        if not write:
            return ObjectResult(event, PLANNED, "dry run: nothing written", plan, gateway.requests - before)
        gateway.put_tags(event.key, plan.desired, event.version_id)
    except ObjectGone as gone:
        return ObjectResult(event, SKIPPED, f"the object is gone ({gone})", None, gateway.requests - before)
    except PermanentOssError as refused:
        return ObjectResult(event, REJECTED, str(refused), plan, gateway.requests - before)
    return ObjectResult(event, TAGGED, "", plan, gateway.requests - before)
