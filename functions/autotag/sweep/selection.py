"""Which listed objects a pass must read (pure).

A listing shows key, size and Last-Modified but no tags. TTLs run from Last-Modified, so the moment each
derived tag can expire is known from the listing alone: an incremental pass over (since, clock] reads only
objects for which a rule that may match them has a TTL ending inside that window. A full pass (first run,
or the rules changed) reads every object."""

from __future__ import annotations

from datetime import datetime, timedelta

from ..facts import ObjectFacts
from ..rules.engine import RuleSet, expiry_horizons
from .gateway import ListedObject


def is_candidate(rules: RuleSet, listed: ListedObject, since: datetime | None, clock: datetime) -> bool:
    if since is None:
        return True
    facts = ObjectFacts(listed.key, listed.size, last_modified=listed.last_modified)
    return any(
        since < listed.last_modified + timedelta(seconds=ttl) <= clock
        for ttl in expiry_horizons(rules, facts)
    )
