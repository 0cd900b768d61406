"""`autotag backfill` on a laptop: the backfill flow's distributed Map run in-process, with the operator's
own credentials. The items are read by the flow's own readers (cloudformats.items: a listing, a CSV
manifest, an OSS inventory), made and cut into batches as the flow's definition says (cloudformats.batching),
and each batch goes to the backfill function's own processor (autotag.handlers.map_items.tag_batch) on up to
`workers` threads: one HEAD and, for an object whose tags change, one PutObjectTagging.

What the laptop keeps of its own: a rate limit, a failure-rate breaker, a checkpoint file for a listing
(only an unfinished run of the same job — endpoint, AccessKey ID, bucket, prefix, since, rules — resumes
from it; a finished one leaves none), and a failure report: failed.csv, which `--manifest` reads back, and
beside it each failure's reason as JSON lines. A failure is in the report before the checkpoint moves past
it, so no object is ever neither done nor reported."""

from __future__ import annotations

import hashlib
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

from autotag.inventory import manifest_line
from cloudformats.batching import Batch, batch_input, batches
from cloudformats.items import CHUNK_BYTES, Item, SourceError, listed_item
from flowspec.definition import ItemBatcher

BREAKER_WINDOW = 200  # outcomes the failure rate is measured over
FAILED_OUTCOMES = ("failed", "rejected")


@dataclass(frozen=True)
class BackfillJob:
    """What a backfill of a listing is: only a run of the same job resumes from its checkpoint. The
    endpoint and the AccessKey ID say which cloud and account (the local cloud's checkpoint is not Alibaba
    Cloud's), the rules' fingerprint what the objects are tagged with."""

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
    """Where an unfinished backfill of a listing stands: the last key whose batch is done, and the counts.
    A finished run removes its checkpoint (`finish`): the next run is a new job, listing every object."""

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


class OssSource:
    """The flow's ItemReader sources, read with the operator's own client. A listing starts after
    `start_after` (a checkpoint's marker) and passes over objects last modified before `since`, counting
    them; a CSV manifest may be a local file (`local_files`, by the name it is read as)."""

    def __init__(
        self,
        bucket_for: Callable[[str], oss2.Bucket],
        start_after: str = "",
        since: datetime | None = None,
        local_files: dict[str, Path] | None = None,
    ) -> None:
        self.bucket_for, self.start_after, self.since = bucket_for, start_after, since
        self.local_files = local_files or {}
        self.skipped_older = 0

    def list_objects(self, bucket: str, prefix: str) -> Iterator[dict[str, Any]]:
        try:
            listing = oss2.ObjectIteratorV2(
                self.bucket_for(bucket), prefix=prefix, start_after=self.start_after, max_keys=1000
            )
            for info in listing:
                modified = datetime.fromtimestamp(info.last_modified, timezone.utc)
                if self.since is not None and modified < self.since:
                    self.skipped_older += 1
                    continue
                yield listed_item(bucket, info)
        except oss2.exceptions.OssError as error:
            raise SourceError(f"OSS.{error.code}", f"oss://{bucket}/{prefix}: {error.message}") from None

    def stream(self, bucket: str, key: str) -> Iterator[bytes]:
        if key in self.local_files:
            try:
                with self.local_files[key].open("rb") as file:
                    while piece := file.read(CHUNK_BYTES):
                        yield piece
            except OSError as error:
                raise SourceError("File.Unreadable", f"{key}: {error.strerror or error}") from None
            return
        try:
            stream = self.bucket_for(bucket).get_object(key)
            while piece := stream.read(CHUNK_BYTES):
                yield piece
        except oss2.exceptions.OssError as error:
            raise SourceError(f"OSS.{error.code}", f"oss://{bucket}/{key}: {error.message}") from None

    def read(self, bucket: str, key: str, limit: int) -> bytes:
        data = bytearray()
        for piece in self.stream(bucket, key):
            data += piece
            if len(data) > limit:
                raise SourceError("FnF.ItemReaderFailed", f"oss://{bucket}/{key} is over {limit} bytes")
        return bytes(data)


@dataclass
class BackfillReport:
    read: int = 0  # items read (objects named, and lines that could not be read)
    tagged: int = 0
    unchanged: int = 0
    skipped: int = 0
    failed: int = 0
    rejected: int = 0
    skipped_older: int = 0  # listed, but last modified before --since
    stopped: str = ""
    reasons: list[dict[str, Any]] = field(default_factory=list)  # without a FailureReport


Process = Callable[[Any], dict[str, Any]]  # a batch's input -> {"Results": [...], "Counts": {...}}


def _failure_of_unreadable(item: Item) -> dict[str, Any]:
    return {"Where": item.where, "Outcome": "failed", "Reason": item.error}


def run_backfill(
    items: Iterable[Item],
    batcher: ItemBatcher | None,
    batch_extra: dict[str, Any] | None,
    process: Process,
    *,
    checkpoint: BackfillCheckpoint,
    checkpoint_path: Path | None,
    workers: int = 8,
    max_failure_rate: float = 0.5,
    progress: Callable[[BackfillReport], None] | None = None,
    record_failure: Callable[[dict[str, Any]], None] | None = None,
) -> BackfillReport:
    """Cut `items` into batches as the flow does, and `process` `workers` batches at once. Each failed or
    rejected outcome (and each item that could not be read) goes to `record_failure` before the checkpoint
    passes it; the checkpoint's marker is the Key of the last item of the last batch done."""
    report = BackfillReport()
    recent: deque[bool] = deque(maxlen=BREAKER_WINDOW)

    def record(failure: dict[str, Any]) -> None:
        if record_failure is not None:
            record_failure(failure)
        else:
            report.reasons.append(failure)

    def groups() -> Iterator[list[Batch]]:
        group: list[Batch] = []
        for piece in batches(items, batcher):
            if isinstance(piece, Item):  # a line that could not be read: it fails alone
                report.read += 1
                report.failed += 1
                recent.append(False)
                record(_failure_of_unreadable(piece))
                continue
            report.read += len(piece.items)
            group.append(piece)
            if len(group) == workers:
                yield group
                group = []
        if group:
            yield group

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="backfill") as pool:
        for group in groups():
            answers = list(pool.map(process, [batch_input(b, batcher, batch_extra) for b in group]))
            for batch, answer in zip(group, answers, strict=True):
                for item, entry in zip(batch.items, answer["Results"], strict=True):
                    outcome = entry["Outcome"]
                    setattr(report, outcome, getattr(report, outcome) + 1)
                    recent.append(outcome not in FAILED_OUTCOMES)
                    if outcome in FAILED_OUTCOMES:  # with the file and line (or listing) that named it
                        record({"Where": item.where, **entry})
            last = group[-1].items[-1].value
            checkpoint.marker = last.get("Key", "") if isinstance(last, dict) else ""
            checkpoint.submitted += sum(len(b.items) for b in group)
            checkpoint.failed = report.failed + report.rejected
            checkpoint.save(checkpoint_path)
            if progress is not None:
                progress(report)
            failure_rate = recent.count(False) / len(recent) if recent else 0.0
            if len(recent) >= 20 and failure_rate > max_failure_rate:
                report.stopped = (
                    f"stopped: {failure_rate:.0%} of the last {len(recent)} objects failed "
                    f"(limit {max_failure_rate:.0%}); fix the cause and run again to resume"
                )
                break
    return report


class FailureReport:
    """What failed, appended and flushed one by one: `failed_csv` (bucket,key, keys URL-encoded: the CSV
    manifest `autotag backfill --manifest` and the manifest flow read back; a version's line has its
    versionId third, which that reader refuses by its line rather than retry another version) and, beside
    it, each failure with its outcome and reason as JSON lines, each with the run that wrote it. An item
    that could not be read names no object: it is in the reasons only, with its file and line."""

    def __init__(self, failed_csv: Path, run_id: str) -> None:
        self.path, self.run_id, self.count = failed_csv, run_id, 0
        self.reasons_path = failed_csv.with_name(failed_csv.stem + ".reasons.jsonl")
        self._csv: TextIO | None = None  # opened at the first failure: no run leaves an empty report
        self._reasons: TextIO | None = None
        self._lock = threading.Lock()

    def __call__(self, failure: dict[str, Any]) -> None:
        with self._lock:
            if self._csv is None or self._reasons is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._csv = self.path.open("a", encoding="utf-8", newline="")
                self._reasons = self.reasons_path.open("a", encoding="utf-8")
            if failure.get("Key"):
                self._csv.write(manifest_line(failure["Bucket"], failure["Key"], failure.get("VersionId")))
                self._csv.flush()
            line = {**failure, "Run": self.run_id}
            self._reasons.write(json.dumps(line, ensure_ascii=False) + "\n")
            self._reasons.flush()
            self.count += 1

    def close(self) -> None:
        for file in (self._csv, self._reasons):
            if file is not None:
                file.close()


def summary(report: BackfillReport) -> dict[str, Any]:
    return {k: v for k, v in report.__dict__.items() if k != "reasons"}
