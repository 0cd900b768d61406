"""A scope's checkpoint and lease (and other sealed documents beside them, such as the copy of the rules its
last completed pass applied: applied_rules.py), kept as small objects under the state prefix — in a state
bucket of their own (AUTOTAG_SWEEP_STATE_BUCKET: template.yml's default, where only the sweep's role may
write), or in the swept bucket.

Every document here is sealed by the system for its place and time (sealing.py) and believed only then: a
checkpoint, a lease or anything else someone wrote there — or the system's own, copied from another scope
or bucket, or written back later — is reported in `warnings` and counts as absent. A checkpoint not
believed is copied aside and a full pass starts; a lease not believed holds nothing.

Overlapping runs (a slow run meeting the next timer tick, a console invoke, a re-dispatched shard) are
kept apart by a lease: numbered objects `lease-<n>` created with `x-oss-forbid-overwrite`, so exactly one
run can create the next number. A lease's life comes from what nobody can forge: its object's Last-Modified
as OSS stamped it, plus the function timeout the reading run knows (FC ends every invocation at its
timeout, so a lease older than that has no live holder). Its content (holder, released or not) is only
believed within that life and under its seal; a run reads the newest lease whether or not its life is over
(one GET), so a lease not believed is always reported. Only the lease holder writes the checkpoint, and it
checks before each write that no newer lease (that it believes) exists.

State that claims a time beyond OSS's clock is never obeyed either: it is set aside, reported in
`warnings`, and the sweep starts over with a full pass (idempotent).

When the state lives in a state bucket, the swept bucket may still hold an earlier version's state for the
scope (under the same prefix): the first run that finds no checkpoint of its own says so, once, with where
that state is (one ListObjects of a key or none), and never reads it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone

from ..bucket_gateway import BucketGateway, Stamped
from ..timestamps import format_timestamp
from .checkpoint import Checkpoint, CheckpointError, Scope, checkpoint_document, checkpoint_from_document
from .clock import ahead_of, describe_ahead
from .sealing import NotBelieved, Place, seal, unseal

MAX_LEASE_ATTEMPTS = 3  # numbers tried when lease-<n+1> exists already (only a writer not believed does that)
SHOWN_OWNER = 100  # characters of a lease's holder shown in a report


class LeaseLost(RuntimeError):
    """A newer run took this scope over (this run outlived its lease); it must stop without writing."""


@dataclass(frozen=True)
class Lease:
    number: int
    owner: str


@dataclass(frozen=True)
class LeaseContent:
    holder: str
    released: bool
    stamped: datetime  # the lease object's Last-Modified
    not_believed: str = ""  # why this is no lease the system sealed here ("" when it is one)


@dataclass(frozen=True)
class Busy:
    owner: str
    until: datetime  # when the lease ends at the latest, by OSS's clock


@dataclass
class StateStore:
    gateway: BucketGateway  # the bucket holding the state (a state bucket, or the swept one)
    state_prefix: str
    scope: Scope
    warnings: list[str] = field(default_factory=list)  # state not believed, set aside or found elsewhere
    secrets: tuple[str, ...] = ()  # AUTOTAG_RECORD_SECRET's: they key the seals
    # The swept bucket, when the state is kept elsewhere: an earlier version's state there is reported.
    legacy: BucketGateway | None = None

    @property
    def base(self) -> str:
        return f"{self.state_prefix}sweep/{self.scope.id}/"

    @property
    def checkpoint_key(self) -> str:
        return self.base + "checkpoint.json"

    def _lease_key(self, number: int) -> str:
        return f"{self.base}lease-{number:012d}"

    def _place(self, key: str) -> Place:
        return Place(self.gateway.bucket.bucket_name, key)

    def _now(self) -> datetime:
        """OSS's clock, from the state bucket's latest answer: the time sealed into what is written."""
        return self.gateway.oss_now() or datetime.now(timezone.utc)

    def _sealed(self, document: dict[str, object], key: str) -> bytes:
        return seal(document, self._place(key), self._now(), self.secrets)

    def _unsealed(self, found: Stamped, key: str) -> dict[str, object]:
        return unseal(found.data, self._place(key), found.last_modified, self.secrets)

    # -- other sealed documents ----------------------------------------------------------------------------

    def write_sealed(self, key: str, document: dict[str, object], *, limit: int) -> bool:
        """Write `document` at `key` (under `base`), sealed for that place, now; False (nothing written)
        when that is over `limit` bytes."""
        data = self._sealed(document, key)
        if len(data) > limit:
            return False
        self.gateway.write_object(key, data)
        return True

    def read_sealed(self, key: str, limit: int) -> dict[str, object] | None:
        """The document at `key` when the system sealed it there (NotBelieved otherwise, also when it is
        over `limit` bytes); None when there is none."""
        found = self.gateway.read_stamped(key, limit)
        if found is None:
            return None
        if len(found.data) > limit:
            raise NotBelieved(f"over {limit} bytes: no document this system writes there is that big")
        return self._unsealed(found, key)

    # -- checkpoint ----------------------------------------------------------------------------------------

    def load(self, oss_now: datetime, *, keep_aside: bool = True) -> Checkpoint:
        """The scope's checkpoint, when the system sealed it here, with anything implausible (a time beyond
        OSS's clock) dropped. One not believed or not readable is copied aside (unless `keep_aside` is
        false: a dry run writes nothing) and replaced by a fresh start. Either way the reason is added to
        `warnings`."""
        found = self.gateway.read_stamped(self.checkpoint_key)
        if found is None:
            self._report_legacy()
            return Checkpoint(self.scope)
        try:
            checkpoint = checkpoint_from_document(self._unsealed(found, self.checkpoint_key), self.scope)
        except (NotBelieved, CheckpointError) as error:
            aside = f"{self.base}not-believed-{format_timestamp(oss_now)}-checkpoint.json"
            if keep_aside:
                self.gateway.write_object(aside, found.data)
            where = f"kept aside as {aside}" if keep_aside else "left as it is (dry run)"
            self.warnings.append(
                f"{self.checkpoint_key}: not believed ({error}); {where}, and a new full pass starts"
            )
            return Checkpoint(self.scope)
        return self._plausible(checkpoint, oss_now)

    def _report_legacy(self) -> None:
        """An earlier version kept this scope's state in the swept bucket: say so (never read it)."""
        if self.legacy is None:
            return
        if self.legacy.bucket.bucket_name == self.gateway.bucket.bucket_name:  # the state is there
            return
        if self.legacy.list_page(self.base, "", max_keys=1).objects:
            swept = self.legacy.bucket.bucket_name
            self.warnings.append(
                f"oss://{swept}/{self.base} holds this scope's state from an earlier version (in the swept "
                f"bucket, where uploaders may write): not read, and a new full pass starts; state now lives "
                f"in oss://{self.gateway.bucket.bucket_name}/{self.base}. Delete the old state: "
                f"ossutil rm -r oss://{swept}/{self.state_prefix}sweep/ (docs/tag-expiry.md)"
            )

    def _plausible(self, checkpoint: Checkpoint, oss_now: datetime) -> Checkpoint:
        done = checkpoint.completed_clock
        if done is not None and ahead_of(done, oss_now):
            self.warnings.append(
                f"{self.checkpoint_key}: ignored: {describe_ahead('its completed pass', done, oss_now)}"
            )
            checkpoint = replace(checkpoint, completed_clock=None, completed_fingerprint=None)
        current = checkpoint.current
        if current is not None and (
            ahead_of(current.clock, oss_now) or (current.since is not None and current.since > current.clock)
        ):
            self.warnings.append(
                f"{self.checkpoint_key}: unfinished pass ignored: "
                f"{describe_ahead('its clock', current.clock, oss_now)} or its window is reversed"
            )
            checkpoint = replace(checkpoint, current=None)
        return checkpoint

    def sealed_checkpoint(self, checkpoint: Checkpoint) -> bytes:
        """The checkpoint as it is written: sealed for this scope's place, now."""
        return self._sealed(checkpoint_document(checkpoint), self.checkpoint_key)

    def save(self, checkpoint: Checkpoint, lease: Lease) -> None:
        """Write the checkpoint (sealed) and renew the lease (a rewrite: a new Last-Modified); raises
        LeaseLost when a newer run holds the scope."""
        self.save_document(self.sealed_checkpoint(checkpoint), lease)

    def save_document(self, data: bytes, lease: Lease) -> None:
        """Write `data` as the checkpoint and renew the lease; raises LeaseLost when a newer run holds the
        scope."""
        if self._taken_over(lease):
            raise LeaseLost(f"another run took over {self.base} (lease {lease.number + 1})")
        self.gateway.write_object(self.checkpoint_key, data)
        self._write_lease(lease, released=False)

    # -- lease ---------------------------------------------------------------------------------------------

    def acquire(self, owner: str, lease_seconds: float, oss_now: datetime) -> Lease | Busy:
        life = timedelta(seconds=lease_seconds)
        leases = {
            int(entry.key.rsplit("-", 1)[1]): entry
            for entry in self.gateway.list_entries(self.base + "lease-")
            if entry.key.rsplit("-", 1)[1].isdigit()
        }
        newest = max(leases, default=0)
        if leases:
            written = leases[newest].last_modified
            if ahead_of(written, oss_now):
                ahead = describe_ahead("its Last-Modified", written, oss_now)
                self.warnings.append(f"{self._lease_key(newest)}: ignored: {ahead}")
            else:  # read even when its life is over: a lease not believed is reported
                content = self._read_lease(newest)
                held = content is not None and not content.not_believed and not content.released
                if content is not None and held and content.stamped + life > oss_now:
                    return Busy(content.holder, content.stamped + life)
        number = newest
        for _ in range(MAX_LEASE_ATTEMPTS):
            number += 1
            lease = Lease(number, owner or str(uuid.uuid4()))
            data = self._lease_bytes(lease, released=False)
            if self.gateway.write_object(self._lease_key(number), data, create_only=True):
                break
            content = self._read_lease(number)
            if content is not None and not content.not_believed:  # another run was first
                return Busy(content.holder, content.stamped + life)
        else:
            return Busy("unknown", oss_now + life)
        for old in leases:  # keep the state prefix small; a missing old lease is harmless
            self.gateway.delete_object(self._lease_key(old))
        return lease

    def release(self, lease: Lease) -> None:
        if not self._taken_over(lease):
            self._write_lease(lease, released=True)

    def _taken_over(self, lease: Lease) -> bool:
        """Whether a newer lease the system sealed exists (one not believed takes nothing over)."""
        if not self.gateway.exists(self._lease_key(lease.number + 1)):
            return False
        content = self._read_lease(lease.number + 1)
        return content is not None and not content.not_believed

    def _write_lease(self, lease: Lease, *, released: bool) -> None:
        self.gateway.write_object(self._lease_key(lease.number), self._lease_bytes(lease, released=released))

    def _lease_bytes(self, lease: Lease, *, released: bool) -> bytes:
        return self._sealed({"owner": lease.owner, "released": released}, self._lease_key(lease.number))

    def _read_lease(self, number: int) -> LeaseContent | None:
        """What the lease says, or None when it is gone. A lease not believed (and so reported) holds
        nothing: a run that outlived its own lease finds out before it writes (_taken_over)."""
        key = self._lease_key(number)
        found = self.gateway.read_stamped(key)
        if found is None:
            return None
        try:
            document = self._unsealed(found, key)
            holder, released = document["owner"], document["released"]
            if not isinstance(holder, str) or not isinstance(released, bool):
                raise NotBelieved("sealed, but not a lease this version reads")
        except (NotBelieved, KeyError) as error:
            why = str(error) if isinstance(error, NotBelieved) else f"sealed, but it has no {error}"
            self.warnings.append(f"{key}: not believed ({why}); it holds nothing")
            return LeaseContent("", False, found.last_modified, why)
        return LeaseContent(holder[:SHOWN_OWNER], released, found.last_modified)
