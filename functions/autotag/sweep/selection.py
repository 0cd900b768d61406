"""Which objects a pass lists, and which listed ones it must read (pure).

A listing shows key, size and Last-Modified but no tags. TTLs run from Last-Modified, so the moment each
derived tag can expire is known from the listing alone: an incremental pass over (since, clock] reads only
objects for which a rule that may match them has a TTL ending inside that window. A full pass (first run,
or the rules changed) reads every object. A selected pass (after a change of rules) lists only the prefixes
the change can reach, in the scope (`selected_prefixes`), one after another from where it stopped
(`listing_starts`), and reads only the keys the change may reach (rules/reach.py, Affected.may_reach)."""

from __future__ import annotations

from datetime import datetime, timedelta

from ..facts import ObjectFacts
from ..rules.engine import RuleSet, expiry_horizons
from .checkpoint import Position
from .gateway import ListedObject


def is_candidate(rules: RuleSet, listed: ListedObject, since: datetime | None, clock: datetime) -> bool:
    if since is None:
        return True
    facts = ObjectFacts(listed.key, listed.size, last_modified=listed.last_modified)
    return any(
        since < listed.last_modified + timedelta(seconds=ttl) <= clock
        for ttl in expiry_horizons(rules, facts)
    )


def selected_prefixes(affected: tuple[str, ...], scope_prefix: str) -> tuple[str, ...]:
    """The prefixes a selected pass lists in a scope under `scope_prefix`: each affected prefix inside it
    (the scope's prefix itself for an affected one wider than it), sorted, none under another."""
    inside = set()
    for prefix in affected:
        if prefix.startswith(scope_prefix):
            inside.add(prefix)
        elif scope_prefix.startswith(prefix):
            inside.add(scope_prefix)
    chosen: list[str] = []
    for prefix in sorted(inside):  # a prefix's extensions follow it at once in sorted order
        if not (chosen and prefix.startswith(chosen[-1])):
            chosen.append(prefix)
    return tuple(chosen)


def listing_starts(prefixes: tuple[str, ...], position: Position) -> list[tuple[str, Position]]:
    """Where to list each of `prefixes` (sorted, none under another) from, to go on after `position`: a
    prefix whose every key sorts below the position's key is done, and later ones are listed after it too
    (keys under them all sort above it)."""
    starts = []
    for prefix in prefixes:
        marker = position.key
        if marker > prefix and not marker.startswith(prefix):
            continue  # it differs from the prefix at a greater character: above every key under it
        starts.append((prefix, position if marker.startswith(prefix) else Position(marker)))
    return starts
