"""Planning a tag write: reconcile what the rules derive with the object's current tags (pure).

One planner serves the upload path and the expiry sweep. It only ever changes or removes tags the system
owns (listed in a trusted ownership record, see ownership.py): a tag the uploader or anyone else set is never
removed, and changed only by a rule whose conflict policy says `overwrite` (the tag is then the system's).
When the record's key holds something the system did not write, nothing on the object is changed at all.
Owned tags the rules no longer derive, or whose TTL has passed, are removed unless their key is protected.
Keys and values are sanitised to OSS's charset and lengths deterministically, and the 10-tag budget goes to
the current tags first, then to derived tags by priority; the record is counted in it whenever the write
makes the system own something (a planned tag set never exceeds OSS's limits)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from .oss_tags import MAX_KEY_LENGTH, MAX_TAGS, MAX_VALUE_LENGTH
from .ownership import DEFAULT_OWNERSHIP, Ownership, ownership_record, read_record, record_fits
from .rules.engine import OVERWRITE, DerivedTag

_DISALLOWED = re.compile(r"[^\w +\-=.:/]")


def sanitise(text: str, limit: int) -> str:
    """`text` in OSS's tag charset (each other character becomes `_`), cut to `limit` characters."""
    return _DISALLOWED.sub("_", text)[:limit]


@dataclass(frozen=True)
class DroppedTag:
    key: str
    value: str
    rule: str
    reason: str


@dataclass(frozen=True)
class RemovedTag:
    key: str
    value: str
    reason: str


@dataclass(frozen=True)
class TagPlan:
    current: dict[str, str]
    desired: dict[str, str]
    added: dict[str, str] = field(default_factory=dict)
    changed: dict[str, tuple[str, str]] = field(default_factory=dict)  # key -> (old value, new value)
    kept: dict[str, str] = field(default_factory=dict)  # current tags left as they are (record aside)
    removed: tuple[RemovedTag, ...] = ()
    dropped: tuple[DroppedTag, ...] = ()
    owned: frozenset[str] = frozenset()  # keys the system owns after the write
    hands_off: str = ""  # why nothing on this object may be changed (a record the system did not write)

    @property
    def needs_write(self) -> bool:
        return self.desired != self.current


def split_expired(
    derived: Mapping[str, DerivedTag], created: datetime | None, clock: datetime | None
) -> tuple[dict[str, DerivedTag], dict[str, DerivedTag]]:
    """(live, expired): a tag's TTL runs from the object version's creation (its Last-Modified), so the
    moment it expires is known from a listing, without reading tags."""
    if created is None or clock is None:
        return dict(derived), {}
    live: dict[str, DerivedTag] = {}
    expired: dict[str, DerivedTag] = {}
    for key, tag in derived.items():
        ends = None if tag.ttl_seconds is None else created + timedelta(seconds=tag.ttl_seconds)
        (expired if ends is not None and ends <= clock else live)[key] = tag
    return live, expired


def plan_tags(
    current: Mapping[str, str],
    derived: Mapping[str, DerivedTag],
    ownership: Ownership = DEFAULT_OWNERSHIP,
    expired: Mapping[str, DerivedTag] | None = None,
    written_for: str = "",
) -> TagPlan:
    """The tag set the object should have. `derived` holds the live derived tags, `expired` those whose
    TTL has passed (they are removed when owned, never added); the record names `written_for` (the
    object's digest, "" when unknown)."""
    record_key = ownership.tag
    reading = read_record(current, ownership)
    if reading.foreign:
        return _hands_off(current, record_key, reading.why, derived)
    owned = set(reading.owned)
    desired = dict(current)
    added: dict[str, str] = {}
    changed: dict[str, tuple[str, str]] = {}
    dropped: list[DroppedTag] = []
    removed: list[RemovedTag] = []
    decided: set[str] = set()
    wanted = {sanitise(t.key, MAX_KEY_LENGTH) for t in derived.values()}
    expired_keys = {sanitise(t.key, MAX_KEY_LENGTH): t for t in (expired or {}).values()}

    for key in sorted(owned - wanted - ownership.protected):
        removed.append(RemovedTag(key, desired.pop(key), _stale_reason(key, expired_keys, {})))
        owned.discard(key)

    for tag in sorted(derived.values(), key=lambda t: (-t.priority, t.key)):
        key, value = sanitise(tag.key, MAX_KEY_LENGTH), sanitise(tag.value, MAX_VALUE_LENGTH)
        problem = _unusable_key(key, record_key)
        if problem:
            dropped.append(DroppedTag(tag.key, tag.value, tag.rule, problem))
            continue
        if key in decided:  # two derived keys that sanitise alike: the first (higher priority) decides
            reason = f"a higher-priority tag already decided {key!r}"
            dropped.append(DroppedTag(key, value, tag.rule, reason))
            continue
        decided.add(key)
        exists = key in desired
        if exists and desired[key] == value:
            continue
        if exists and key not in owned and tag.conflict != OVERWRITE:
            reason = f"kept the existing value {desired[key]!r} (conflict policy keep-existing)"
        elif not _fits(desired, record_key, new_key=not exists):
            reason = (
                f"the object would have more than {MAX_TAGS} tags, the OSS limit (current tags and "
                "higher-priority rules come first; the ownership record takes one)"
            )
        elif not record_fits(owned | {key}):
            reason = "the ownership record would exceed 256 characters"
        else:
            if exists:
                changed[key] = (desired[key], value)
            else:
                added[key] = value
            desired[key] = value
            owned.add(key)
            continue
        dropped.append(DroppedTag(key, value, tag.rule, reason))

    for key, tag in sorted(expired_keys.items()):
        if key not in current:
            dropped.append(DroppedTag(key, tag.value, tag.rule, "its TTL has already passed"))

    # The record names the object only when a write happens anyway: a replay or a new object with the
    # same derived tags costs no write (the sweep then confirms that object by HEAD).
    _set_record(desired, owned, ownership, reading.written_for)
    if desired != current:
        _set_record(desired, owned, ownership, written_for)
    untouched = changed.keys() | {r.key for r in removed} | {record_key}
    kept = {k: v for k, v in current.items() if k not in untouched}
    return TagPlan(
        dict(current), desired, added, changed, kept, tuple(removed), tuple(dropped), frozenset(owned)
    )


def explain_unresolved(plan: TagPlan, unresolved: tuple[tuple[str, str, str], ...]) -> TagPlan:
    """`plan` with the tags a matching rule could not produce (rule, key, why) among the dropped, so the
    summary says why each is missing. A key another rule produced is not missing."""
    produced = {d.key for d in plan.dropped} | plan.added.keys() | plan.changed.keys() | plan.owned
    extra = tuple(DroppedTag(key, "", rule, why) for rule, key, why in unresolved if key not in produced)
    return replace(plan, dropped=plan.dropped + extra) if extra else plan


def _fits(desired: Mapping[str, str], record_key: str, *, new_key: bool) -> bool:
    """Whether one more owned tag (a new key, or a value taken over) fits in OSS's limit, counting the
    ownership record the write will then carry."""
    others = len(desired) - (record_key in desired)
    return others + new_key + 1 <= MAX_TAGS


def _hands_off(
    current: Mapping[str, str], record_key: str, why: str, derived: Mapping[str, DerivedTag]
) -> TagPlan:
    reason = (
        f"the tag {record_key!r} holds a value this system did not write ({why}): the object's tags are "
        "left as they are"
    )
    return TagPlan(
        dict(current),
        dict(current),
        kept={k: v for k, v in current.items()},
        dropped=tuple(DroppedTag(t.key, t.value, t.rule, reason) for t in derived.values()),
        hands_off=reason,
    )


def prune_tags(
    current: Mapping[str, str],
    derived: Mapping[str, DerivedTag],
    ownership: Ownership = DEFAULT_OWNERSHIP,
    expired: Mapping[str, DerivedTag] | None = None,
) -> TagPlan:
    """The sweep's plan: remove owned tags that are stale (TTL passed, or the rules no longer derive that
    value for this object), unless protected. It adds nothing and changes no value: adding is the upload
    path's and the backfill's, so a sweep never writes tags an object did not have."""
    record_key = ownership.tag
    reading = read_record(current, ownership)
    if reading.foreign:
        return _hands_off(current, record_key, reading.why, {})
    owned = set(reading.owned)
    live = {sanitise(t.key, MAX_KEY_LENGTH): sanitise(t.value, MAX_VALUE_LENGTH) for t in derived.values()}
    expired_keys = {sanitise(t.key, MAX_KEY_LENGTH): t for t in (expired or {}).values()}
    desired = dict(current)
    removed: list[RemovedTag] = []
    for key in sorted(owned - ownership.protected):
        if live.get(key) == current[key]:
            continue
        removed.append(RemovedTag(key, desired.pop(key), _stale_reason(key, expired_keys, live)))
        owned.discard(key)
    if removed:  # the record is rewritten only with the tags, still naming the object it named
        _set_record(desired, owned, ownership, reading.written_for)
    kept = {k: v for k, v in desired.items() if k != record_key}
    return TagPlan(dict(current), desired, kept=kept, removed=tuple(removed), owned=frozenset(owned))


def _stale_reason(key: str, expired: Mapping[str, DerivedTag], live: Mapping[str, str]) -> str:
    if key in expired:
        return f"its TTL ({_duration(expired[key].ttl_seconds)} from Last-Modified) has passed"
    if key in live:
        return f"the rules now derive {live[key]!r} for it"
    return "no current rule derives it for this object"


def _set_record(desired: dict[str, str], owned: set[str], ownership: Ownership, written_for: str) -> None:
    """The ownership record lists what is owned, sealed over its values, and goes when nothing is."""
    if owned:
        desired[ownership.tag] = ownership_record(desired, owned, ownership, written_for)
    else:
        desired.pop(ownership.tag, None)


def _unusable_key(key: str, record_key: str) -> str:
    if not key:
        return "the tag key is empty"
    if " " in key:
        return "the tag key contains a space (the ownership record separates keys with spaces)"
    if key == record_key:
        return f"{key!r} is the ownership record's key"
    return ""


def _duration(seconds: int | None) -> str:
    if seconds is None:
        return "none"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
