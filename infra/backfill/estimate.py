"""What a reconcile of a selection costs, estimated before it runs (pure): OSS requests and time.

Per candidate the work is backfill's (autotag.tagger.tag_object with the new rules): a HeadObject when
the new rules read facts beyond the key (content type, metadata, size, time) or give tags a TTL; a
GetObjectTagging when the object carries tags (after a HEAD, only when its tag count is not 0; without one,
always); a PutObjectTagging when its tags change. The estimate counts the last two for every candidate:
an upper bound. The selection's own requests (list pages, or the inventory's manifest and data files) are
counted as sent.

The time is the candidates at a stated rate: by default the one measured in docs/backfill.md (100,000
objects through the prefix flow on the local cloud, 170 objects/s), which the operator replaces with
their own figure (`--objects-per-second`)."""

from __future__ import annotations

from typing import Any

from .selection import Selection

MEASURED_OBJECTS_PER_SECOND = 170.0
RATE_SOURCE = "docs/backfill.md, Measured: 100,000 objects at 170/s"


def requests_per_candidate(head: bool) -> int:
    """At most: HeadObject (when `head`), GetObjectTagging, PutObjectTagging."""
    return (1 if head else 0) + 2


def estimate(
    selection: Selection, head: bool, objects_per_second: float, rate_source: str = RATE_SOURCE
) -> dict[str, Any]:
    """The requests and time of reconciling what `selection` kept. When the selection stopped early (a
    sample), every figure is a lower bound of the whole run's (`lowerBound`)."""
    candidates = selection.candidates
    per_object = {
        "HeadObject": candidates if head else 0,
        "GetObjectTagging": candidates,
        "PutObjectTagging": candidates,
    }
    total = selection.requests + sum(per_object.values())
    return {
        "objectsListed": selection.listed,
        "candidates": candidates,
        "selectionRequests": selection.requests,
        "perCandidate": per_object,
        "requestsAtMost": total,
        "requestsPerListedObject": round(total / selection.listed, 4) if selection.listed else 0.0,
        "objectsPerSecond": objects_per_second,
        "rateSource": rate_source,
        "seconds": round(candidates / objects_per_second, 1),
        "lowerBound": not selection.complete,
    }
