"""Paging over sorted keys with OSS's prefix / delimiter / marker / max-keys semantics (pure)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field


@dataclass
class Page:
    keys: list[str] = field(default_factory=list)
    common_prefixes: list[str] = field(default_factory=list)
    is_truncated: bool = False
    next_marker: str = ""


def page(
    keys_after_marker: Iterable[str],
    *,
    prefix: str,
    delimiter: str,
    max_keys: int,
    marker: str = "",
    include: Callable[[str], bool] = lambda _key: True,
) -> Page:
    """One page of a listing. `keys_after_marker` is the bucket's sorted keys past the marker; keys and
    common prefixes both count toward `max_keys`, and `next_marker` is the last entry returned."""
    result = Page()
    count = 0
    for key in keys_after_marker:
        if not key.startswith(prefix):
            if key > prefix:
                break
            continue
        if not include(key):
            continue
        entry, is_prefix = key, False
        if delimiter:
            cut = key.find(delimiter, len(prefix))
            if cut >= 0:
                entry, is_prefix = key[: cut + len(delimiter)], True
                # Keys under a prefix already returned (on this page, or as the marker) are folded into it.
                if entry <= marker or (result.common_prefixes and result.common_prefixes[-1] == entry):
                    continue
        if count == max_keys:
            result.is_truncated = True
            break
        (result.common_prefixes if is_prefix else result.keys).append(entry)
        result.next_marker = entry
        count += 1
    return result
