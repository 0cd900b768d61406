"""An object as its page shows it: its tags, each the system's own (with the rule that derives it, its TTL
and when it expires) or someone else's, its metadata, and what `autotag plan` would do to it now.

`tag_rows` is pure: which tags the system owns is what the ownership record says (autotag.ownership's
reader, with the functions' record secrets, so the console trusts exactly the records the functions
trust); the rule and the TTL of an owned tag are what the rules in force derive for the object now, and
its expiry runs from the object's Last-Modified, as the sweep judges it. `read_object` does the reading,
through oss2 and the functions' own gateway, and plans with the plan command's core (`tag_object` with
`write=False`): it writes nothing."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from autotag.events import ObjectEvent
from autotag.facts import ObjectFacts
from autotag.gateway import ObjectGone, OssFailure, OssGateway
from autotag.ownership import Ownership, RecordReading, read_record
from autotag.rules import DerivedTag, RuleSet, derive_tags
from autotag.tagger import ObjectResult, tag_object

SYSTEM = "system"
RECORD = "record"
OTHER = "someone else"
_UNITS = (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


@dataclass(frozen=True)
class TagRow:
    key: str
    value: str
    owner: str  # SYSTEM, RECORD (the ownership record itself) or OTHER
    rule: str = ""  # for the system's own: the rule deriving it now ("" when none does any more)
    ttl: str = ""
    expires: str = ""  # ISO time, UTC


@dataclass
class ObjectView:
    bucket: str
    key: str
    exists: bool
    metadata: list[tuple[str, str]] = field(default_factory=list)
    tags: list[TagRow] = field(default_factory=list)
    record: RecordReading | None = None
    plan: ObjectResult | None = None
    problem: str = ""  # why part of the page could not be read


def duration(seconds: int) -> str:
    for unit, size in _UNITS:
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"  # pragma: no cover - every whole number of seconds divides by 1


def tag_rows(
    tags: Mapping[str, str],
    ownership: Ownership,
    derived: Mapping[str, DerivedTag],
    last_modified: datetime | None,
) -> tuple[list[TagRow], RecordReading]:
    reading = read_record(tags, ownership)
    rows = []
    for key in sorted(tags):
        value = tags[key]
        if key == ownership.tag and reading.state == "trusted":
            rows.append(TagRow(key, value, RECORD))
        elif key in reading.owned:
            tag = derived.get(key)
            ttl = tag.ttl_seconds if tag is not None else None
            expires = ""
            if ttl is not None and last_modified is not None:
                expires = (last_modified + timedelta(seconds=ttl)).isoformat().replace("+00:00", "Z")
            rule = tag.rule if tag is not None else ""
            rows.append(TagRow(key, value, SYSTEM, rule, duration(ttl) if ttl is not None else "", expires))
        else:
            rows.append(TagRow(key, value, OTHER))
    return rows, reading


def read_object(bucket: Any, key: str, rules: RuleSet, state_prefix: str) -> ObjectView:
    """The object `key` of the oss2 `bucket` as its page shows it (exists=False when there is none)."""
    view = ObjectView(bucket.bucket_name, key, exists=True)
    gateway = OssGateway(bucket)
    try:
        head = gateway.head(key)
    except ObjectGone:
        view.exists = False
        return view
    except OssFailure as error:
        view.problem = str(error)
        return view
    view.metadata = [
        ("Content-Type", head.content_type or ""),
        ("Size", f"{head.size} bytes"),
        ("Last-Modified", head.last_modified.isoformat().replace("+00:00", "Z")),
        ("ETag", head.etag),
        ("Object type", head.object_type),
        *((f"x-oss-meta-{name}", value) for name, value in sorted(head.user_meta.items())),
    ]
    try:
        tags = gateway.get_tags(key) if head.tag_count else {}
    except ObjectGone:
        view.exists = False
        return view
    except OssFailure as error:
        view.problem = str(error)
        return view
    facts = ObjectFacts(key, head.size, head.content_type, head.user_meta, head.last_modified)
    derived = derive_tags(rules, facts).tags
    view.tags, view.record = tag_rows(tags, rules.ownership, derived, head.last_modified)
    event = ObjectEvent("ObjectCreated:PutObject", bucket.bucket_name, key, region="")
    try:
        view.plan = tag_object(event, rules, gateway, write=False, ignored_prefix=state_prefix)
    except OssFailure as error:
        view.problem = str(error)
    return view
