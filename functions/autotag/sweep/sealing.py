"""The sweep's state documents, sealed by the system and believed only where it sealed them (pure).

Every document the sweep reads back from its state — a scope's checkpoint, its leases, a stored shard
plan — changes what the sweep does: a completed pass recorded "now" makes it skip every tag whose TTL ran
out since the previous pass, a live lease keeps it out of a scope, a plan with a gap leaves keys unswept.
So each carries a `seal`: the ownership record's keyed hash (ownership.keyed_seal, HMAC-SHA256 with
AUTOTAG_RECORD_SECRET) over

- where the document lives: the bucket and the object key, which names the scope (bucket, prefix, shard
  range) — so a genuine document copied to another scope, another state bucket or another kind of
  document is not believed there;
- `written`: OSS's clock when the system wrote it — a document is believed only when OSS's own stamp on
  the object (Last-Modified, which nobody can set) is within CLOCK_TOLERANCE of it, so a genuine document
  written back later (a replay of an old checkpoint or of a lease still held) is not believed either;
- everything else in it.

A document that fails any of this raises NotBelieved, saying why; the caller reports it and goes on as if
there were none (a full pass, a free scope, a new plan): extra work at worst, never a skipped tag."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..ownership import keyed_seal, seal_holds
from ..timestamps import format_timestamp, parse_timestamp
from .clock import CLOCK_TOLERANCE

SEAL_NAME = "autotag-state-1"  # first of the sealed parts: a state seal never passes for a record's
SEAL_LENGTH = 52  # base32 characters: all 256 bits (a state object has no length limit to fit)
SEALED_FIELDS = ("written", "seal")


@dataclass(frozen=True)
class Place:
    """Where a state document lives: the state bucket and the object's key."""

    bucket: str
    key: str

    def __str__(self) -> str:
        return f"oss://{self.bucket}/{self.key}"


class NotBelieved(ValueError):
    """A state document the system did not seal for this place and time; the message says why."""


def _canonical(document: Mapping[str, Any]) -> str:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def _parts(place: Place, document: Mapping[str, Any]) -> list[str]:
    return [SEAL_NAME, place.bucket, place.key, _canonical(document)]


def seal(document: Mapping[str, Any], place: Place, written: datetime, secrets: Iterable[str] = ()) -> bytes:
    """`document` as the bytes to store at `place`, sealed with the first of `secrets` (none: the unkeyed
    seal) at `written` (OSS's clock)."""
    clash = set(SEALED_FIELDS) & set(document)
    if clash:
        raise ValueError(f"a state document cannot hold {sorted(clash)[0]!r}: the seal adds it")
    dated = {**document, "written": format_timestamp(written)}
    first = next(iter(secrets), "")
    sealed = {**dated, "seal": keyed_seal(first, _parts(place, dated), SEAL_LENGTH)}
    return json.dumps(sealed, ensure_ascii=False, indent=1).encode()


def unseal(data: bytes, place: Place, stamped: datetime, secrets: Iterable[str] = ()) -> dict[str, Any]:
    """The document stored at `place` (without its seal and time), when the system sealed it for this
    place and OSS stamped it (`stamped`, its Last-Modified) when it was sealed; NotBelieved otherwise."""
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):
        raise NotBelieved("not sealed by this system: not JSON") from None
    if not isinstance(document, dict) or not isinstance(document.get("seal"), str):
        raise NotBelieved("not sealed by this system: it carries no seal")
    given = document.pop("seal")
    if not seal_holds(given, secrets, _parts(place, document), SEAL_LENGTH):
        raise NotBelieved(
            f"not sealed by this system for {place}: written by someone else, changed since, or copied "
            "from another scope or bucket"
        )
    written = parse_timestamp(str(document.pop("written", "")))
    if written is None:  # sealed, so the system wrote it: only a version that sealed no time
        raise NotBelieved("sealed with no time of writing")
    if abs(stamped - written) > CLOCK_TOLERANCE:
        raise NotBelieved(
            f"sealed at {format_timestamp(written)} but stamped by OSS at {format_timestamp(stamped)}: a "
            "copy written back later"
        )
    return document
