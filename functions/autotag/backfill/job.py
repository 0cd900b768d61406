"""A backfill job as plain data (pure): what it covers, how it runs, its id, and its shard plan.

A job is identified by what it covers — bucket, prefix, source and `since` — so starting the same backfill
again resumes it instead of starting a second one. Each start with `restart` begins a new *run* of the job
(run 1, 2, ...); a shard's state lives under its run, so nothing of an abandoned run is ever resumed.

Shards cut a listing at top-level entries (as the sweep does), and an inventory or a manifest along its data
files: contiguous files of about equal size per shard, or, with fewer files than shards, each file read by
several shards that take every k-th record (`stripe` of `stripes`), so shards stay balanced whatever the
key layout."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from ..inventory import DataFile
from ..sweep.shards import plan_shards
from ..timestamps import format_timestamp, parse_timestamp

FORMAT_VERSION = 1
LISTING, INVENTORY, MANIFEST = "listing", "inventory", "manifest"
RUNNING, COMPLETE, CANCELLED, FAILED = "running", "complete", "cancelled", "failed"


class JobError(ValueError):
    """A job or plan document this version cannot read, or a start that contradicts the job; the message
    names the field."""


@dataclass(frozen=True)
class JobSpec:
    id: str
    bucket: str
    prefix: str
    source: str  # listing, inventory or manifest
    location: str  # oss://bucket/key of the inventory's manifest.json or the CSV manifest; "" for a listing
    since: datetime | None  # only objects last modified at or after it
    shards: int
    workers: int  # concurrent objects per shard
    qps: float | None  # OSS requests per second for the whole job (each shard gets its share)
    max_failure_rate: float
    run: int
    status: str  # running, complete, cancelled or failed
    reason: str  # why it was cancelled or failed
    created: datetime  # when this run started, by OSS's clock
    fingerprint: str  # the rules this run started with

    @property
    def reference(self) -> str:
        """What an operator types to look at the job: `<bucket>/<id>`."""
        return f"{self.bucket}/{self.id}"

    def shard_qps(self, shards: int) -> float | None:
        return None if self.qps is None else self.qps / max(1, shards)


def job_id(bucket: str, prefix: str, source: str, location: str, since: datetime | None) -> str:
    text = "\0".join([bucket, prefix, source, location, format_timestamp(since) if since else ""])
    return "bf-" + hashlib.sha256(text.encode()).hexdigest()[:12]


def is_job_id(text: str) -> bool:
    return len(text) == 15 and text.startswith("bf-") and all(c in "0123456789abcdef" for c in text[3:])


def encode_job(job: JobSpec) -> bytes:
    document = {
        "format": FORMAT_VERSION,
        "id": job.id,
        "bucket": job.bucket,
        "prefix": job.prefix,
        "source": job.source,
        "location": job.location,
        "since": format_timestamp(job.since) if job.since else None,
        "shards": job.shards,
        "workers": job.workers,
        "qps": job.qps,
        "maxFailureRate": job.max_failure_rate,
        "run": job.run,
        "status": job.status,
        "reason": job.reason,
        "created": format_timestamp(job.created),
        "rulesFingerprint": job.fingerprint,
    }
    return json.dumps(document, ensure_ascii=False, indent=1).encode()


def decode_job(data: bytes) -> JobSpec:
    try:
        document = json.loads(data)
        if document.get("format") != FORMAT_VERSION:
            raise JobError(f"job.json format {document.get('format')!r} is not {FORMAT_VERSION}")
        created = parse_timestamp(document["created"])
        if created is None:
            raise JobError("job.json created is not a date and time")
        since = parse_timestamp(document["since"] or "")
        qps = document["qps"]
        return JobSpec(
            id=str(document["id"]),
            bucket=str(document["bucket"]),
            prefix=str(document["prefix"]),
            source=str(document["source"]),
            location=str(document["location"]),
            since=since,
            shards=int(document["shards"]),
            workers=int(document["workers"]),
            qps=float(qps) if qps is not None else None,
            max_failure_rate=float(document["maxFailureRate"]),
            run=int(document["run"]),
            status=str(document["status"]),
            reason=str(document["reason"]),
            created=created,
            fingerprint=str(document["rulesFingerprint"]),
        )
    except JobError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise JobError(f"job.json cannot be read: {exc!r}") from None


def stopped(job: JobSpec, status: str, reason: str) -> JobSpec:
    return replace(job, status=status, reason=reason)


# ---- shard plans -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Unit:
    """A data file (or a CSV manifest) a shard reads: every record, or the records whose number modulo
    `stripes` is `stripe`."""

    key: str
    size: int
    stripe: int = 0
    stripes: int = 1
    md5: str = ""  # what the inventory's manifest says ("" for a CSV manifest)

    @property
    def listed(self) -> DataFile:
        return DataFile(self.key, self.size, self.md5)


@dataclass(frozen=True)
class ShardWork:
    index: int
    start_at: str = ""  # a listing shard: keys start_at <= key < end_before
    end_before: str | None = None
    units: tuple[Unit, ...] = ()  # an inventory or manifest shard

    @property
    def total_bytes(self) -> int:
        return sum(u.size for u in self.units)


def plan_listing(boundaries: list[str], count: int) -> list[ShardWork]:
    return [ShardWork(s.index, s.start_at, s.end_before) for s in plan_shards(boundaries, count)]


def plan_units(files: list[DataFile], count: int) -> list[ShardWork]:
    """`count` shards over data files: contiguous runs of about equal total size, or, with fewer files than
    shards, every file shared by the shards of its stripes."""
    if not files:
        return []
    count = max(1, count)
    if len(files) < count:
        shards: list[ShardWork] = []
        for index in range(count):
            number = index % len(files)
            stripes = len(range(number, count, len(files)))
            listed = files[number]
            unit = Unit(listed.key, listed.size, index // len(files), stripes, listed.md5)
            shards.append(ShardWork(index, units=(unit,)))
        return shards
    weights = [max(1, listed.size) for listed in files]
    total = sum(weights)
    groups: list[list[Unit]] = [[]]
    done = 0
    for position, (listed, weight) in enumerate(zip(files, weights, strict=True)):
        files_left, groups_left = len(files) - position, count - len(groups)
        share_reached = done + weight / 2 > total * len(groups) / count
        if groups[-1] and groups_left and (share_reached or files_left == groups_left):
            groups.append([])
        groups[-1].append(Unit(listed.key, listed.size, md5=listed.md5))
        done += weight
    return [ShardWork(index, units=tuple(units)) for index, units in enumerate(groups)]


@dataclass(frozen=True)
class Plan:
    """A run's shards, and where their data files are: the inventory's destination bucket and its columns
    (fileSchema), or the CSV manifest's bucket (no columns)."""

    shards: tuple[ShardWork, ...]
    data_bucket: str = ""
    columns: tuple[str, ...] = ()


def encode_plan(plan: Plan) -> bytes:
    return json.dumps(
        {
            "format": FORMAT_VERSION,
            "dataBucket": plan.data_bucket,
            "columns": list(plan.columns),
            "shards": [
                {
                    "startAt": s.start_at,
                    "endBefore": s.end_before,
                    "units": [[u.key, u.size, u.stripe, u.stripes, u.md5] for u in s.units],
                }
                for s in plan.shards
            ],
        },
        ensure_ascii=False,
    ).encode()


def decode_plan(data: bytes) -> Plan:
    try:
        document: dict[str, Any] = json.loads(data)
        if document.get("format") != FORMAT_VERSION:
            raise JobError(f"shards.json format {document.get('format')!r} is not {FORMAT_VERSION}")
        shards = tuple(
            ShardWork(
                index,
                str(entry["startAt"]),
                None if entry["endBefore"] is None else str(entry["endBefore"]),
                tuple(_unit(*unit) for unit in entry["units"]),
            )
            for index, entry in enumerate(document["shards"])
        )
        return Plan(shards, str(document["dataBucket"]), tuple(str(c) for c in document["columns"]))
    except JobError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise JobError(f"shards.json cannot be read: {exc!r}") from None


def _unit(key: object, size: object, stripe: object, stripes: object, md5: object = "") -> Unit:
    return Unit(str(key), int(str(size)), int(str(stripe)), int(str(stripes)), str(md5))


@dataclass(frozen=True)
class JobPaths:
    """Where a job's state lives under the state prefix (in the swept bucket, or the state bucket)."""

    state_prefix: str
    job: str

    @property
    def base(self) -> str:
        return f"{self.state_prefix}backfill/{self.job}/"

    @property
    def job_key(self) -> str:
        return self.base + "job.json"

    def run(self, run: int) -> str:
        return f"{self.base}run-{run:04d}/"

    def plan_key(self, run: int) -> str:
        return self.run(run) + "shards.json"

    def shard_folder(self, run: int, shard: int) -> str:
        """The shard's folder relative to the state prefix (its checkpoint and leases)."""
        return f"{self.run(run)}shard-{shard:05d}".removeprefix(self.state_prefix)

    def done_prefix(self, run: int) -> str:
        return self.run(run) + "done/"

    def done_key(self, run: int, shard: int) -> str:
        return f"{self.done_prefix(run)}shard-{shard:05d}"

    def failures_prefix(self, run: int) -> str:
        return self.run(run) + "failures/"

    def failures_key(self, run: int, shard: int, chunk: int) -> str:
        return f"{self.failures_prefix(run)}shard-{shard:05d}-{chunk:06d}.csv"

    def report_key(self, run: int, name: str) -> str:
        return f"{self.run(run)}report/{name}"
