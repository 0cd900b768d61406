"""`autotag backfill`: tag objects that existed before the trigger, through the same function.

Here (the default), objects are listed at the OSS endpoint the command points at, and each one's event goes
to the upload function run here against that same OSS (or, with `--remote`, to the deployed function
through the FC API). A run never loses a failure: each failure is written to the run's report before the
checkpoint moves past it; a run that resumes says so and from where; `--restart` starts over.

With `--in-fc`, the whole backfill runs as a job inside the deployed backfill function, in shards, from a
listing, an inventory or a CSV manifest; `backfill status JOB` and `backfill cancel JOB` follow and stop
it (backfill_job.py).

With `--cloud`, it starts an execution of one of template.yml's backfill flows on CloudFlow (a distributed
Map the engine runs and keeps the state of); `backfill status REF --cloud` and `backfill cancel REF --cloud`
follow and stop it (backfill_cloud.py)."""

from __future__ import annotations

import io
import json
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click
import oss2
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from autotag.backfill.job import INVENTORY, LISTING, MANIFEST
from autotag.backfill.request import StartJob
from autotag.inventory import InventoryError, manifest_rows, parse_location
from autotag.output import to_json
from autotag.timestamps import parse_timestamp
from backfill.runner import (
    BackfillCheckpoint,
    BackfillJob,
    BackfillReport,
    CheckpointError,
    FailureReport,
    ManifestError,
    Submit,
    listed_objects,
    manifest_objects,
    read_manifest,
    run_backfill,
    summary,
)
from localcloud.fc import LocalFC, Template

from .backfill_cloud import CloudBackfillError, plan_execution, read_status, start, stop
from .backfill_job import (
    DEFAULT_JOB_FUNCTION,
    cancel_job,
    job_function,
    show_status,
    start_job,
    upload_manifest,
)
from .console import Table, counted, plain_console, shown
from .errors import BadInput, command_line, doing, resumable
from .function_host import LOCAL_STATE, environment_options, host_functions, read_template, template_option
from .names import BUCKET
from .options import FiniteFloatRange, pinned_rules, rules_from, state_prefix_option
from .target import LOCAL_CLOUDFLOW_ENDPOINT, Target, is_loopback, require_reachable, target_options

CLOUDFLOW_ENDPOINT = click.option(
    "--cloudflow-endpoint",
    envvar="AUTOTAG_CLOUDFLOW_ENDPOINT",
    show_envvar=True,
    metavar="URL",
    help=f"With --cloud: CloudFlow's endpoint. Default: the local cloud's ({LOCAL_CLOUDFLOW_ENDPOINT}) when "
    "OSS is local, else the region's.",
)


def _cloudflow(target: Target, endpoint: str | None) -> Any:
    """A client of CloudFlow's API (alibabacloud-fnf20190315) with the target's credentials."""
    from deployer.flows import cloudflow_client

    chosen = endpoint or (LOCAL_CLOUDFLOW_ENDPOINT if is_loopback(target.oss_endpoint) else "")
    if chosen:
        require_reachable(chosen, "CloudFlow")
    credentials = target.credentials
    return cloudflow_client(
        chosen,
        target.region,
        credentials.access_key_id,
        credentials.access_key_secret,
        credentials.security_token,
    )


def _in_process(function: str, fc: LocalFC) -> Submit:
    def submit(event: bytes) -> str | None:
        result = fc.invoke(function, event)
        if not result.ok:
            return result.error_message
        refused = [
            r
            for r in json.loads(result.payload or "{}").get("results", [])
            if r["outcome"] in ("rejected", "failed")
        ]
        return refused[0]["reason"] if refused else None

    return submit


def _remote(function: str, template: Template, target: Target) -> Submit:
    import fc2

    spec = template.function(function)
    client = target.fc_client()

    def submit(event: bytes) -> str | None:
        try:
            client.invoke_function(
                spec.service, spec.name, payload=event, headers={"x-fc-invocation-type": "Async"}
            )
        except fc2.fc_exceptions.FcError as error:
            return f"FC refused the invocation: {error.err_code or 'error'} (HTTP {error.status_code})"
        return None

    return submit


MISSING_SHOWN = 100  # keys with no object any more, named in the summary


def _checkpoint_path(job: BackfillJob) -> Path:
    """One file per job: a run of another job (another endpoint, account, source or rules) never finds it."""
    return LOCAL_STATE / "backfill" / f"{job.bucket}-{job.scope}.checkpoint.json"


def _rules_fingerprint(location: str, target: Target) -> str:
    """The fingerprint of the rules the function tags with (its AUTOTAG_RULES); for rules in OSS this
    machine cannot read, their location (the function may be allowed to read what the command is not)."""
    try:
        return rules_from(location, target, functions_read=True).fingerprint
    except Exception:
        if location.startswith("oss://"):
            return location
        raise


def _manifest_location(text: str | None) -> str | None:
    """--manifest as given: an oss:// location, or a local file that must exist."""
    if text is None or text.startswith("oss://"):
        return text
    if not Path(text).is_file():
        raise click.BadParameter(f"{text} is not a file (nor an oss:// location)", param_hint="--manifest")
    return text


@click.group(invoke_without_command=True)
@click.option(
    "--bucket", "bucket_name", type=BUCKET, help="The bucket whose objects to tag (required to start one)."
)
@click.option("--prefix", default="", help="Only keys under this prefix. Default: every key.")
@click.option("--since", help="Only objects last modified at or after this ISO-8601 time. Default: all.")
@click.option(
    "--manifest",
    help="Only these objects: a CSV manifest (bucket,key[,versionId], as a job's report/failed.csv and OSS "
    "Batch Operations take), locally or oss://bucket/key; an earlier run's failure report (JSON lines); or "
    "one key per line. Default: a listing.",
)
@click.option(
    "--inventory",
    help="With --in-fc: the objects of this OSS bucket inventory, oss://bucket/.../manifest.json; shards are "
    "cut along its data files. Default: a listing.",
)
@click.option(
    "--in-fc",
    "in_fc",
    is_flag=True,
    help="Start a job in the deployed backfill function at --fc-endpoint, in --shards parallel shards, and "
    "return at once (autotag backfill status JOB follows it).",
)
@click.option(
    "--shards",
    default=1,
    show_default=True,
    type=click.IntRange(1, 1000),
    help="With --in-fc: parallel shards (each an asynchronous invocation chain).",
)
@click.option(
    "--qps",
    type=FiniteFloatRange(min=0, min_open=True),
    help="With --in-fc: OSS requests per second for the whole job, shared by its shards. Default: no cap.",
)
@click.option(
    "--rate",
    type=FiniteFloatRange(min=0, min_open=True),
    help="Objects per second, at most (here; --qps for a job in FC). Default: no cap.",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    help="Objects at once. Default: 8 here, 16 per shard with --in-fc.",
)
@click.option(
    "--max-failure-rate",
    default=0.5,
    show_default=True,
    type=FiniteFloatRange(0, 1),
    help="Stop when more than this share of the last objects failed (200 here; 1,000 per shard in FC).",
)
@click.option(
    "--checkpoint",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Resume file. Default: .localcloud/backfill/<bucket>-<scope>.checkpoint.json (not with --manifest).",
)
@click.option(
    "--restart",
    is_flag=True,
    help="Ignore the checkpoint and start from the first key (with --in-fc: a new run of the job).",
)
@click.option(
    "--report",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Failure report (JSON lines, appended, each with its run id). Default: a new "
    ".localcloud/backfill/<bucket>-<run>.failures.jsonl per run.",
)
@click.option(
    "--function",
    help=f"The template function to send to. Default: tag-on-upload, or {DEFAULT_JOB_FUNCTION} with --in-fc.",
)
@click.option(
    "--remote",
    is_flag=True,
    help="Send asynchronous invocations to the deployed function at --fc-endpoint instead of running it "
    "here.",
)
@click.option(
    "--cloud",
    is_flag=True,
    help="Start an execution of the template's backfill flow on CloudFlow (from a listing, --inventory or an "
    "oss:// --manifest) and return at once; `backfill status REF --cloud` follows it.",
)
@click.option(
    "--concurrency",
    default=16,
    show_default=True,
    type=click.IntRange(1, 10000),
    help="With --cloud: batches at once (the Map's MaxConcurrency).",
)
@click.option(
    "--report-location",
    metavar="oss://BUCKET/PREFIX/",
    help="With --cloud: where the engine writes the results. Default: backfill/reports/ in the template's "
    "declared bucket (the flows' role may write there).",
)
@click.option(
    "--report-part-rows",
    type=click.IntRange(1, 5_000_000),
    help="With --cloud: rows per part of the completion report and of its failed-objects manifest. "
    "Default: 500,000.",
)
@CLOUDFLOW_ENDPOINT
@state_prefix_option("the backfill function's AUTOTAG_STATE_PREFIX (a local --manifest is uploaded there).")
@template_option
@environment_options
@target_options(oss=True, fc=True)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.pass_context
def backfill(
    ctx: click.Context,
    bucket_name: str | None,
    prefix: str,
    since: str | None,
    manifest: str | None,
    inventory: str | None,
    in_fc: bool,
    shards: int,
    qps: float | None,
    rate: float | None,
    workers: int | None,
    max_failure_rate: float,
    checkpoint: Path | None,
    restart: bool,
    report: Path | None,
    function: str | None,
    remote: bool,
    cloud: bool,
    concurrency: int,
    report_location: str | None,
    report_part_rows: int | None,
    cloudflow_endpoint: str | None,
    state_prefix: str,
    template_path: Path,
    rules: str | None,
    env_vars: Path | None,
    target: Target,
    as_json: bool,
) -> None:
    """Send every existing object (under --prefix, since --since) through the upload function: here, or as
    a job inside Function Compute (--in-fc) that `backfill status` and `backfill cancel` follow and stop.

    \b
    Examples:
      autotag backfill --bucket autotag-demo --prefix projects/
      autotag backfill --bucket autotag-demo --manifest .localcloud/backfill/autotag-demo-<run>.failures.jsonl
      autotag backfill --bucket autotag-demo --in-fc --shards 16
      autotag backfill --bucket autotag-demo --in-fc --inventory oss://inv-bucket/autotag-demo/daily/2026-12-01T00-00Z/manifest.json
      autotag backfill status autotag-demo/bf-1a2b3c4d5e6f
      autotag backfill --bucket autotag-demo --cloud --concurrency 64
    """
    if ctx.invoked_subcommand is not None:
        return
    if bucket_name is None:
        raise click.UsageError("Missing option '--bucket'.")
    if cloud:
        if in_fc or remote or since:
            raise click.UsageError("--cloud runs on CloudFlow: --in-fc, --remote and --since do not apply")
        _start_cloud(
            bucket_name, prefix, inventory, manifest, report_location, concurrency, max_failure_rate,
            template_path, cloudflow_endpoint, target, as_json, rules, report_part_rows,
        )  # fmt: skip
        return
    manifest = _manifest_location(manifest)
    since_time = parse_timestamp(since) if since else None
    if since and since_time is None:
        raise click.BadParameter(f"{since!r} is not an ISO-8601 time", param_hint="--since")
    template_given = _given("template_path")
    if inventory and manifest:
        raise click.UsageError("--inventory and --manifest name the objects two ways: give one")
    if in_fc:
        if remote:
            raise click.UsageError("--in-fc runs the job in FC already; --remote is for sending events")
        if rules or env_vars:
            raise click.UsageError(
                "--rules and --env-vars set what runs here; a job uses the deployed function's"
            )
        deployed = job_function(template_path, function or DEFAULT_JOB_FUNCTION, template_given)
        if inventory:
            _check_location(inventory, "--inventory")
        if manifest and not manifest.startswith("oss://"):
            _check_job_manifest(Path(manifest), bucket_name)
            manifest = upload_manifest(target, bucket_name, state_prefix, Path(manifest))
        source, location = (
            (INVENTORY, inventory) if inventory else (MANIFEST, manifest) if manifest else (LISTING, "")
        )
        request = StartJob(
            bucket=bucket_name,
            prefix=prefix,
            source=source,
            location=location or "",
            since=since_time,
            shards=shards,
            workers=workers or 16,
            qps=qps,
            max_failure_rate=max_failure_rate,
            restart=restart,
        )
        start_job(deployed, target, request, as_json)
        return
    if inventory or shards != 1 or qps is not None:
        raise click.UsageError("--inventory, --shards and --qps are for a job in FC: add --in-fc")
    template = read_template(template_path)
    _backfill_here(
        bucket_name,
        prefix,
        since,
        since_time,
        manifest,
        rate,
        workers or 8,
        max_failure_rate,
        checkpoint,
        restart,
        report,
        function or "tag-on-upload",
        remote,
        template,
        rules,
        env_vars,
        target,
        as_json,
    )


def _start_cloud(
    bucket: str,
    prefix: str,
    inventory: str | None,
    manifest: str | None,
    report_location: str | None,
    concurrency: int,
    max_failure_rate: float,
    template_path: Path,
    endpoint: str | None,
    target: Target,
    as_json: bool,
    rules: str | None = None,
    report_part_rows: int | None = None,
) -> None:
    if manifest and not manifest.startswith("oss://"):
        raise click.BadParameter(
            "with --cloud the engine reads it from OSS: give oss://...", param_hint="--manifest"
        )
    if report_location is None:
        declared = read_template(template_path).buckets
        if not declared:
            raise click.UsageError("--report-location is needed: the template declares no bucket for reports")
        report_location = f"oss://{declared[0].name}/backfill/reports/"
    try:
        flow, given = plan_execution(
            bucket, prefix, inventory, manifest, report_location, concurrency, max_failure_rate * 100
        )
    except CloudBackfillError as error:
        raise BadInput(str(error)) from None
    if rules is not None:
        given.update(pinned_rules(rules, target))
    if report_part_rows is not None:
        given["reportPartRows"] = report_part_rows
    client = _cloudflow(target, endpoint)
    doing(f"starting an execution of {flow} on CloudFlow")
    started = start(client, flow, given, datetime.now(timezone.utc))
    if as_json:
        click.echo(to_json({"execution": started.reference, "flow": flow, "input": given}))
        return
    click.echo(
        f"started {started.reference} (report under {report_location.rstrip('/')}/{started.execution}/)"
    )
    click.echo(f"follow it: autotag backfill status {started.reference} --cloud")


def _given(parameter: str) -> bool:
    source = click.get_current_context().get_parameter_source(parameter)
    return source not in (None, click.core.ParameterSource.DEFAULT)


def _check_location(text: str, option: str) -> None:
    try:
        parse_location(text, option)
    except InventoryError as error:
        raise click.BadParameter(str(error), param_hint=option) from None


def _check_job_manifest(path: Path, bucket: str) -> None:
    """A local manifest for a job, read as the job will read it — a CSV manifest (bucket,key[,versionId]) —
    and refused here, naming the file and line, before it is uploaded."""
    try:
        data = path.read_bytes()
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise click.BadParameter(
            f"{path} line {line}: not UTF-8 text ({error.reason} at byte {error.start})",
            param_hint="--manifest",
        ) from None
    except OSError as error:
        raise click.BadParameter(f"{path}: {error.strerror or error}", param_hint="--manifest") from None
    named = 0
    try:
        for number, row in manifest_rows(io.StringIO(text, newline=""), str(path)):
            if row.bucket != bucket:
                header = " (it looks like a header; the format has none)" if row.bucket == "Bucket" else ""
                raise click.BadParameter(
                    f"{path} line {number + 1} names bucket {row.bucket!r}, not {bucket!r}{header}",
                    param_hint="--manifest",
                )
            named += 1
    except InventoryError as error:
        raise click.BadParameter(str(error), param_hint="--manifest") from None
    if not named:
        raise click.BadParameter(f"{path} names no object", param_hint="--manifest")


def _read(bucket: oss2.Bucket, manifest: str) -> list[tuple[str, str | None]]:
    doing(f"reading the manifest {manifest}")
    try:
        return read_manifest(bucket, manifest)
    except ManifestError as error:
        raise click.BadParameter(str(error), param_hint="--manifest") from None


def _backfill_here(
    bucket_name: str,
    prefix: str,
    since: str | None,
    since_time: datetime | None,
    manifest: str | None,
    rate: float | None,
    workers: int,
    max_failure_rate: float,
    checkpoint: Path | None,
    restart: bool,
    report: Path | None,
    function: str,
    remote: bool,
    template: Template,
    rules: str | None,
    env_vars: Path | None,
    target: Target,
    as_json: bool,
) -> None:
    spec = template.function(function)
    fc = None if remote else host_functions(template, target, rules=rules, env_vars=env_vars)
    # what the function tags with: part of what the job is (checked before anything is listed or resumed)
    in_use = fc.environment.get("AUTOTAG_RULES") if fc is not None else spec.environment.get("AUTOTAG_RULES")
    fingerprint = _rules_fingerprint(in_use or "default", target)
    console = plain_console(stderr=True)
    bucket = target.bucket(bucket_name, workers)
    # every line of a manifest checked before anything is listed or sent (one in OSS once OSS answers)
    entries = None if manifest is None or manifest.startswith("oss://") else _read(bucket, manifest)
    require_reachable(target.oss_endpoint, "OSS")
    if manifest is not None and entries is None:
        entries = _read(bucket, manifest)
    doing(f"listing oss://{bucket_name}/{prefix} at {target.oss_endpoint}")
    bucket.list_objects(prefix=prefix, max_keys=1)  # a missing bucket or a wrong key fails before anything
    missing: list[str] = []  # keys of the manifest with no object any more
    job = BackfillJob(
        target.oss_endpoint, target.credentials.access_key_id, bucket_name, prefix, since or "", fingerprint
    )
    if manifest is not None:
        objects: Any = manifest_objects(bucket, entries or [], missing)
        state = BackfillCheckpoint(job)
        checkpoint_path = None
    else:
        checkpoint_path = checkpoint or _checkpoint_path(job)
        if restart and checkpoint_path.exists():
            checkpoint_path.unlink()
        try:
            state = BackfillCheckpoint.load(checkpoint_path, job)
        except CheckpointError as error:
            raise BadInput(f"{error}: --restart starts this one over, or pass another --checkpoint") from None
        if state.marker:
            console.print(
                shown(
                    f"resuming the backfill of oss://{bucket_name}/{prefix} after {state.marker!r} "
                    f"({counted(state.submitted, 'object')} sent before, {state.failed:,} failed); "
                    "--restart starts over"
                )
            )
        objects = listed_objects(bucket, prefix, state.marker)
    again = command_line(drop=("--restart",))
    if manifest is None:
        resumable(f"Run `{again}` again: it resumes after its checkpoint.")
    else:  # a manifest's run keeps no checkpoint
        resumable(f"Run `{again}` again: it sends the manifest's objects again (tagging is idempotent).")
    run_id = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    report_path = report or LOCAL_STATE / "backfill" / f"{bucket_name}-{run_id}.failures.jsonl"
    failures = FailureReport(report_path, run_id)
    if fc is None:
        submit = _remote(function, template, target)
    else:
        submit = _in_process(function, fc)
        fc.start()
    doing(f"backfilling oss://{bucket_name}/{prefix}")
    try:
        with Progress(
            SpinnerColumn(),
            BarColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
            disable=as_json,
        ) as bar:
            task = bar.add_task(f"backfill oss://{bucket_name}/{prefix}", total=None)

            def show(current: BackfillReport) -> None:
                bar.update(
                    task,
                    description=f"listed {current.listed:,}  sent {current.submitted:,}  "
                    f"failed {current.failed:,}",
                )

            result = run_backfill(
                objects,
                submit,
                bucket=bucket_name,
                region=target.region,
                checkpoint=state,
                checkpoint_path=checkpoint_path,
                since=since_time,
                rate=rate,
                workers=workers,
                max_failure_rate=max_failure_rate,
                progress=show,
                record_failure=failures,
            )
    finally:
        failures.close()
        if fc is not None:
            fc.stop()
    if not result.stopped:  # through its whole listing: finished, nothing to resume
        BackfillCheckpoint.finish(checkpoint_path)
    result.missing, result.missing_keys = len(missing), missing[:MISSING_SHOWN]
    _print_summary(
        console, result, bucket_name, prefix, report_path, failures.count, as_json, bool(state.marker)
    )
    if result.stopped or result.failed:
        raise SystemExit(1)


job_argument = click.argument("job", metavar="JOB")
bucket_option = click.option(
    "--bucket",
    "bucket_name",
    type=BUCKET,
    help="The job's bucket, when JOB is a bare job id. Default: from JOB.",
)


@backfill.command("status")
@job_argument
@bucket_option
@click.option(
    "--state-bucket",
    type=BUCKET,
    envvar="AUTOTAG_STATE_BUCKET",
    show_envvar=True,
    default="",
    help="Where the backfill function keeps job state (its AUTOTAG_STATE_BUCKET). Default: the job's bucket.",
)
@state_prefix_option("the backfill function's AUTOTAG_STATE_PREFIX.")
@click.option(
    "--watch",
    type=FiniteFloatRange(min=1),
    metavar="SECONDS",
    help="Show the status again every SECONDS until the job has ended. Default: once.",
)
@click.option("--cloud", is_flag=True, help="JOB is <flow>/<execution> on CloudFlow (backfill --cloud).")
@CLOUDFLOW_ENDPOINT
@target_options(oss=True)
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def backfill_status(
    job: str,
    bucket_name: str | None,
    state_bucket: str,
    state_prefix: str,
    watch: float | None,
    cloud: bool,
    cloudflow_endpoint: str | None,
    target: Target,
    as_json: bool,
) -> None:
    """Show a job's progress per shard, its rate and ETA, from its state in OSS (JOB: <bucket>/<job id>).

    \b
    Example:
      autotag backfill status autotag-demo/bf-1a2b3c4d5e6f --watch 10
    """
    if cloud:
        _cloud_status(job, watch, _cloudflow(target, cloudflow_endpoint), as_json, _object_reader(target))
        return
    require_reachable(target.oss_endpoint, "OSS")
    show_status(target, job, bucket_name, state_bucket, state_prefix, as_json, watch)


@backfill.command("cancel")
@job_argument
@bucket_option
@click.option(
    "--function",
    default=DEFAULT_JOB_FUNCTION,
    show_default=True,
    help="The template's backfill function (the job runs in it).",
)
@template_option
@click.option("--cloud", is_flag=True, help="JOB is <flow>/<execution> on CloudFlow: StopExecution.")
@CLOUDFLOW_ENDPOINT
@target_options(oss=False, fc=True)
@click.option("--json", "as_json", is_flag=True, help="Print the function's answer as JSON.")
def backfill_cancel(
    job: str,
    bucket_name: str | None,
    function: str,
    template_path: Path,
    cloud: bool,
    cloudflow_endpoint: str | None,
    target: Target,
    as_json: bool,
) -> None:
    """Cancel a job in FC: its shards stop within seconds, and its report says so. Starting the same
    backfill again resumes it.

    \b
    Example:
      autotag backfill cancel autotag-demo/bf-1a2b3c4d5e6f
    """
    if cloud:
        try:
            stopped = stop(_cloudflow(target, cloudflow_endpoint), job)
        except CloudBackfillError as error:
            raise BadInput(str(error)) from None
        click.echo(to_json(stopped) if as_json else f"{job}: stopped")
        return
    deployed = job_function(template_path, function, _given("template_path"))
    cancel_job(deployed, target, job, bucket_name, as_json)


def _object_reader(target: Target) -> Any:
    """(bucket, key) -> the object's bytes with the CLI's credentials, None when there is none."""

    def read(bucket: str, key: str) -> bytes | None:
        import oss2

        try:
            data: bytes = target.bucket(bucket).get_object(key).read()
        except oss2.exceptions.NoSuchKey:
            return None
        return data

    return read


def _cloud_status(reference: str, watch: float | None, client: Any, as_json: bool, read: Any = None) -> None:
    while True:
        try:
            shown_status = read_status(client, reference, read)
        except CloudBackfillError as error:
            raise BadInput(str(error)) from None
        if as_json:
            click.echo(to_json(shown_status))
        else:
            items = shown_status["items"]
            eta = shown_status["etaSeconds"]
            click.echo(
                f"{shown_status['execution']}: {shown_status['status']}; {items['done']} of {items['read']} "
                f"items read so far done ({items['failed']} failed), {shown_status['objectsPerSecond']}/s"
                + (f", about {eta} s left" if eta is not None else "")
                + (f"; report {shown_status['report']}" if shown_status["report"] else "")
                + (
                    f"; failed objects: {', '.join(shown_status['failedManifests'])}"
                    if shown_status["report"] and shown_status["objects"].get("failed")
                    else ""
                )
            )
        if watch is None or shown_status["status"] not in ("Starting", "Running"):
            return
        time.sleep(watch)


def _print_summary(
    console: Console,
    result: BackfillReport,
    bucket: str,
    prefix: str,
    report_path: Path,
    failed: int,
    as_json: bool,
    resumed: bool,
) -> None:
    """The summary table, with what an operator copies into the next command on lines of its own, whole
    at any width (a table's cell folds or cuts them): the backfilled location above it; the failure
    report and the `--manifest` that runs it again, and the manifest's keys with no object, below it."""
    if as_json:
        click.echo(to_json({**summary(result), "report": str(report_path) if failed else None}))
        return
    gone = f"{result.missing} of the manifest's keys have no object any more" + (
        f" (the first {len(result.missing_keys)} below)" if result.missing > len(result.missing_keys) else ""
    )
    if result.listed == 0:  # said where the progress is shown (standard error)
        where = "after the checkpoint" if resumed else "at all"
        console.print(shown(f"nothing found under oss://{bucket}/{prefix} {where}: no object sent"))
        if result.missing:
            console.print(shown(gone), soft_wrap=True)
    else:
        console = plain_console()
        console.print(shown(f"backfill of oss://{bucket}/{prefix}"), soft_wrap=True)
        table = Table(show_header=False)
        table.add_column("")
        table.add_column("")
        for name, value in summary(result).items():
            if name == "missing_keys":
                continue
            table.add_row(name, gone if name == "missing" and value else str(value))
        table.add_row("failure report", f"{failed} lines (below)" if failed else "none")
        console.print(table)
        if failed:
            console.print(shown(f"failure report: {report_path}"), soft_wrap=True)
            console.print(shown(f"run again with: --manifest {report_path}"), soft_wrap=True)
    for key in result.missing_keys if result.missing else ():
        console.print(shown(f"no object any more: {key}"), soft_wrap=True)
