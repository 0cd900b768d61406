"""`autotag backfill --in-fc`, `autotag backfill status JOB` and `autotag backfill cancel JOB`: the backfill
job that runs inside Function Compute. Starting and cancelling are synchronous invocations of the deployed
backfill function (it plans, writes the job's state and invokes the shards; this returns at once); status is
read from the job's state in OSS — job.json, the shard plan, each shard's checkpoint and the report."""

from __future__ import annotations

import hashlib
import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, Progress, TextColumn

from autotag.backfill.job import (
    COMPLETE,
    RUNNING,
    JobError,
    JobPaths,
    JobSpec,
    Plan,
    decode_job,
    decode_plan,
    is_job_id,
)
from autotag.backfill.progress import ProgressError, ShardProgress, decode_progress, totals
from autotag.backfill.request import CancelJob, StartJob
from autotag.timestamps import format_timestamp

from .console import Shown, Table, shown, shown_lines
from .errors import NotFound, doing, resumable
from .function_host import read_template
from .target import Target

DEFAULT_JOB_FUNCTION = "tag-backfill"
DEFAULT_JOB_SERVICE = "oss-autotag-backfill"  # template.yml's, as `autotag deploy` creates it


@dataclass(frozen=True)
class JobFunction:
    """The deployed backfill function a command invokes: FC service and function name."""

    service: str
    name: str


def job_function(template_path: Path, function: str, template_given: bool) -> JobFunction:
    """From the template when there is one (or one is named); without one, the names `autotag deploy`
    gives the template's functions — a job can be started or cancelled from any folder."""
    if template_given or template_path.exists():
        spec = read_template(template_path).function(function)
        return JobFunction(spec.service, spec.name)
    return JobFunction(DEFAULT_JOB_SERVICE, function)


def invoke_sync(function: JobFunction, target: Target, event: bytes) -> dict[str, Any]:
    """A synchronous invocation of the deployed `function`; what it returned, or its error as one line."""
    spec = function
    doing(f"invoking {spec.service}/{spec.name} through FC at {target.fc_endpoint}")
    response = target.fc_client().invoke_function(spec.service, spec.name, payload=event)
    data = (
        response.data.decode("utf-8", "replace") if isinstance(response.data, bytes) else str(response.data)
    )
    if response.headers.get("x-fc-error-type"):
        try:
            message = json.loads(data).get("errorMessage") or data
        except (ValueError, AttributeError):
            message = data
        raise click.ClickException(f"{spec.name} failed: {str(message)[:1000]}")
    try:
        answer = json.loads(data)
    except ValueError:
        raise click.ClickException(
            f"{spec.name} answered something that is not JSON: {data[:200]!r}"
        ) from None
    if isinstance(answer, dict) and answer.get("outcome") == "rejected":  # e.g. a bucket it does not serve
        raise click.ClickException(f"{spec.name} rejected it: {str(answer.get('reason'))[:1000]}")
    return answer if isinstance(answer, dict) else {"answer": answer}


def upload_manifest(target: Target, bucket: str, state_prefix: str, path: Path) -> str:
    """A local CSV manifest, put under the state prefix where the job can read it: its oss:// location."""
    data = path.read_bytes()
    key = f"{state_prefix}backfill/manifests/{hashlib.sha256(data).hexdigest()[:16]}.csv"
    doing(f"uploading {path} to oss://{bucket}/{key} at {target.oss_endpoint}")
    target.bucket(bucket).put_object(key, data)
    return f"oss://{bucket}/{key}"


def start_job(function: JobFunction, target: Target, request: StartJob, as_json: bool) -> None:
    answer = invoke_sync(function, target, request.as_event())
    if as_json:
        click.echo(json.dumps(answer, ensure_ascii=False))
        return
    console = Console()
    reference = answer.get("job") or ""
    if not reference:
        console.print(
            shown(answer.get("note") or answer.get("state")), markup=False, highlight=False, soft_wrap=True
        )
        return
    lines = [f"backfill job {reference}: {answer.get('state')}"]
    if answer.get("shards") is not None:
        source = str(answer.get("source"))
        lines.append(
            f"  run {answer.get('run')}, {answer.get('shards')} shard(s) from "
            f"{'an' if source[:1] in 'aeiou' else 'a'} {source}, "
            f"{answer.get('invocations')} invocation(s) sent; rules {answer.get('rulesFingerprint')}"
        )
    if answer.get("report"):
        lines.append(f"  report: {answer['report']}")
    if answer.get("note"):
        lines.append(f"  {answer['note']}")
    if answer.get("warning"):
        lines.append(f"  note: {answer['warning']}")
    lines.append(f"  autotag backfill status {reference}    # progress, rate and ETA")
    if answer.get("state") != "complete":
        lines.append(f"  autotag backfill cancel {reference}    # stop it")
    console.print(shown_lines(lines), markup=False, highlight=False, soft_wrap=True)


def cancel_job(
    function: JobFunction, target: Target, reference: str, bucket: str | None, as_json: bool
) -> None:
    bucket_name, job = parse_reference(reference, bucket)
    answer = invoke_sync(function, target, CancelJob(bucket_name, job).as_event())
    if as_json:
        click.echo(json.dumps(answer, ensure_ascii=False))
        return
    lines = [f"backfill job {answer.get('job', reference)}: {answer.get('state')}"]
    lines += [f"  {answer[name]}" for name in ("reason", "note") if answer.get(name)]
    if answer.get("report"):
        lines.append(f"  report: {answer['report']}")
    lines.append(f"  autotag backfill status {answer.get('job', reference)}    # follow it to its report")
    Console().print(shown_lines(lines), markup=False, highlight=False, soft_wrap=True)


def parse_reference(reference: str, bucket: str | None) -> tuple[str, str]:
    """`<bucket>/<job id>`, or a job id with --bucket."""
    named, _, job = reference.rpartition("/")
    if not is_job_id(job):
        raise click.BadParameter(f"{reference!r} is not <bucket>/bf-<12 hex digits>", param_hint="JOB")
    if named and bucket and named != bucket:
        raise click.BadParameter(
            f"{reference!r} names bucket {named!r}, not --bucket {bucket!r}", param_hint="JOB"
        )
    if not (named or bucket):
        raise click.BadParameter(
            f"{reference!r} names no bucket: write <bucket>/{job} or pass --bucket", param_hint="JOB"
        )
    return named or str(bucket), job


# ---- status ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShardView:
    index: int
    progress: ShardProgress
    total_bytes: int  # 0 for a listing shard (no total known)
    done: bool

    @property
    def fraction(self) -> float | None:
        if self.done:
            return 1.0
        if not self.total_bytes:
            return None
        return min(1.0, self.progress.units_bytes / self.total_bytes)

    @property
    def eta_seconds(self) -> float | None:
        fraction = self.fraction
        if self.done:
            return 0.0
        if fraction is None or fraction <= 0 or self.progress.active_seconds <= 0:
            return None
        return self.progress.active_seconds * (1 - fraction) / fraction

    def as_json(self) -> dict[str, Any]:
        fraction, eta = self.fraction, self.eta_seconds
        return {
            "shard": self.index,
            "done": self.done,
            "objects": self.progress.processed,
            "counts": self.progress.counts,
            "failed": self.progress.failed,
            "objectsPerSecond": round(self.progress.rate(), 2),
            "progress": round(fraction, 4) if fraction is not None else None,
            "etaSeconds": round(eta) if eta is not None else None,
            "runs": self.progress.runs,
            "ossRequests": self.progress.requests,
            "stopped": self.progress.stopped,
            "updated": self.progress.updated.isoformat() if self.progress.updated else None,
            "position": self.progress.after_key
            if not self.total_bytes
            else {"file": self.progress.unit, "record": self.progress.row},
        }


@dataclass(frozen=True)
class JobView:
    job: JobSpec
    plan: Plan
    shards: list[ShardView]
    report: dict[str, Any] | None

    @property
    def status(self) -> str:
        if self.report is not None:
            return str(self.report.get("status", self.job.status))
        return self.job.status

    def as_json(self) -> dict[str, Any]:
        summed = totals([s.progress for s in self.shards])
        # a running job's rate is its running shards'; an ended job's, what its shards sustained
        rate = sum(s.progress.rate() for s in self.shards if not s.done or self.status != RUNNING)
        etas = [s.eta_seconds for s in self.shards]
        eta = None if self.status != RUNNING or any(e is None for e in etas) else max(etas, default=0)
        return {
            "job": self.job.reference,
            "status": self.status,
            "reason": self.job.reason,
            "run": self.job.run,
            "source": self.job.source,
            "location": self.job.location or None,
            "prefix": self.job.prefix,
            "started": format_timestamp(self.job.created),
            "rulesFingerprint": self.job.fingerprint,
            "shards": len(self.shards),
            "shardsDone": sum(s.done for s in self.shards),
            "objects": summed.processed,
            "counts": summed.counts,
            "failed": summed.failed,
            "ossRequests": summed.requests,
            "requestsPerObject": round(summed.requests / summed.processed, 4) if summed.processed else None,
            "objectsPerSecond": round(rate, 2),
            "etaSeconds": round(eta) if eta is not None else None,
            "report": self.report,
            "shardDetails": [s.as_json() for s in self.shards],
        }


def read_job_view(target: Target, bucket: str, job_id: str, state_bucket: str, state_prefix: str) -> JobView:
    paths = JobPaths(state_prefix, job_id)
    where = state_bucket or bucket
    state = target.bucket(where, 32)
    doing(f"reading backfill job {bucket}/{job_id} from oss://{where}/{paths.base} at {target.oss_endpoint}")
    import oss2

    def read(key: str) -> bytes | None:
        try:
            return bytes(state.get_object(key).read())
        except oss2.exceptions.NoSuchKey:
            return None

    data = read(paths.job_key)
    if data is None:
        raise NotFound(
            f"no backfill job {job_id} in oss://{where}/{paths.base} (is it the right bucket, "
            "--state-bucket and --state-prefix?)"
        )
    try:
        job = decode_job(data)
        plan_data = read(paths.plan_key(job.run))
        if plan_data is None:
            raise NotFound(f"oss://{where}/{paths.plan_key(job.run)} does not exist")
        plan = decode_plan(plan_data)
    except JobError as error:
        raise click.ClickException(f"oss://{where}/{paths.base}: {error}") from None
    done = {
        int(o.key.rsplit("-", 1)[1])
        for o in oss2.ObjectIterator(state, prefix=paths.done_prefix(job.run))
        if o.key[-5:].isdigit()
    }

    def progress_of(shard: int) -> ShardProgress:
        found = read(f"{state_prefix}{paths.shard_folder(job.run, shard)}/checkpoint.json")
        try:
            return decode_progress(found) if found else ShardProgress()
        except ProgressError:
            return ShardProgress()

    with ThreadPoolExecutor(16) as pool:
        progresses = list(pool.map(progress_of, range(len(plan.shards))))
    report_data = read(paths.report_key(job.run, "manifest.json"))
    report = json.loads(report_data) if report_data else None
    shards = [ShardView(s.index, progresses[s.index], s.total_bytes, s.index in done) for s in plan.shards]
    return JobView(job, plan, shards, report)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


def _as_of(view: JobView) -> str:
    """When the newest checkpoint was written: a running shard checkpoints every 30 s."""
    written = [s.progress.updated for s in view.shards if s.progress.updated is not None]
    if not written:
        return "—"
    newest = format_timestamp(max(written))
    return f"{newest} (shards checkpoint every 30 s)" if view.status == RUNNING else newest


def _no_checkpoint_yet(view: JobView) -> str:
    if view.status == RUNNING and all(s.progress.updated is None for s in view.shards):
        return " (no checkpoint yet: a shard's first comes 5 s into its run)"
    return ""


def _eta(view: JobView, seconds: float | None) -> str:
    if view.status != RUNNING:
        return "—"
    if seconds is None and view.plan.shards and not view.plan.shards[0].units:
        return "— (a listing's total is not known ahead)"
    return _duration(seconds)


def render(view: JobView) -> Group:
    summary = view.as_json()
    table = Table(title=f"backfill job {view.job.reference}", show_header=False)
    table.add_column("")
    table.add_column("")
    rows = [  # the reason, the source's location and prefix are printed whole below it (`whole_lines`)
        ("status", view.status + (" (why below)" if view.job.reason else "")),
        ("run / started", f"{view.job.run} / {summary['started']}"),
        ("source", f"{view.job.source} (below)"),
        ("shards done", f"{summary['shardsDone']} of {summary['shards']}"),
        ("objects", f"{summary['objects']:,}" + _no_checkpoint_yet(view)),
        ("by outcome", "  ".join(f"{k} {v:,}" for k, v in summary["counts"].items() if v) or "—"),
        ("rate", f"{summary['objectsPerSecond']:,} objects/s"),
        ("ETA", _eta(view, summary["etaSeconds"])),
        ("OSS requests / object", str(summary["requestsPerObject"] or "—")),
        ("as of", _as_of(view)),
    ]
    if view.report:
        rows.append(("failed objects", f"{view.report.get('failed', 0):,} (failed.csv, below)"))
    for label, value in rows:
        table.add_row(label, value)
    bars = Progress(
        TextColumn("shard {task.fields[index]:>3}"),
        BarColumn(),
        TextColumn("{task.fields[objects]:>10} objects  {task.fields[rate]:>8}/s  ETA {task.fields[eta]}"),
    )
    for shard in view.shards:
        fraction = shard.fraction
        bars.add_task(
            "",
            total=1.0,  # a listing shard's share is not known ahead: an empty bar, never a full one
            completed=fraction or 0.0,
            index=shard.index,
            objects=f"{shard.progress.processed:,}",
            rate=f"{shard.progress.rate():,.1f}",
            eta=_duration(shard.eta_seconds) if not shard.done else "done",
        )
    return Group(table, bars)


def show_status(
    target: Target,
    reference: str,
    bucket: str | None,
    state_bucket: str,
    state_prefix: str,
    as_json: bool,
    watch: float | None,
) -> None:
    bucket_name, job_id = parse_reference(reference, bucket)
    if watch is not None:
        resumable(f"The job goes on in FC; `autotag backfill status {bucket_name}/{job_id} --watch {watch:g}`"
                  " follows it again.")  # fmt: skip
    console = Console()
    view = read_job_view(target, bucket_name, job_id, state_bucket, state_prefix)
    if as_json or watch is None:
        while True:
            if as_json:
                click.echo(json.dumps(view.as_json(), ensure_ascii=False))
            else:
                console.print(render(view))
            if watch is None or _ended(view):
                break
            time.sleep(watch)
            view = read_job_view(target, bucket_name, job_id, state_bucket, state_prefix)
    else:  # one table, redrawn in place on a terminal (elsewhere, the last one alone)
        with Live(render(view), console=console, auto_refresh=False) as live:
            while not _ended(view):
                time.sleep(watch)
                view = read_job_view(target, bucket_name, job_id, state_bucket, state_prefix)
                live.update(render(view), refresh=True)
        if not console.is_terminal:  # Live ends its last drawing with a new line on a terminal only
            console.line()
    if not as_json:
        for line in whole_lines(view):
            click.echo(line)


def whole_lines(view: JobView) -> list[Shown]:
    """What an operator copies (into `--manifest`, `status`, an OSS console), each whole on a line of its
    own under the table, never in one of its cells (which fold or cut at 80 columns): why the job is in
    its status, its source's location and prefix, its report's locations."""
    source = view.job.source + (f" {view.job.location}" if view.job.location else "")
    lines = [shown(f"source:     {source} (prefix {view.job.prefix!r})")]
    if view.job.reason:
        lines.insert(0, shown(f"why:        {view.job.reason}"))
    if view.report:
        failed_csv = str(view.report.get("failedManifest", ""))
        lines.append(shown(f"report:     {failed_csv.rsplit('/', 1)[0]}/manifest.json"))
        lines.append(shown(f"failed.csv: {failed_csv}"))
    return lines


def _ended(view: JobView) -> bool:
    return (view.status != RUNNING and view.report is not None) or view.status == COMPLETE
