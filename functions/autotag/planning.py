"""Planning a tag write: merge what the rules derived into the object's current tags (pure).

The upload path only ever adds tags or changes tags whose rule says `overwrite`: it never removes a tag
(removing stale tags is the expiry sweep's job), so tags the uploader or anyone else set survive. Values
and keys are sanitised to OSS's charset and lengths deterministically, and the 10-tag budget goes to the
current tags first, then to derived tags by priority."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from .oss_tags import MAX_KEY_LENGTH, MAX_TAGS, MAX_VALUE_LENGTH
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
class TagPlan:
    current: dict[str, str]
    desired: dict[str, str]
    added: dict[str, str] = field(default_factory=dict)
    changed: dict[str, tuple[str, str]] = field(default_factory=dict)  # key -> (old value, new value)
    kept: dict[str, str] = field(default_factory=dict)  # current tags left as they are
    dropped: tuple[DroppedTag, ...] = ()

    @property
    def needs_write(self) -> bool:
        return self.desired != self.current


def plan_tags(current: Mapping[str, str], derived: Mapping[str, DerivedTag]) -> TagPlan:
    desired = dict(current)
    added: dict[str, str] = {}
    changed: dict[str, tuple[str, str]] = {}
    dropped: list[DroppedTag] = []
    by_priority = sorted(derived.values(), key=lambda t: (-t.priority, t.key))
    for tag in by_priority:
        key, value = sanitise(tag.key, MAX_KEY_LENGTH), sanitise(tag.value, MAX_VALUE_LENGTH)
        if not key:
            dropped.append(DroppedTag(tag.key, tag.value, tag.rule, "the tag key is empty"))
            continue
        if key in desired:
            if desired[key] == value:
                continue
            if key in added or key in changed:
                dropped.append(
                    DroppedTag(
                        key, value, tag.rule, f"a higher-priority tag already set {key!r} to {desired[key]!r}"
                    )
                )
                continue
            if tag.conflict == OVERWRITE:
                changed[key] = (desired[key], value)
                desired[key] = value
            else:
                dropped.append(
                    DroppedTag(
                        key,
                        value,
                        tag.rule,
                        f"kept the existing value {desired[key]!r} (conflict policy keep-existing)",
                    )
                )
            continue
        if len(desired) >= MAX_TAGS:
            dropped.append(
                DroppedTag(
                    key,
                    value,
                    tag.rule,
                    f"the object already has {MAX_TAGS} tags, the OSS "
                    "limit (current tags and higher-priority rules come first)",
                )
            )
            continue
        desired[key] = added[key] = value
    kept = {k: v for k, v in current.items() if k not in changed}
    return TagPlan(dict(current), desired, added, changed, kept, tuple(dropped))
