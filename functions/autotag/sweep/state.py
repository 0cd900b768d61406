"""A scope's checkpoint and lease, kept as small objects under the state prefix — in the swept bucket, or in
a separate state bucket (`AUTOTAG_STATE_BUCKET`) where the bucket has writers the sweep must not trust.

Overlapping runs (a slow run meeting the next timer tick, a console invoke, a re-dispatched shard) are
kept apart by a lease: numbered objects `lease-<n>` created with `x-oss-forbid-overwrite`, so exactly one
run can create the next number. A lease's life comes from what nobody can forge: its object's Last-Modified
as OSS stamped it, plus the function timeout the reading run knows (FC ends every invocation at its
timeout, so a lease older than that has no live holder). Its content (holder, released or not) is only
believed within that life, so a forged lease blocks no longer than a real one; a run reads the newest lease
whether or not its life is over (one GET), and one in a shape this system never writes is reported in
`warnings`. Only the lease holder writes the checkpoint, and it checks before each write that no newer lease
exists.

State that claims a time beyond OSS's clock, and checkpoints this version cannot read, are never obeyed:
they are set aside, reported in `warnings`, and the sweep starts over with a full pass (idempotent)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from ..bucket_gateway import BucketGateway
from ..timestamps import format_timestamp
from .checkpoint import Checkpoint, CheckpointError, Scope, decode_checkpoint, encode_checkpoint
from .clock import ahead_of, describe_ahead


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
    odd: str = ""  # why this is no lease this system writes ("" when it is one)


@dataclass(frozen=True)
class Busy:
    owner: str
    until: datetime  # when the lease ends at the latest, by OSS's clock


@dataclass
class StateStore:
    gateway: BucketGateway  # the bucket holding the state (the swept one, or AUTOTAG_STATE_BUCKET)
    state_prefix: str
    scope: Scope
    warnings: list[str] = field(default_factory=list)  # implausible or unreadable state, set aside
    # The folder under the state prefix; "" for the sweep's own (`sweep/<scope id>`). A backfill shard keeps
    # its checkpoint and leases in its job's folder, with the same lease rules.
    folder: str = ""

    @property
    def base(self) -> str:
        return f"{self.state_prefix}{self.folder or f'sweep/{self.scope.id}'}/"

    @property
    def checkpoint_key(self) -> str:
        return self.base + "checkpoint.json"

    def _lease_key(self, number: int) -> str:
        return f"{self.base}lease-{number:012d}"

    # -- checkpoint ----------------------------------------------------------------------------------------

    def load(self, oss_now: datetime, *, keep_aside: bool = True) -> Checkpoint:
        """The scope's checkpoint, with anything implausible (a time beyond OSS's clock) dropped; an
        unreadable one is copied aside (unless `keep_aside` is false: a dry run writes nothing) and
        replaced by a fresh start. Either way the reason is added to `warnings`."""
        data = self.gateway.read_object(self.checkpoint_key)
        if data is None:
            return Checkpoint(self.scope)
        try:
            checkpoint = decode_checkpoint(data, self.scope)
        except CheckpointError as error:
            aside = f"{self.base}unreadable-{format_timestamp(oss_now)}-checkpoint.json"
            if keep_aside:
                self.gateway.write_object(aside, data)
            where = f"kept aside as {aside}" if keep_aside else "left as it is (dry run)"
            self.warnings.append(f"{self.checkpoint_key}: {error}; {where}, and a new full pass starts")
            return Checkpoint(self.scope)
        return self._plausible(checkpoint, oss_now)

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

    def save(self, checkpoint: Checkpoint, lease: Lease) -> None:
        """Write the checkpoint and renew the lease (a rewrite: a new Last-Modified); raises LeaseLost when
        a newer run holds the scope."""
        self.save_document(encode_checkpoint(checkpoint), lease)

    def save_document(self, data: bytes, lease: Lease) -> None:
        """Write `data` as the checkpoint and renew the lease; raises LeaseLost when a newer run holds the
        scope."""
        if self._exists(self._lease_key(lease.number + 1)):
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
            else:  # read even when its life is over: a lease this system never wrote is reported
                content = self._read_lease(newest)
                if content is not None and content.odd:
                    self.warnings.append(
                        f"{self._lease_key(newest)}: not a lease this system writes ({content.odd}); "
                        f"believed only until {format_timestamp(written + life)}, by its Last-Modified"
                    )
                if content is not None and not content.released and written + life > oss_now:
                    return Busy(content.holder, written + life)
        lease = Lease(newest + 1, owner or str(uuid.uuid4()))
        if not self.gateway.write_object(
            self._lease_key(lease.number), self._lease_bytes(lease, released=False), create_only=True
        ):
            content = self._read_lease(lease.number)
            return Busy(content.holder if content else "unknown", oss_now + life)
        for old in leases:  # keep the state prefix small; a missing old lease is harmless
            self.gateway.delete_object(self._lease_key(old))
        return lease

    def release(self, lease: Lease) -> None:
        if not self._exists(self._lease_key(lease.number + 1)):
            self._write_lease(lease, released=True)

    def _write_lease(self, lease: Lease, *, released: bool) -> None:
        self.gateway.write_object(self._lease_key(lease.number), self._lease_bytes(lease, released=released))

    @staticmethod
    def _lease_bytes(lease: Lease, *, released: bool) -> bytes:
        return json.dumps({"owner": lease.owner, "released": released}).encode()

    def _read_lease(self, number: int) -> LeaseContent | None:
        """What the lease says, or None when it is gone. Unreadable content counts as held: within its
        life a damaged lease still keeps a second run out, and after it nothing is believed."""
        data = self.gateway.read_object(self._lease_key(number))
        if data is None:
            return None
        try:
            document = json.loads(data)
        except ValueError:
            return LeaseContent("unreadable", False, "not JSON")
        if not isinstance(document, dict) or "owner" not in document:
            return LeaseContent("unreadable", False, "no owner")
        content = LeaseContent(str(document["owner"])[:100], document.get("released") is True)
        unknown = sorted(set(document) - {"owner", "released"})
        if unknown:
            return replace(content, odd=f"unknown field {unknown[0][:40]!r}")
        if not isinstance(document["owner"], str) or not isinstance(document.get("released"), bool):
            return replace(content, odd="its owner is not a name, or released not true or false")
        return content

    def _exists(self, key: str) -> bool:
        return self.gateway.exists(key)
