"""List existing objects, build the events OSS would have sent for them, and hand them to the upload
function (in-process through the local FC, or as asynchronous FC invocations), resumably and politely:
a rate limit, a checkpoint file, a failure-rate breaker, and a report of failures that `--manifest`
accepts again. A failure is in the report before the checkpoint moves past it, so no object is ever
neither done nor reported. Only an unfinished run of the same job (endpoint, AccessKey ID, bucket, prefix,
since, rules) resumes from a checkpoint; a finished one leaves none."""

from __future__ import annotations

import hashlib
import io
import json
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

import oss2

from autotag.gateway import RateLimiter
from autotag.inventory import InventoryError, manifest_rows, parse_location
from cloudformats.oss_events import ObjectEvent, event_record

OWNER_ID = "1234567890123456"
BREAKER_WINDOW = 200  # outcomes the failure rate is measured over


@dataclass(frozen=True)
class ExistingObject:
    key: str
    size: int
    etag: str
    last_modified: datetime
    version_id: str | None = None


@dataclass(frozen=True)
class BackfillJob:
    """What a backfill is: only a run of the same job resumes from its checkpoint. The endpoint and the
    AccessKey ID say which cloud and account (the local cloud's checkpoint is not Alibaba Cloud's), the
    rules' fingerprint what the objects are tagged with."""

    endpoint: str
    access_key_id: str
    bucket: str
    prefix: str
    since: str
    rules: str

    @property
    def scope(self) -> str:
        """A short name for the job, the same for the same job."""
        text = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def describe(self) -> str:
        where = f"oss://{self.bucket}/{self.prefix}" + (f" since {self.since}" if self.since else "")
        return f"{where} at {self.endpoint} as {self.access_key_id}, rules {self.rules}"


class CheckpointError(ValueError):
    """A checkpoint file that is not this job's, or not a checkpoint; the message names the file."""


@dataclass
class BackfillCheckpoint:
    """Where an unfinished backfill job stands: the last key handed over, and the counts. A finished run
    removes its checkpoint (`finish`): the next run is a new job, listing every object again."""

    job: BackfillJob
    marker: str = ""
    submitted: int = 0
    failed: int = 0

    @classmethod
    def load(cls, path: Path | None, job: BackfillJob) -> BackfillCheckpoint:
        """The checkpoint `path` holds for `job`, or a fresh one when there is none; one of another job
        (or of an earlier version, which named no endpoint, account or rules) is refused."""
        fresh = cls(job)
        if path is None or not path.exists():
            return fresh
        try:
            document = json.loads(path.read_text())
            saved = cls(
                BackfillJob(**document["job"]), *(document[k] for k in ("marker", "submitted", "failed"))
            )
        except (ValueError, KeyError, TypeError) as error:
            raise CheckpointError(
                f"{path} is not a checkpoint of this version ({type(error).__name__})"
            ) from None
        if saved.job != job:
            raise CheckpointError(f"{path} is the checkpoint of another backfill ({saved.job.describe()})")
        return saved

    def save(self, path: Path | None) -> None:
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            document: dict[str, Any] = {"job": asdict(self.job), "marker": self.marker}
            document |= {"submitted": self.submitted, "failed": self.failed}
            path.write_text(json.dumps(document))

    @staticmethod
    def finish(path: Path | None) -> None:
        """The job went through its whole listing: nothing is left to resume."""
        if path is not None:
            path.unlink(missing_ok=True)


@dataclass
class BackfillReport:
    listed: int = 0
    submitted: int = 0
    succeeded: int = 0
    failed: int = 0
    skipped_older: int = 0
    missing: int = 0  # keys of a manifest with no object any more
    missing_keys: list[str] = field(default_factory=list)  # the first of them
    stopped: str = ""
    failures: list[dict[str, str]] = field(default_factory=list)


def object_created_event(bucket: str, region: str, obj: ExistingObject) -> bytes:
    """The event OSS sends for a PutObject of this object, timed at its Last-Modified (so TTLs run from
    when the object was created, not from the backfill)."""
    event = ObjectEvent(
        event_name="ObjectCreated:PutObject",
        bucket=bucket,
        key=obj.key,
        size=obj.size,
        delta_size=obj.size,
        etag=obj.etag,
        version_id=obj.version_id,
        request_id="backfill",
        source_ip="127.0.0.1",
        event_time=obj.last_modified.timestamp(),
    )
    record = event_record(event, region=region, owner_id=OWNER_ID, rule_id="autotag-backfill")
    return json.dumps({"events": [record]}, ensure_ascii=False).encode()


def listed_objects(bucket: oss2.Bucket, prefix: str, marker: str) -> Iterator[ExistingObject]:
    for info in oss2.ObjectIterator(bucket, prefix=prefix, marker=marker, max_keys=1000):
        if info.key.endswith("/") and info.size == 0:
            continue  # a folder placeholder: nothing to tag
        yield ExistingObject(
            info.key, info.size, info.etag, datetime.fromtimestamp(info.last_modified, timezone.utc)
        )


class ManifestError(ValueError):
    """The manifest cannot be read or used; the message names the file and the line."""


def _manifest_text(bucket: oss2.Bucket, manifest: str) -> str:
    """The text of a local manifest file, or of one in OSS (`oss://bucket/key`)."""
    if manifest.startswith("oss://"):
        try:
            location = parse_location(manifest, "--manifest")
        except InventoryError as error:
            raise ManifestError(str(error)) from None
        source = oss2.Bucket(bucket.auth, bucket.endpoint, location.bucket, session=bucket.session)
        data = source.get_object(location.key).read()
    else:
        try:
            data = Path(manifest).read_bytes()
        except OSError as error:
            raise ManifestError(f"{manifest}: cannot be read ({error.strerror or error})") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ManifestError(f"{manifest}: not UTF-8 text ({error.reason} at byte {error.start})") from None


def read_manifest(bucket: oss2.Bucket, manifest: str) -> list[tuple[str, str | None]]:
    """(key, version id) of each object a manifest names, all checked before any is sent: a CSV manifest
    (`*.csv`: `bucket,key[,versionId]`, keys URL-encoded — what a job's report/failed.csv and OSS Batch
    Operations take), a failure report (JSON lines with `key`), or plain lines of keys (blank lines
    skipped)."""
    text = _manifest_text(bucket, manifest)
    entries: list[tuple[str, str | None]] = []
    if manifest.endswith(".csv"):
        try:
            for number, row in manifest_rows(io.StringIO(text), manifest):
                if row.bucket != bucket.bucket_name:
                    raise ManifestError(
                        f"{manifest}:{number + 1}: names bucket {row.bucket!r}, not {bucket.bucket_name!r}"
                    )
                entries.append((row.key, row.version_id))
        except InventoryError as error:
            raise ManifestError(str(error)) from None
        return entries
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        if not line.lstrip().startswith("{"):
            entries.append((line, None))
            continue
        try:
            document = json.loads(line)
        except json.JSONDecodeError as error:
            raise ManifestError(
                f"{manifest}:{number}: not JSON ({error.msg} at column {error.colno})"
            ) from None
        key = document.get("key") if isinstance(document, dict) else None
        if not isinstance(key, str) or not key:
            raise ManifestError(f'{manifest}:{number}: a failure report line names its object in "key"')
        entries.append((key, None))
    return entries


def manifest_objects(
    bucket: oss2.Bucket, entries: Iterable[tuple[str, str | None]], missing: list[str]
) -> Iterator[ExistingObject]:
    """The objects of a manifest's entries, as they are now (a HEAD each); a key no object has any more goes
    to `missing`."""
    for key, version_id in entries:
        try:
            head = bucket.head_object(key, params={"versionId": version_id} if version_id else None)
        except oss2.exceptions.NotFound:
            missing.append(key)
            continue
        yield ExistingObject(
            key,
            head.content_length or 0,
            head.etag or "",
            datetime.fromtimestamp(head.last_modified, timezone.utc),
            version_id,
        )


Submit = Callable[[bytes], str | None]  # an event -> None when it went through, else the error


def run_backfill(
    objects: Iterable[ExistingObject],
    submit: Submit,
    *,
    bucket: str,
    region: str,
    checkpoint: BackfillCheckpoint,
    checkpoint_path: Path | None,
    since: datetime | None = None,
    rate: float | None = None,
    workers: int = 8,
    max_failure_rate: float = 0.5,
    progress: Callable[[BackfillReport], None] | None = None,
    record_failure: Callable[[dict[str, str]], None] | None = None,
) -> BackfillReport:
    """Hand `objects` to `submit`. Each failure goes to `record_failure` (kept in the report without
    one) before the checkpoint passes it."""
    report = BackfillReport()
    limiter = RateLimiter(rate) if rate else None
    recent: deque[bool] = deque(maxlen=BREAKER_WINDOW)
    lock = threading.Lock()

    def one(obj: ExistingObject) -> tuple[ExistingObject, str | None]:
        if limiter is not None:
            limiter.acquire()
        return obj, submit(object_created_event(bucket, region, obj))

    def batches() -> Iterator[list[ExistingObject]]:
        batch: list[ExistingObject] = []
        for obj in objects:
            report.listed += 1
            if since is not None and obj.last_modified < since:
                report.skipped_older += 1
                continue
            batch.append(obj)
            if len(batch) == workers * 8:
                yield batch
                batch = []
        if batch:
            yield batch

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="backfill") as pool:
        for batch in batches():
            for obj, error in pool.map(one, batch):
                with lock:
                    report.submitted += 1
                    recent.append(error is None)
                    if error is None:
                        report.succeeded += 1
                    else:
                        report.failed += 1
                        failure = {"bucket": bucket, "key": obj.key, "error": error}
                        if record_failure is not None:
                            record_failure(failure)
                        else:
                            report.failures.append(failure)
            checkpoint.marker = batch[-1].key
            checkpoint.submitted += len(batch)
            checkpoint.failed = report.failed
            checkpoint.save(checkpoint_path)
            if progress is not None:
                progress(report)
            failure_rate = recent.count(False) / len(recent)
            if len(recent) >= 20 and failure_rate > max_failure_rate:
                report.stopped = (
                    f"stopped: {failure_rate:.0%} of the last {len(recent)} objects failed "
                    f"(limit {max_failure_rate:.0%}); fix the cause and run again to resume"
                )
                break
    return report


class FailureReport:
    """Failures as JSON lines, appended and flushed one by one: what `autotag backfill --manifest` reads
    back. Each line carries the run that wrote it."""

    def __init__(self, path: Path, run_id: str) -> None:
        self.path, self.run_id, self.count = path, run_id, 0
        self._file: TextIO | None = None  # opened at the first failure: no run leaves an empty report
        self._lock = threading.Lock()

    def __call__(self, failure: dict[str, str]) -> None:
        with self._lock:
            if self._file is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = self.path.open("a", encoding="utf-8")
            self._file.write(json.dumps({**failure, "run": self.run_id}, ensure_ascii=False) + "\n")
            self._file.flush()
            self.count += 1

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def summary(report: BackfillReport) -> dict[str, Any]:
    return {k: v for k, v in report.__dict__.items() if k != "failures"}
