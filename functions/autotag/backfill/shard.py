"""One run of one backfill shard: hold the shard's lease, read its objects from where its checkpoint left
off, send each through the upload path's own `tag_object` on a bounded worker pool under the job's QPS
share, and checkpoint — counts, position and the failures found since the last checkpoint — every
`checkpoint_seconds`, stopping cleanly before the function's deadline. The caller invokes the next run.

The sweep's machinery does the rest: leases whose life comes from OSS's clock (state.StateStore), the
gateway's retries, the rate limiter that never waits past the deadline. A run that finds the shard's lease
held waits for it: a holder that is alive renews its lease at each checkpoint, and this run leaves it to
that holder; a lease that is not renewed lapses, and this run takes over (the holder died — FC retried an
invocation that crashed, say). So a shard never runs twice at once and never stalls.

The run reads the job every few seconds (`halt_check_seconds`): a cancelled, failed or restarted job stops
it within seconds, and a rate-limited run works in windows short enough for that. Its first checkpoint
comes as soon, so a job's progress shows at once; then one every `checkpoint_seconds`. A shard whose
failure rate passes the job's `maxFailureRate` (over its last 1,000 objects, once it has tried 100)
stops the whole job, as S3 Batch Operations does."""

from __future__ import annotations

import contextlib
import csv
import io
import time
from collections import Counter, deque
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone

from ..bucket_gateway import BucketGateway, ListingPage
from ..csv_cells import key_cell, text_cell
from ..events import ObjectEvent
from ..gateway import ObjectGone, OutOfTime, PermanentOssError, RateLimiter, TransientOssError
from ..inventory import InventoryError, Row
from ..inventory_reader import records
from ..rules import RuleSet
from ..sweep.checkpoint import Scope
from ..sweep.state import Lease, LeaseLost, StateStore
from ..tagger import FAILED, REJECTED, ObjectResult, tag_object
from ..timestamps import format_timestamp
from .job import FAILED as JOB_FAILED
from .job import RUNNING, JobError, JobPaths, JobSpec, Plan, ShardWork, decode_job, encode_job, stopped
from .progress import FAILURES, ProgressError, ShardProgress, add_counts, decode_progress, encode_progress

BREAKER_WINDOW = 1000  # outcomes the failure rate is measured over
BREAKER_MINIMUM = 100  # objects a shard tries before its failure rate can stop the job
HALT_CHECK_SECONDS = 5.0  # a run reads the job (cancelled?) this often; its first checkpoint comes then
# Outcomes of a run
DONE, CONTINUE, STOPPED, BUSY, RETRY = "done", "continue", "stopped", "busy", "retry"


@dataclass(frozen=True)
class ShardLimits:
    workers: int = 16
    qps: float | None = None  # this shard's share of the job's
    checkpoint_seconds: float = 30.0
    lease_seconds: float = 960.0
    page_size: int = 1000

    @property
    def poll_seconds(self) -> float:
        return max(0.5, self.checkpoint_seconds / 2)

    @property
    def halt_check_seconds(self) -> float:
        """How often a run reads the job (one GET): a cancel stops a shard within about this long."""
        return min(HALT_CHECK_SECONDS, self.checkpoint_seconds)

    @property
    def window(self) -> int:
        """Objects worked between two looks at the job: four per worker, or, under a QPS share, what the
        share tags in half a halt check (about 2 requests per object), at least one per worker."""
        full = self.workers * 4
        if not self.qps:
            return full
        paced = int(self.qps * self.halt_check_seconds / 4)
        return max(self.workers, min(full, paced))


@dataclass
class ShardRun:
    """What one invocation did for its shard."""

    job: str
    run: int
    shard: int
    outcome: str = ""  # done, continue (the next run goes on), stopped, busy (another run holds it), retry
    reason: str = ""
    resumed: bool = False
    counts: Counter[str] = field(default_factory=Counter)
    requests: int = 0
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, object]:
        return {
            "job": self.job,
            "run": self.run,
            "shard": self.shard,
            "outcome": self.outcome,
            "reason": self.reason,
            "resumed": self.resumed,
            "objects": sum(self.counts.values()),
            "counts": dict(self.counts),
            "ossRequests": self.requests,
            "seconds": round(self.seconds, 3),
            "warnings": self.warnings,
        }


@dataclass(frozen=True)
class Entry:
    """An object to tag and where the shard stands once it is done."""

    row: Row
    after_key: str = ""
    unit: int = 0
    next_row: int = 0
    unit_bytes_done: int = 0


def _listing_entries(
    gateway: BucketGateway, prefix: str, work: ShardWork, after_key: str, page_size: int
) -> Iterator[Entry]:
    """The shard's key range from after `after_key` on, the next page fetched while this one is worked."""
    start = after_key or _before(work.start_at)

    def fetch(marker: str) -> ListingPage:
        return gateway.list_page(prefix, marker, page_size)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="listing") as fetcher:
        upcoming = fetcher.submit(fetch, start)
        while True:
            page = upcoming.result()
            if page.truncated:
                upcoming = fetcher.submit(fetch, page.next_key_marker)
            for listed in page.objects:
                if work.end_before is not None and listed.key >= work.end_before:
                    return
                if listed.key < work.start_at:
                    continue
                row = Row(
                    gateway.bucket.bucket_name,
                    listed.key,
                    None,
                    listed.size,
                    listed.last_modified,
                    listed.etag,
                )
                yield Entry(row, after_key=listed.key)
            if not page.truncated:
                return


def _before(key: str) -> str:
    """A listing marker just below `key` (listing after it reaches `key`); "" for the first key."""
    if not key:
        return ""
    last = ord(key[-1])
    if last == 0:
        return key[:-1]
    below = last - 1 if not 0xD800 <= last - 1 <= 0xDFFF else 0xD7FF
    return key[:-1] + chr(below) + "\U0010ffff"


def _unit_entries(
    data: BucketGateway, plan: Plan, work: ShardWork, progress: ShardProgress, location: str
) -> Iterator[Entry]:
    """The shard's data files from its checkpoint on: records of its stripe of each file, in order. Each
    entry says how many bytes of the shard's files are read (its progress)."""
    done_bytes = sum(unit.size for unit in work.units[: progress.unit])
    for number in range(progress.unit, len(work.units)):
        unit = work.units[number]
        start = progress.row if number == progress.unit else 0
        read = [0]
        listing = records(data, unit.key, plan.columns, start, read, unit.listed, location)
        for record, row in listing:
            if record % unit.stripes != unit.stripe:
                continue
            yield Entry(row, unit=number, next_row=record + 1, unit_bytes_done=done_bytes + read[0])
        done_bytes += unit.size
        yield Entry(Row("", ""), unit=number + 1, next_row=0, unit_bytes_done=done_bytes)  # a file's end


def _event(row: Row, region: str) -> ObjectEvent:
    """The event OSS would have sent when the object was created: TTLs run from its Last-Modified."""
    return ObjectEvent(
        event_name="ObjectCreated:PutObject",
        bucket=row.bucket,
        key=row.key,
        region=region,
        event_time=format_timestamp(row.last_modified) if row.last_modified else "",
        size=row.size,
        etag=row.etag,
        version_id=row.version_id,
        request_id="backfill",
    )


class ShardRunner:
    def __init__(
        self,
        *,
        job: JobSpec,
        plan: Plan,
        shard: int,
        rules: RuleSet,
        gateway: BucketGateway,
        state: BucketGateway,
        data: BucketGateway | None,
        state_prefix: str,
        region: str,
        owner: str,
        limits: ShardLimits,
        deadline: float | None,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.job, self.plan, self.work = job, plan, plan.shards[shard]
        self.rules, self.gateway, self.state, self.data = rules, gateway, state, data
        self.state_prefix, self.region, self.owner = state_prefix, region, owner
        self.limits, self.deadline, self.monotonic, self.sleep = limits, deadline, monotonic, sleep
        self.paths = JobPaths(state_prefix, job.id)
        self.store = StateStore(
            state,
            state_prefix,
            Scope(job.bucket, job.prefix),
            folder=self.paths.shard_folder(job.run, shard),
            secrets=rules.ownership.secrets,  # its leases are sealed as the sweep's are
        )
        self.report = ShardRun(job.id, job.run, shard)
        self.recent: deque[bool] = deque(maxlen=BREAKER_WINDOW)
        self.pending_failures: list[list[str]] = []
        if limits.qps:
            # The job's QPS paces the objects' requests and the reads of their listing or data files. The
            # state's few requests (a lease, a checkpoint every checkpoint_seconds) are not paced: the
            # last checkpoint is written in the time kept back after the deadline, which the limiter
            # never waits into.
            limiter = RateLimiter(limits.qps, deadline=deadline)
            for each in {id(g): g for g in (gateway, data) if g is not None and g is not state}.values():
                each.limiter = limiter

    # -- the run -------------------------------------------------------------------------------------------

    def run(self) -> ShardRun:
        started = self.monotonic()
        gateways = {id(g): g for g in (self.gateway, self.state, self.data) if g is not None}.values()
        before = sum(g.requests for g in gateways)
        lease: Lease | None = None
        progress: ShardProgress | None = None
        try:
            lease = self._take_lease()
            if lease is None:
                return self.report
            progress = self._load()
            self.report.resumed = progress.runs > 0
            if progress.done:
                self.report.outcome, self.report.reason = DONE, "the shard was already done"
                return self.report
            progress = self._work(
                progress, lease, started, lambda: sum(g.requests for g in gateways) - before
            )
        except LeaseLost as lost:
            lease = None
            self.report.outcome, self.report.reason = STOPPED, str(lost)
        except TransientOssError as error:  # the listing or the state: the checkpoint stands
            self.report.outcome = RETRY
            self.report.reason = f"OSS kept failing ({error}); the shard resumes from its last checkpoint"
        except PermanentOssError as error:  # a missing bucket, a refused listing: retrying cannot help
            self.report.outcome, self.report.reason = STOPPED, f"OSS refused the backfill ({error})"
            self._fail_job(self.report.reason)
        except InventoryError as error:
            self.report.outcome, self.report.reason = STOPPED, str(error)
            self._fail_job(str(error))
        except ObjectGone as error:  # an object the run needs and OSS says is gone: retrying cannot help
            self.report.outcome, self.report.reason = STOPPED, f"OSS says it is gone: {error}"
            self._fail_job(self.report.reason)
        finally:
            if lease is not None:
                with contextlib.suppress(TransientOssError, PermanentOssError, OutOfTime):
                    self.store.release(lease)
            self.report.requests = sum(g.requests for g in gateways) - before
            self.report.seconds = self.monotonic() - started
            self.report.warnings = list(self.store.warnings)
        return self.report

    def _take_lease(self) -> Lease | None:
        """The shard's lease, waiting for a lease someone else holds: None (and the report says why) when a
        live holder keeps it, or this run's time ran out waiting (the next run takes up the wait)."""
        seen: tuple[int, datetime] | None = None
        while True:
            oss_now = self.state.oss_now() or datetime.now(timezone.utc)
            taken = self.store.acquire(self.owner, self.limits.lease_seconds, oss_now)
            if isinstance(taken, Lease):
                return taken
            newest = self._newest_lease()
            if seen is not None and newest is not None and newest != seen:
                self.report.outcome = BUSY
                self.report.reason = f"run {taken.owner} holds the shard and is alive (it renewed its lease)"
                return None
            seen = seen or newest
            if self.deadline is not None and self.monotonic() + self.limits.poll_seconds >= self.deadline:
                self.report.outcome = CONTINUE
                self.report.reason = (
                    f"run {taken.owner} holds the shard and has not renewed its lease since this run began "
                    "waiting; the next run goes on waiting"
                )
                return None
            self.sleep(self.limits.poll_seconds)

    def _newest_lease(self) -> tuple[int, datetime] | None:
        leases = [
            (int(entry.key.rsplit("-", 1)[1]), entry.last_modified)
            for entry in self.state.list_entries(self.store.base + "lease-")
            if entry.key.rsplit("-", 1)[1].isdigit()
        ]
        return max(leases) if leases else None

    def _load(self) -> ShardProgress:
        data = self.state.read_object(self.store.checkpoint_key)
        if data is None:
            return ShardProgress()
        try:
            return decode_progress(data)
        except ProgressError as error:
            self.store.warnings.append(f"{self.store.checkpoint_key}: {error}; the shard starts over")
            return ShardProgress()

    def _entries(self, progress: ShardProgress) -> Iterator[Entry]:
        if self.work.units:
            if self.data is None:
                raise InventoryError("the job reads data files but names no bucket for them")
            return _unit_entries(self.data, self.plan, self.work, progress, self.job.location)
        return _listing_entries(
            self.gateway, self.job.prefix, self.work, progress.after_key, self.limits.page_size
        )

    def _windows(self, progress: ShardProgress) -> Generator[list[Entry], None, None]:
        window: list[Entry] = []
        size = self.limits.window
        for entry in self._entries(progress):
            window.append(entry)
            if len(window) >= size:
                yield window
                window = []
        if window:
            yield window

    def _work(
        self, progress: ShardProgress, lease: Lease, started: float, requests: Callable[[], int]
    ) -> ShardProgress:
        now = self.state.oss_now() or datetime.now(timezone.utc)
        progress = replace(progress, started=progress.started or now, stopped="")
        runs_before, requests_before, last_saved = progress.runs, progress.requests, self.monotonic()
        counts: Counter[str] = Counter()

        def save(current: ShardProgress, *, final: bool = False) -> ShardProgress:
            nonlocal last_saved
            chunks = current.failure_chunks
            if self.pending_failures:
                chunks += 1
                self._write_failures(chunks)
            current = replace(
                current,
                counts=add_counts(current.counts, dict(counts)),
                failure_chunks=chunks,
                requests=requests_before + requests(),
                active_seconds=current.active_seconds + (self.monotonic() - last_saved),
                runs=runs_before + (1 if final else 0),
                updated=self.state.oss_now() or datetime.now(timezone.utc),
            )
            self.report.counts.update(counts)
            counts.clear()
            self.store.save_document(encode_progress(current), lease)
            last_saved = self.monotonic()
            return current

        tagging_clock = self.gateway.oss_now() or now
        try:
            windows = self._windows(progress)
            next_save = next_look = started + self.limits.halt_check_seconds
            try:
                window = next(windows, None)
            except OutOfTime as late:  # the listing's first page, at the deadline
                window = None
                self.report.outcome = CONTINUE
                self.report.reason = _handover(late)
            with ThreadPoolExecutor(max_workers=self.limits.workers, thread_name_prefix="backfill") as pool:
                while window is not None:
                    if self.deadline is not None and self.monotonic() >= self.deadline:
                        self.report.outcome = CONTINUE
                        self.report.reason = "stopped before the function timeout; the next run goes on"
                        break
                    try:
                        outcomes = list(pool.map(lambda e: self._one(e, tagging_clock), window))
                    except OutOfTime as late:
                        # The rate limit at the deadline: this window (done or not) is done again by the next
                        # run, from the last position saved.
                        self.report.outcome = CONTINUE
                        self.report.reason = _handover(late)
                        break
                    for outcome, failure in outcomes:
                        if outcome:
                            counts[outcome] += 1
                            self.recent.append(outcome not in FAILURES)
                        if failure is not None:
                            self.pending_failures.append(failure)
                    last = window[-1]
                    progress = replace(
                        progress,
                        after_key=last.after_key,
                        unit=last.unit,
                        row=last.next_row,
                        units_bytes=last.unit_bytes_done,
                    )
                    breaker = self._breaker(progress, counts)
                    if breaker:
                        progress = save(replace(progress, stopped=breaker), final=True)
                        self._fail_job(breaker)
                        self.report.outcome, self.report.reason = STOPPED, breaker
                        return progress
                    try:
                        # The next window before a look at the job: a shard whose range has ended is done,
                        # even when the job was cancelled meanwhile.
                        window = next(windows, None)
                    except OutOfTime as late:  # the listing's next page, at the deadline
                        self.report.outcome = CONTINUE
                        self.report.reason = _handover(late)
                        break
                    if window is None:
                        break
                    now_monotonic = self.monotonic()
                    if now_monotonic >= next_save:
                        progress = save(progress)
                        next_save = self.monotonic() + self.limits.checkpoint_seconds
                    if now_monotonic >= next_look:
                        next_look = now_monotonic + self.limits.halt_check_seconds
                        halt = self._job_halted()
                        if halt:
                            progress = save(replace(progress, stopped=halt), final=True)
                            self.report.outcome, self.report.reason = STOPPED, halt
                            return progress
            windows.close()
            if self.report.outcome != CONTINUE:
                progress = save(replace(progress, done=True), final=True)
                self.state.write_object(self.paths.done_key(self.job.run, self.work.index), b"")
                self.report.outcome, self.report.reason = DONE, ""
                return progress
            return save(replace(progress, stopped=self.report.reason), final=True)
        except (InventoryError, ObjectGone, PermanentOssError) as error:
            # the shard cannot go on; what it did until now counts in its checkpoint and so in the report
            with contextlib.suppress(TransientOssError, PermanentOssError, OutOfTime, LeaseLost):
                save(replace(progress, stopped=str(error)), final=True)
            raise

    def _one(self, entry: Entry, clock: datetime) -> tuple[str, list[str] | None]:
        """Tag one object: its outcome ("" for an entry that is no object to count: a file's end, a delete
        marker, a key outside the job or the state prefix), and its line for the failures, if it failed."""
        row = entry.row
        if not row.key or row.delete_marker or not row.key.startswith(self.job.prefix):
            return "", None
        if row.key.startswith(self.state_prefix):
            return "", None  # the backfill's and the sweep's own state
        if row.key.endswith("/") and row.size == 0:
            return "ignored", None  # a folder placeholder: nothing to tag
        if row.bucket and row.bucket != self.job.bucket:
            why = f"the list names bucket {row.bucket!r}, not {self.job.bucket!r}"
            return REJECTED, self._failure(row, REJECTED, why)
        if (
            self.job.since is not None
            and row.last_modified is not None
            and row.last_modified < self.job.since
        ):
            return "older", None
        row = replace(row, bucket=self.job.bucket)
        try:
            if row.last_modified is None and self.rules.ttls and not self.rules.needs:
                # A manifest line carries no Last-Modified, and these rules would not HEAD: HEAD here, so TTLs
                # run from the object's creation and tags already expired are not added.
                head = self.gateway.head(row.key, row.version_id)
                row = replace(row, size=head.size, last_modified=head.last_modified, etag=head.etag)
            result = tag_object(
                _event(row, self.region),
                self.rules,
                self.gateway,
                clock=clock,
                ignored_prefix=self.state_prefix,
            )
        except TransientOssError as error:
            result = ObjectResult(_event(row, self.region), FAILED, str(error))
        except PermanentOssError as error:  # the HEAD above, refused
            result = ObjectResult(_event(row, self.region), REJECTED, str(error))
        if result.outcome in FAILURES:
            return result.outcome, self._failure(row, result.outcome, result.reason)
        return result.outcome, None

    def _failure(self, row: Row, outcome: str, reason: str) -> list[str]:
        return failure_row(self.job.bucket, row.key, row.version_id, outcome, reason)

    def _write_failures(self, chunk: int) -> None:
        text = io.StringIO()
        csv.writer(text, lineterminator="\n").writerows(self.pending_failures)
        key = self.paths.failures_key(self.job.run, self.work.index, chunk)
        self.state.write_object(key, text.getvalue().encode("utf-8"))
        self.pending_failures = []

    def _breaker(self, progress: ShardProgress, counts: Counter[str]) -> str:
        tried = progress.processed + sum(counts.values())
        if tried < BREAKER_MINIMUM or not self.recent:
            return ""
        failed = self.recent.count(False)
        rate = failed / len(self.recent)
        if rate <= self.job.max_failure_rate:
            return ""
        return (
            f"shard {self.work.index}: {failed} of its last {len(self.recent)} objects failed "
            f"({rate:.0%}, more than the job's maxFailureRate {self.job.max_failure_rate:.0%})"
        )

    def _read_job(self) -> JobSpec | None:
        data = self.state.read_object(self.paths.job_key)
        if data is None:
            return None
        try:
            return decode_job(data)
        except JobError:
            return None

    def _job_halted(self) -> str:
        """Why the job says this shard must stop ("" when it goes on)."""
        job = self._read_job()
        if job is None:
            return "the job's job.json is gone or unreadable"
        if job.run != self.job.run:
            return f"the job was restarted (run {job.run})"
        if job.status != RUNNING:
            return f"the job is {job.status}: {job.reason}" if job.reason else f"the job is {job.status}"
        return ""

    def _fail_job(self, reason: str) -> None:
        """Mark the job failed (the other shards stop at their next checkpoint)."""
        with contextlib.suppress(TransientOssError, PermanentOssError, OutOfTime):
            job = self._read_job()
            if job is not None and job.run == self.job.run and job.status == RUNNING:
                self.state.write_object(self.paths.job_key, encode_job(stopped(job, JOB_FAILED, reason)))


def _handover(late: OutOfTime) -> str:
    return f"stopped before the function timeout ({late}); the next run goes on"


def lease_seconds(timeout: float, margin: float = 60.0) -> float:
    """How long a lease lives from its Last-Modified: FC ends an invocation by its timeout."""
    return (timeout or 900.0) + margin


def checkpoint_seconds(timeout: float) -> float:
    """At least every 30 s, and at least 20 times per run (short timeouts)."""
    return max(1.0, min(30.0, (timeout or 600.0) / 20))


def expired(last_modified: datetime, life: float, oss_now: datetime) -> bool:
    return last_modified + timedelta(seconds=life) <= oss_now


def failure_row(bucket: str, key: str, version_id: str | None, outcome: str, reason: str) -> list[str]:
    """A line of the failures (failures.csv; its first three cells are failed.csv's): bucket, URL-encoded
    key, version, outcome and why on one line, no cell of it a spreadsheet formula (csv_cells.py)."""
    return [
        bucket,
        key_cell(key),
        text_cell(version_id or ""),
        text_cell(outcome),
        text_cell(" ".join(reason.split())),
    ]
