"""Which of an object's tags this system owns (pure).

OSS keeps no author per tag, so the system writes its own record next to the tags it sets: one tag (by
default `autotag`) whose value lists the keys it set, separated by spaces, e.g. `autotag=kind project size`.
Only keys in that record are ever changed or removed by the system; every other tag belongs to someone
else. The record costs one of the 10 tags and is at most 256 characters (rules' tag keys contain no
spaces, so the list is unambiguous)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .oss_tags import MAX_VALUE_LENGTH

DEFAULT_OWNERSHIP_TAG = "autotag"


@dataclass(frozen=True)
class Ownership:
    """The record's tag key, and keys the system never removes even when it owns them (configured in the
    rules file: `ownership_tag`, `protected_keys`)."""

    tag: str = DEFAULT_OWNERSHIP_TAG
    protected: frozenset[str] = frozenset()


def owned_keys(tags: Mapping[str, str], ownership_tag: str) -> frozenset[str]:
    """The keys the record claims that the object actually has (a stale record entry claims nothing)."""
    record = tags.get(ownership_tag)
    if not record:
        return frozenset()
    return frozenset(key for key in record.split(" ") if key and key in tags and key != ownership_tag)


def ownership_record(keys: Iterable[str]) -> str:
    """The record's value for `keys`: sorted, so the same ownership always gives the same value."""
    return " ".join(sorted(set(keys)))


def record_fits(keys: Iterable[str]) -> bool:
    return len(ownership_record(keys)) <= MAX_VALUE_LENGTH


DEFAULT_OWNERSHIP = Ownership()
