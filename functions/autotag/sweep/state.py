"""A scope's checkpoint and lease, kept as small objects under the state prefix of the swept bucket.

Overlapping runs (a slow run meeting the next timer tick, a console invoke, a re-dispatched shard) are
kept apart by a lease: numbered objects `lease-<n>` created with `x-oss-forbid-overwrite`, so exactly one
run can create the next number. A lease is free once released or expired; it outlives the function
timeout, and FC ends every invocation at its timeout, so an expired lease's holder is gone. Only the lease
holder writes the checkpoint, and it checks before each write that no newer lease exists."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from ..gateway import ObjectGone
from .checkpoint import Checkpoint, CheckpointError, Scope, decode_checkpoint, encode_checkpoint
from .gateway import SweepGateway


class LeaseLost(RuntimeError):
    """A newer run took this scope over (this run outlived its lease); it must stop without writing."""


@dataclass(frozen=True)
class Lease:
    number: int
    owner: str
    until: float  # epoch seconds, wall clock


@dataclass(frozen=True)
class Busy:
    owner: str
    until: float


class StateStore:
    def __init__(
        self,
        gateway: SweepGateway,
        state_prefix: str,
        scope: Scope,
        *,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.gateway = gateway
        self.scope = scope
        self.state_prefix = state_prefix
        self.base = f"{state_prefix}sweep/{scope.id}/"
        self.checkpoint_key = self.base + "checkpoint.json"
        self._wall_clock = wall_clock

    def _lease_key(self, number: int) -> str:
        return f"{self.base}lease-{number:012d}"

    # -- checkpoint ----------------------------------------------------------------------------------------

    def load(self) -> Checkpoint:
        data = self.gateway.read_object(self.checkpoint_key)
        if data is None:
            return Checkpoint(self.scope)
        try:
            return decode_checkpoint(data, self.scope)
        except CheckpointError as error:
            # Starting over is safe (a full pass is idempotent); losing the sweep altogether is not.
            raise CheckpointError(f"{self.checkpoint_key}: {error}; delete it to start over") from None

    def save(self, checkpoint: Checkpoint, lease: Lease, lease_seconds: float) -> Lease:
        """Write the checkpoint and extend the lease; raises LeaseLost when a newer run holds the scope."""
        if self._exists(self._lease_key(lease.number + 1)):
            raise LeaseLost(f"another run took over {self.base} (lease {lease.number + 1})")
        self.gateway.write_object(self.checkpoint_key, encode_checkpoint(checkpoint))
        renewed = Lease(lease.number, lease.owner, self._wall_clock() + lease_seconds)
        self._write_lease(renewed)
        return renewed

    # -- lease ---------------------------------------------------------------------------------------------

    def acquire(self, owner: str, lease_seconds: float) -> Lease | Busy:
        numbers = sorted(
            int(key.rsplit("-", 1)[1])
            for key in self.gateway.list_keys(self.base + "lease-")
            if key[-1].isdigit()
        )
        newest = numbers[-1] if numbers else 0
        if numbers:
            holder = self._read_lease(newest)
            if holder is not None and holder.until > self._wall_clock():
                return Busy(holder.owner, holder.until)
        lease = Lease(newest + 1, owner or str(uuid.uuid4()), self._wall_clock() + lease_seconds)
        if not self.gateway.write_object(
            self._lease_key(lease.number), self._lease_bytes(lease), create_only=True
        ):
            holder = self._read_lease(lease.number)
            return Busy(holder.owner if holder else "unknown", holder.until if holder else 0.0)
        for old in numbers:  # keep the state prefix small; a missing old lease is harmless
            self.gateway.delete_object(self._lease_key(old))
        return lease

    def release(self, lease: Lease) -> None:
        if not self._exists(self._lease_key(lease.number + 1)):
            self._write_lease(Lease(lease.number, lease.owner, 0.0))

    def _write_lease(self, lease: Lease) -> None:
        self.gateway.write_object(self._lease_key(lease.number), self._lease_bytes(lease))

    @staticmethod
    def _lease_bytes(lease: Lease) -> bytes:
        return json.dumps({"owner": lease.owner, "until": lease.until}).encode()

    def _read_lease(self, number: int) -> Lease | None:
        data = self.gateway.read_object(self._lease_key(number))
        if data is None:
            return None
        try:
            document = json.loads(data)
            return Lease(number, str(document["owner"]), float(document["until"]))
        except (ValueError, KeyError, TypeError):
            return Lease(number, "unreadable", 0.0)  # a damaged lease protects nothing

    def _exists(self, key: str) -> bool:
        try:
            self.gateway.head(key)
        except ObjectGone:
            return False
        return True
