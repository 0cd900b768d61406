"""Starting, resuming, cancelling and ending a backfill job; each returns what the operator is told.

- **Start**: plan the shards (a listing's top-level entries, or the data files of an inventory or a CSV
  manifest), write the plan and job.json, and invoke every shard. Starting a job that exists resumes it:
  a running job has its shards invoked again (a shard already running keeps its lease and the extra run
  stands down), a cancelled or failed one runs again from its checkpoints, a complete one is left as it
  is; `restart` begins a new run from the first object.
- **Cancel**: job.json says so; each shard stops within seconds (it reads the job that often).
- **End**: once every shard is done — or, for a cancelled or failed job, stopped (no live lease) — the
  completion report is written, by the first run to claim it (report/writing)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any

from ..bucket_gateway import BucketGateway
from ..gateway import ObjectGone, OutOfTime, PermanentOssError, TransientOssError
from ..inventory import DataFile, InventoryError, parse_location
from ..inventory_reader import check_data_files, read_manifest
from ..rules import RuleSet
from ..sweep.fanout import MAX_BOUNDARY_PAGES
from .gateway import BackfillGateway
from .job import (
    CANCELLED,
    COMPLETE,
    FAILED,
    INVENTORY,
    LISTING,
    RUNNING,
    JobError,
    JobPaths,
    JobSpec,
    Plan,
    decode_job,
    decode_plan,
    encode_job,
    encode_plan,
    job_id,
    plan_listing,
    plan_units,
)
from .report import write_report
from .request import CancelJob, RunShard, StartJob

SHARED_STATE = (
    "the job keeps its state in the bucket it tags: every state write (about 2 per shard per 30 s) also "
    "invokes an upload trigger on that bucket, which ignores it but is billed; for a large job set "
    "AUTOTAG_STATE_BUCKET to a bucket of its own (docs/backfill.md)"
)


class BackfillError(ValueError):
    """The job cannot be started or cancelled as asked; the message says why, naming what."""


@dataclass
class Control:
    """What the control functions work with: the swept bucket, the state (the swept bucket, or the state
    bucket), gateways to other buckets (an inventory's), the rules, and the invoker of shard runs."""

    gateway: BucketGateway
    state: BackfillGateway
    open_bucket: Callable[[str], BucketGateway]
    rules: RuleSet
    state_prefix: str
    dispatch: Callable[[list[bytes]], list[Any]]
    lease_seconds: float

    def oss_now(self) -> datetime:
        return self.state.oss_now() or self.gateway.oss_now() or datetime.now(timezone.utc)

    def paths(self, job: str) -> JobPaths:
        return JobPaths(self.state_prefix, job)

    def read_job(self, job: str) -> JobSpec | None:
        data = self.state.read_object(self.paths(job).job_key)
        if data is None:
            return None
        try:
            return decode_job(data)
        except JobError as error:
            raise BackfillError(f"{self.where(self.paths(job).job_key)}: {error}") from None

    def read_plan(self, job: JobSpec) -> Plan:
        key = self.paths(job.id).plan_key(job.run)
        data = self.state.read_object(key)
        if data is None:
            raise BackfillError(f"{self.where(key)} does not exist")
        try:
            return decode_plan(data)
        except JobError as error:
            raise BackfillError(f"{self.where(key)}: {error}") from None

    def write_job(self, job: JobSpec) -> None:
        self.state.write_object(self.paths(job.id).job_key, encode_job(job))

    def where(self, key: str) -> str:
        return f"oss://{self.state.bucket.bucket_name}/{key}"

    def done_shards(self, job: JobSpec) -> set[int]:
        prefix = self.paths(job.id).done_prefix(job.run)
        return {int(key.rsplit("-", 1)[1]) for key in self.state.list_keys(prefix) if key[-5:].isdigit()}

    def shard_events(self, job: JobSpec, shards: list[int]) -> list[bytes]:
        return [RunShard(job.bucket, job.id, job.run, shard).as_event() for shard in shards]


# ---- start -----------------------------------------------------------------------------------------------


def _plan(request: StartJob, control: Control) -> tuple[Plan, list[str]]:
    """The run's shards, and what the operator should know of them before a long job runs."""
    if request.source == LISTING:
        children = control.gateway.list_children(request.prefix, max_pages=MAX_BOUNDARY_PAGES)
        shards = plan_listing([c for c in children if not c.startswith(control.state_prefix)], request.shards)
        return Plan(tuple(shards)), _listing_warnings(request, len(shards), len(children))
    location = parse_location(request.location, f"--{request.source}")
    data = control.open_bucket(location.bucket)
    what = "the inventory" if request.source == INVENTORY else "the manifest"
    try:
        if request.source == INVENTORY:
            manifest = read_manifest(data, location.key)
            if manifest.source_bucket != request.bucket:
                raise BackfillError(
                    f"{location} is an inventory of bucket {manifest.source_bucket!r}, not {request.bucket!r}"
                )
            files = control.open_bucket(manifest.destination_bucket)
            check_data_files(files, manifest, str(location))
            shards = plan_units(list(manifest.files), request.shards)
            return Plan(tuple(shards), manifest.destination_bucket, manifest.columns), []
        size = data.head(location.key).size
    except ObjectGone:
        raise BackfillError(f"{what} {location} does not exist") from None
    except PermanentOssError as error:
        raise BackfillError(f"cannot read {what} {location}: {error}") from None
    return Plan(tuple(plan_units([DataFile(location.key, size, "")], request.shards)), location.bucket), []


def _listing_warnings(request: StartJob, shards: int, entries: int) -> list[str]:
    """A listing cuts shards at the top-level entries under the prefix: too few to cut the shards asked for,
    or more than it reads (the last shard then holds the rest, at its 1/N of the job's QPS)."""
    where = f"oss://{request.bucket}/{request.prefix}"
    if shards < request.shards:
        return [
            f"{where} has {entries} top-level entr{'y' if entries == 1 else 'ies'} to cut at, so the job "
            f"runs in {shards} shard(s), not {request.shards}; --inventory balances shards whatever the "
            "key layout"
        ]
    if entries >= MAX_BOUNDARY_PAGES * 1000:
        return [
            f"{where} has more than {MAX_BOUNDARY_PAGES * 1000:,} top-level entries: the shards were cut "
            "among the first of them only and the last shard holds the rest, at 1/"
            f"{shards} of the job's --qps; --inventory balances shards whatever the key layout"
        ]
    return []


def start(request: StartJob, control: Control) -> dict[str, Any]:
    if request.qps is not None and request.qps < request.shards:
        raise BackfillError(
            f"qps {request.qps:g} gives each of the {request.shards} shards less than one request per second"
        )
    try:
        first = control.gateway.list_page(request.prefix, "", 1)  # a missing bucket or a refused listing: now
        if request.source == LISTING and not request.restart and not first.objects:
            where = f"oss://{request.bucket}/{request.prefix}"
            return {"job": None, "state": "nothing to do", "note": f"no object under {where}: no job started"}
        identity = job_id(request.bucket, request.prefix, request.source, request.location, request.since)
        existing = control.read_job(identity)
        if existing is not None and not request.restart:
            return _resume(existing, request, control)
        plan, warnings = _plan(request, control)
        if control.state.bucket.bucket_name == request.bucket:
            warnings.append(SHARED_STATE)
    except InventoryError as error:
        raise BackfillError(str(error)) from None
    except PermanentOssError as error:
        raise BackfillError(
            f"OSS refused the backfill of oss://{request.bucket}/{request.prefix}: {error}"
        ) from None
    if not plan.shards:
        raise BackfillError(f"{request.location} lists no data file")
    run = existing.run + 1 if existing is not None else 1
    job = JobSpec(
        id=identity,
        bucket=request.bucket,
        prefix=request.prefix,
        source=request.source,
        location=request.location,
        since=request.since,
        shards=request.shards,
        workers=request.workers,
        qps=request.qps,
        max_failure_rate=request.max_failure_rate,
        run=run,
        status=RUNNING,
        reason="",
        created=control.oss_now(),
        fingerprint=control.rules.fingerprint,
    )
    control.state.write_object(control.paths(identity).plan_key(run), encode_plan(plan))
    control.write_job(job)
    receipts = control.dispatch(control.shard_events(job, list(range(len(plan.shards)))))
    return {
        "job": job.reference,
        "state": "started" if run == 1 else "restarted",
        "run": run,
        "source": job.source,
        "shards": len(plan.shards),
        "invocations": len(receipts),
        "rulesFingerprint": job.fingerprint,
        **({"warning": "; ".join(warnings)} if warnings else {}),
    }


def _resume(existing: JobSpec, request: StartJob, control: Control) -> dict[str, Any]:
    paths = control.paths(existing.id)
    if existing.status == COMPLETE:
        return {
            "job": existing.reference,
            "state": "complete",
            "run": existing.run,
            "report": control.where(paths.report_key(existing.run, "manifest.json")),
            "note": "already complete; pass --restart to run it again",
        }
    if existing.shards != request.shards:
        raise BackfillError(
            f"job {existing.reference} runs in {existing.shards} shards, not {request.shards}: keep "
            f"{existing.shards}, or pass --restart to plan {request.shards}"
        )
    plan = control.read_plan(existing)
    if existing.status in (CANCELLED, FAILED):  # its report said how it ended; the next one will say again
        control.state.delete_object(paths.report_key(existing.run, "manifest.json"))
        control.state.delete_object(paths.report_key(existing.run, "writing"))
    job = replace(
        existing,
        workers=request.workers,
        qps=request.qps,
        max_failure_rate=request.max_failure_rate,
        status=RUNNING,
        reason="",
    )
    control.write_job(job)
    pending = sorted(set(range(len(plan.shards))) - control.done_shards(job))
    receipts = control.dispatch(control.shard_events(job, pending))
    if not pending:  # every shard is done and the report did not get written when the last one ended
        finish_quietly(job, control)
    return {
        "job": job.reference,
        "state": "resumed" if existing.status == RUNNING else f"resumed ({existing.status} before)",
        "run": job.run,
        "source": job.source,
        "shards": len(plan.shards),
        "invocations": len(receipts),
        "rulesFingerprint": control.rules.fingerprint,
        **({"note": _rules_changed(existing)} if existing.fingerprint != control.rules.fingerprint else {}),
    }


def _rules_changed(job: JobSpec) -> str:
    return (
        f"the rules changed since run {job.run} began (it started with {job.fingerprint}): objects already "
        "done keep the tags of those rules; restart the job to apply the new rules to every object"
    )


# ---- cancel ----------------------------------------------------------------------------------------------


def cancel(request: CancelJob, control: Control) -> dict[str, Any]:
    try:
        job = control.read_job(request.job)
    except PermanentOssError as error:
        where = control.where(control.paths(request.job).base)
        raise BackfillError(f"cannot read the job from {where}: {error}") from None
    if job is None:
        where = control.where(control.paths(request.job).base)
        raise BackfillError(f"no job {request.job} for bucket {request.bucket} in {where}")
    if job.status == COMPLETE:
        return {"job": job.reference, "state": "complete", "note": "already complete: nothing to cancel"}
    if job.status != CANCELLED:
        reason = f"cancelled at {control.oss_now().isoformat(timespec='seconds')}"
        job = replace(job, status=CANCELLED, reason=reason)
        control.write_job(job)
    report = finish(job, control)
    return {
        "job": job.reference,
        "state": CANCELLED,
        "reason": job.reason,
        "report": report["reference"] if report else None,
        "note": "" if report else "shards that are running stop within seconds; the report follows",
    }


# ---- end -------------------------------------------------------------------------------------------------


def _lease_live(control: Control, job: JobSpec, shard: int, now: datetime) -> bool:
    base = f"{control.state_prefix}{control.paths(job.id).shard_folder(job.run, shard)}/lease-"
    leases = [
        (e.key, e.last_modified) for e in control.state.list_entries(base) if e.key[len(base) :].isdigit()
    ]
    if not leases:
        return False
    key, written = max(leases)
    if written + timedelta(seconds=control.lease_seconds) <= now:
        return False
    data = control.state.read_object(key)
    try:
        return not (data is not None and json.loads(data).get("released") is True)
    except (ValueError, AttributeError):
        return True


def finish(job: JobSpec, control: Control, *, part_bytes: int | None = None) -> dict[str, Any] | None:
    """Write the completion report if the run is over; its manifest (with `reference`), else None."""
    current = control.read_job(job.id)  # as it is now: a shard may have failed or cancelled it since
    if current is None or current.run != job.run:
        return None
    job = current
    paths = control.paths(job.id)
    manifest_key = paths.report_key(job.run, "manifest.json")
    if control.state.exists(manifest_key):
        return None
    plan = control.read_plan(job)
    done = control.done_shards(job)
    now = control.oss_now()
    if len(done) >= len(plan.shards):
        status = COMPLETE
    elif job.status in (CANCELLED, FAILED):
        if any(_lease_live(control, job, s.index, now) for s in plan.shards if s.index not in done):
            return None
        status = job.status
    else:
        return None
    if not _claim_report(control, paths.report_key(job.run, "writing"), now):
        return None
    try:
        manifest = write_report(control.state, paths, job, plan, status, now, part_bytes)
    except BaseException:  # the next run that ends (or the next start) writes it: free the claim
        with contextlib.suppress(TransientOssError, PermanentOssError, OutOfTime):
            control.state.delete_object(paths.report_key(job.run, "writing"))
        raise
    if manifest is None:
        return None
    if status == COMPLETE:
        latest = control.read_job(job.id)
        if latest is not None and latest.run == job.run and latest.status == RUNNING:
            control.write_job(replace(latest, status=COMPLETE, reason=""))
    return {**manifest, "reference": control.where(manifest_key)}


def _claim_report(control: Control, key: str, now: datetime) -> bool:
    """Whether this run writes the report: the first to create `key` does, so shards that end together
    do not each rewrite the CSVs (and never after manifest.json). A claim older than a lease's life is
    a writer that died: taken over."""
    if control.state.write_object(key, b"", create_only=True):
        return True
    claims = [entry.last_modified for entry in control.state.list_entries(key) if entry.key == key]
    if claims and claims[0] + timedelta(seconds=control.lease_seconds) > now:
        return False
    control.state.write_object(key, b"")
    return True


def finish_quietly(job: JobSpec, control: Control) -> dict[str, Any] | None:
    """`finish`, where a failure to write the report is left to the next run that ends (or the next start)."""
    with contextlib.suppress(TransientOssError, PermanentOssError, OutOfTime, BackfillError):
        return finish(job, control)
    return None
