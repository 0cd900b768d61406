"""Where a sweep of one scope stands, as plain data with a JSON codec (pure).

A *pass* reconciles every candidate of a scope up to the pass's clock (the triggerTime of the run that
started it); it may take many runs, each resuming from the listing position. When a pass completes, its
clock and rules fingerprint are remembered: the next pass only needs objects whose TTLs ran out after that
clock (incremental), unless the rules changed since. Then what the next pass does is the deployment's
choice (AUTOTAG_RECONCILE_ON_RULES_CHANGE, `ON_RULES_CHANGE`):

- `selected`: a pass over only the objects the change can reach (rules/reach.py), each given the full plan
  of the new rules (tags added, changed and removed, as on upload). It pins the fingerprint it reconciles
  from (`previous`), so a pass interrupted mid-way resumes with the same selection. It leaves the completed
  clock where it was: objects it did not list may have TTLs that ran out meanwhile, and the incremental pass
  that follows it judges them.
- `full`: every object, given the full plan of the new rules.
- `prune`: every object, with only the tags the new rules no longer derive removed (nothing added).

A pass under rules that were neither the completed pass's nor the new ones (interrupted by a change) may
have written tags by them anywhere: after it, only a full pass is safe."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime
from typing import Any

from ..timestamps import format_timestamp, parse_timestamp

FORMAT_VERSION = 2  # 2 adds a pass's `retag` and `previous` and the completed pass's `rulesKept`
READABLE_FORMATS = (1, 2)

SELECTED, FULL, PRUNE = "selected", "full", "prune"
ON_RULES_CHANGE = (SELECTED, FULL, PRUNE)  # what a pass after a change of rules does (see above)


@dataclass(frozen=True)
class Scope:
    """What one checkpoint covers: a bucket, a key prefix and optionally a shard's key range."""

    bucket: str
    prefix: str = ""
    start_at: str = ""
    end_before: str | None = None

    @property
    def id(self) -> str:
        text = "\0".join([self.bucket, self.prefix, self.start_at, self.end_before or "\0end"])
        return hashlib.sha256(text.encode()).hexdigest()[:20]

    def contains(self, key: str) -> bool:
        return (
            key.startswith(self.prefix)
            and key >= self.start_at
            and (self.end_before is None or key < self.end_before)
        )


@dataclass(frozen=True)
class Position:
    """The last listing entry fully processed: the next run lists after it."""

    key: str = ""
    version_id: str = ""


@dataclass(frozen=True)
class PassTotals:
    listed: int = 0
    candidates: int = 0
    updated: int = 0
    deleted: int = 0
    tags_removed: int = 0
    runs: int = 0

    def plus(self, other: PassTotals) -> PassTotals:
        return PassTotals(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})


@dataclass(frozen=True)
class SweepPass:
    clock: datetime  # every run of the pass judges expiry at this moment
    since: datetime | None  # the previous pass's clock; None: a full reconcile
    fingerprint: str  # the rules the pass applies
    position: Position = field(default_factory=Position)
    totals: PassTotals = field(default_factory=PassTotals)
    retag: bool = False  # candidates get the full plan of the rules (as on upload), not only pruning
    # A selected pass: the fingerprint of the rules it reconciles from (only objects the change from them
    # can reach are candidates); None: every object is (within `since` for an incremental pass).
    previous: str | None = None

    @property
    def mode(self) -> str:
        if self.previous is not None:
            return "selected"
        return "full" if self.since is None else "incremental"


@dataclass(frozen=True)
class Checkpoint:
    scope: Scope
    completed_clock: datetime | None = None
    completed_fingerprint: str | None = None
    current: SweepPass | None = None
    # The fingerprint of the rules whose document is kept (sealed) beside the checkpoint (applied_rules.py)
    rules_kept: str | None = None


def next_pass(
    checkpoint: Checkpoint,
    fingerprint: str,
    clock: datetime,
    *,
    force_full: bool = False,
    on_rules_change: str = PRUNE,
    interrupted: str | None = None,
) -> SweepPass | None:
    """The pass a run works on: the unfinished one (same rules), else a new one. None when the scope is
    already reconciled up to `clock` with these rules. `force_full` (a payload's `full`) asks for a full
    pass: a pruning one, unless the rules changed since the completed pass and `on_rules_change` adds tags
    (then every object gets the full plan). `interrupted` is the fingerprint of the pass this run stopped
    because the rules changed."""
    current = checkpoint.current
    done = checkpoint.completed_fingerprint
    start = Position(_before(checkpoint.scope.start_at)) if checkpoint.scope.start_at else Position()
    if on_rules_change == PRUNE or done is None:  # the first pass, or pruning as always
        force_full = force_full or interrupted is not None
        if current is not None and current.fingerprint == fingerprint and not (force_full and current.since):
            return current
        since = checkpoint.completed_clock if done == fingerprint and not force_full else None
        if since is not None and clock <= since:
            return None
        return SweepPass(clock, since, fingerprint, start)
    # A pass under rules other than the completed pass's (one after a change, stopped by another change)
    # may have written tags by them on objects that no selection from the completed rules names.
    mixed = (interrupted is not None and interrupted != done) or (
        current is not None and current.fingerprint != done
    )
    resumable = (
        current is not None and current.fingerprint == fingerprint and not (mixed and interrupted is not None)
    )
    if force_full:  # an unfinished full pass goes on; a selected or incremental one gives way
        if resumable and current is not None and current.since is None:
            return current
        return SweepPass(clock, None, fingerprint, start, retag=done != fingerprint or mixed)
    if resumable:
        return current
    if mixed:
        return SweepPass(clock, None, fingerprint, start, retag=True)
    if done == fingerprint:
        since = checkpoint.completed_clock
        if since is not None and clock <= since:
            return None
        return SweepPass(clock, since, fingerprint, start)
    if on_rules_change == SELECTED and checkpoint.completed_clock is not None:
        return SweepPass(clock, checkpoint.completed_clock, fingerprint, start, retag=True, previous=done)
    return SweepPass(clock, None, fingerprint, start, retag=True)


def widened(sweep: SweepPass, checkpoint: Checkpoint) -> SweepPass:
    """`sweep` as a full pass from the scope's start: a selected pass whose previous rules cannot be
    believed (a missing or forged copy) reconciles every object instead, never fewer."""
    start = Position(_before(checkpoint.scope.start_at)) if checkpoint.scope.start_at else Position()
    return SweepPass(sweep.clock, None, sweep.fingerprint, start, retag=True)


def _before(key: str) -> str:
    """A listing marker just below `key`: listing after it reaches `key` itself. Keys between the two (only
    ones built of U+10FFFF characters) are filtered out by Scope.contains."""
    last = ord(key[-1])
    if last == 0:
        return key[:-1]
    below = last - 1 if not 0xD800 <= last - 1 <= 0xDFFF else 0xD7FF  # surrogates are not characters
    return key[:-1] + chr(below) + "\U0010ffff"


def advanced(sweep: SweepPass, position: Position, totals: PassTotals) -> SweepPass:
    return replace(sweep, position=position, totals=sweep.totals.plus(totals))


def completed(checkpoint: Checkpoint, sweep: SweepPass) -> Checkpoint:
    """The checkpoint once `sweep` completed. A selected pass leaves the completed clock as it was: it did
    not list every object, and TTLs that ran out since are the next (incremental) pass's to judge."""
    clock = sweep.since if sweep.previous is not None else sweep.clock
    return Checkpoint(checkpoint.scope, clock, sweep.fingerprint, None, checkpoint.rules_kept)


# ---- codec --------------------------------------------------------------------------------------------


def _time(moment: datetime | None) -> str | None:
    return format_timestamp(moment) if moment is not None else None


def checkpoint_document(checkpoint: Checkpoint) -> dict[str, Any]:
    """The checkpoint as a JSON document (what the state store seals and writes)."""
    current = checkpoint.current
    return {
        "format": FORMAT_VERSION,
        "scope": {
            "bucket": checkpoint.scope.bucket,
            "prefix": checkpoint.scope.prefix,
            "startAt": checkpoint.scope.start_at,
            "endBefore": checkpoint.scope.end_before,
        },
        "completed": {
            "clock": _time(checkpoint.completed_clock),
            "fingerprint": checkpoint.completed_fingerprint,
            "rulesKept": checkpoint.rules_kept,
        },
        "current": None
        if current is None
        else {
            "clock": _time(current.clock),
            "since": _time(current.since),
            "fingerprint": current.fingerprint,
            "position": {"key": current.position.key, "versionId": current.position.version_id},
            "totals": asdict(current.totals),
            "retag": current.retag,
            "previous": current.previous,
        },
    }


def encode_checkpoint(checkpoint: Checkpoint) -> bytes:
    return json.dumps(checkpoint_document(checkpoint), ensure_ascii=False, indent=1).encode()


class CheckpointError(ValueError):
    """A checkpoint object that this version cannot read."""


def decode_checkpoint(data: bytes, scope: Scope) -> Checkpoint:
    try:
        document = json.loads(data)
    except ValueError as exc:
        raise CheckpointError(f"unreadable checkpoint: {exc!r}") from exc
    return checkpoint_from_document(document, scope)


def checkpoint_from_document(document: Any, scope: Scope) -> Checkpoint:
    """The checkpoint of `scope` a JSON document holds; CheckpointError when this version cannot read it."""
    try:
        if not isinstance(document, dict):
            raise CheckpointError("a checkpoint is a JSON object")
        if document.get("format") not in READABLE_FORMATS:
            raise CheckpointError(f"checkpoint format {document.get('format')!r} is not {FORMAT_VERSION}")
        done = document["completed"]
        current = document["current"]
        sweep = None
        if current is not None:
            clock = parse_timestamp(current["clock"])
            if clock is None:
                raise CheckpointError("checkpoint current.clock is not a date and time")
            sweep = SweepPass(
                clock,
                parse_timestamp(current["since"] or ""),
                current["fingerprint"],
                Position(current["position"]["key"], current["position"]["versionId"]),
                PassTotals(**current["totals"]),
                _flag(current.get("retag", False)),
                _fingerprint(current.get("previous")),
            )
        kept = _fingerprint(done.get("rulesKept"))
        return Checkpoint(scope, parse_timestamp(done["clock"] or ""), done["fingerprint"], sweep, kept)
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, CheckpointError):
            raise
        raise CheckpointError(f"unreadable checkpoint: {exc!r}") from exc


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise CheckpointError("checkpoint current.retag is not true or false")
    return value


def _fingerprint(value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise CheckpointError("a rules fingerprint in the checkpoint is not text")
    return value
