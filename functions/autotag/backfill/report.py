"""A job's completion report, written once every shard is over (done, or stopped by a cancelled or failed
job), in the run's `report/` folder:

- `writing`: the claim of the run that writes the report (the first to create it; others leave it).
- `manifest.json`: the job, how it ended, counts by outcome, OSS requests per object, and where the two
  CSVs are. Written last, and only once: its presence says the report is complete.
- `failed.csv`: every object that failed or was refused, one `bucket,key[,versionId]` line each (keys
  URL-encoded, no header): the CSV manifest format OSS Batch Operations accepts, and what
  `autotag backfill --manifest` takes to retry exactly those objects.
- `failures.csv`: the same objects with their outcome and why (`bucket,key,versionId,outcome,reason`).

Both CSVs are assembled from the per-shard failure files a part at a time (a multipart upload when
large), never held whole in memory."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from ..timestamps import format_timestamp
from .gateway import BackfillGateway
from .job import JobPaths, JobSpec, Plan
from .progress import ProgressError, ShardProgress, decode_progress, totals

FAILURES_SCHEMA = "Bucket, Key, VersionId, Outcome, Reason"
MANIFEST_FORMAT = "autotag-backfill-report-1"


def shard_progress(state: BackfillGateway, paths: JobPaths, run: int, shards: int) -> list[ShardProgress]:
    """Every shard's checkpoint (a shard that never started counts as nothing done)."""
    found = []
    for shard in range(shards):
        data = state.read_object(f"{paths.state_prefix}{paths.shard_folder(run, shard)}/checkpoint.json")
        try:
            found.append(decode_progress(data) if data else ShardProgress())
        except ProgressError:
            found.append(ShardProgress())
    return found


def _failure_lines(state: BackfillGateway, chunks: list[str]) -> Iterator[list[str]]:
    for key in chunks:
        data = state.read_object(key)
        if data is not None:
            yield from csv.reader(io.StringIO(data.decode("utf-8")))


def _csv(rows: Iterator[list[str]]) -> Iterator[bytes]:
    for row in rows:
        text = io.StringIO()
        csv.writer(text, lineterminator="\n").writerow(row)
        yield text.getvalue().encode("utf-8")


def write_report(
    state: BackfillGateway,
    paths: JobPaths,
    job: JobSpec,
    plan: Plan,
    status: str,
    finished: datetime,
    part_bytes: int | None = None,
) -> dict[str, Any] | None:
    """Write the run's report (see the module's doc) and return its manifest; None when another run wrote
    the manifest first (both wrote the same CSVs)."""
    run = job.run
    progresses = shard_progress(state, paths, run, len(plan.shards))
    summed = totals(progresses)
    chunks = sorted(state.list_keys(paths.failures_prefix(run)))
    where = f"oss://{state.bucket.bucket_name}/"
    failed_key, failures_key = paths.report_key(run, "failed.csv"), paths.report_key(run, "failures.csv")
    extra = {} if part_bytes is None else {"part_bytes": part_bytes}
    batch_lines = (row[:3] if row[2] else row[:2] for row in _failure_lines(state, chunks))
    state.write_streamed(failed_key, _csv(batch_lines), **extra)
    state.write_streamed(failures_key, _csv(_failure_lines(state, chunks)), **extra)
    processed = summed.processed
    manifest: dict[str, Any] = {
        "format": MANIFEST_FORMAT,
        "job": job.id,
        "reference": job.reference,
        "bucket": job.bucket,
        "prefix": job.prefix,
        "source": job.source,
        "location": job.location or None,
        "run": run,
        "status": status,
        "reason": job.reason,
        "started": format_timestamp(job.created),
        "finished": format_timestamp(finished),
        "rulesFingerprint": job.fingerprint,
        "shards": len(plan.shards),
        "objects": processed,
        "counts": summed.counts,
        "failed": summed.failed,
        "ossRequests": summed.requests,
        "requestsPerObject": round(summed.requests / processed, 4) if processed else None,
        "failedManifest": where + failed_key,
        "failedManifestFormat": "bucket,key[,versionId]; keys URL-encoded; no header",
        "failures": where + failures_key,
        "failuresSchema": FAILURES_SCHEMA,
    }
    written = state.write_object(
        paths.report_key(run, "manifest.json"),
        json.dumps(manifest, ensure_ascii=False, indent=1).encode(),
        create_only=True,
    )
    return manifest if written else None
