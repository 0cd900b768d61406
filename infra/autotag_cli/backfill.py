"""`autotag backfill`: tag objects that existed before the trigger, through the same function.

Objects are listed at the OSS endpoint the command points at, and each one's event goes to the upload
function run here against that same OSS (or, with `--remote`, to the deployed function through the FC
API). A run never loses a failure: each failure is written to the run's report before the checkpoint
moves past it; a run that resumes says so and from where; `--restart` starts over."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import click
from backfill.runner import (
    BackfillCheckpoint,
    BackfillReport,
    FailureReport,
    ManifestError,
    Submit,
    listed_objects,
    manifest_objects,
    read_manifest,
    run_backfill,
    summary,
)
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from autotag.output import to_json
from autotag.timestamps import parse_timestamp
from localcloud.fc import LocalFC, Template

from .console import counted, plain_console
from .errors import doing
from .function_host import LOCAL_STATE, environment_options, host_functions, read_template, template_option
from .options import rules_from
from .target import Target, require_reachable, target_options


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


def _checkpoint_path(bucket: str, prefix: str, since: str) -> Path:
    scope = hashlib.sha256(f"{prefix}\0{since}".encode()).hexdigest()[:10]
    return LOCAL_STATE / "backfill" / f"{bucket}-{scope}.checkpoint.json"


@click.command()
@click.option("--bucket", "bucket_name", required=True, help="The bucket whose objects to tag.")
@click.option("--prefix", default="", help="Only keys under this prefix. Default: every key.")
@click.option("--since", help="Only objects last modified at or after this ISO-8601 time. Default: all.")
@click.option(
    "--manifest",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Only these objects: an earlier run's failure report, or one key per line. Default: a listing.",
)
@click.option(
    "--rate",
    type=click.FloatRange(min=0, min_open=True),
    help="Objects per second, at most. Default: no cap.",
)
@click.option("--workers", default=8, show_default=True, type=click.IntRange(1, 64), help="Objects at once.")
@click.option(
    "--max-failure-rate",
    default=0.5,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="Stop when more than this share of the last 200 objects failed.",
)
@click.option(
    "--checkpoint",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Resume file. Default: .localcloud/backfill/<bucket>-<scope>.checkpoint.json (not with --manifest).",
)
@click.option("--restart", is_flag=True, help="Ignore the checkpoint and start from the first key.")
@click.option(
    "--report",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Failure report (JSON lines, appended, each with its run id). Default: a new "
    ".localcloud/backfill/<bucket>-<run>.failures.jsonl per run.",
)
@click.option(
    "--function", default="tag-on-upload", show_default=True, help="The template function to send to."
)
@click.option(
    "--remote",
    is_flag=True,
    help="Send asynchronous invocations to the deployed function at --fc-endpoint instead of running it "
    "here.",
)
@template_option
@environment_options
@target_options(oss=True, fc=True)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def backfill(
    bucket_name: str,
    prefix: str,
    since: str | None,
    manifest: Path | None,
    rate: float | None,
    workers: int,
    max_failure_rate: float,
    checkpoint: Path | None,
    restart: bool,
    report: Path | None,
    function: str,
    remote: bool,
    template_path: Path,
    rules: str | None,
    env_vars: Path | None,
    target: Target,
    as_json: bool,
) -> None:
    """Send every existing object (under --prefix, since --since) through the upload function.

    \b
    Examples:
      autotag backfill --bucket autotag-demo --prefix projects/
      autotag backfill --bucket autotag-demo --manifest .localcloud/backfill/autotag-demo-<run>.failures.jsonl
    """
    since_time = parse_timestamp(since) if since else None
    if since and since_time is None:
        raise click.BadParameter(f"{since!r} is not an ISO-8601 time", param_hint="--since")
    try:  # every line checked before anything is listed or sent
        manifest_keys = read_manifest(manifest) if manifest is not None else []
    except ManifestError as error:
        raise click.BadParameter(str(error), param_hint="--manifest") from None
    template = read_template(template_path)
    template.function(function)
    if rules:
        rules_from(rules, target, functions_read=True)  # before anything is listed or resumed
    console = plain_console(stderr=True)
    require_reachable(target.oss_endpoint, "OSS")
    bucket = target.bucket(bucket_name, workers)
    doing(f"listing oss://{bucket_name}/{prefix} at {target.oss_endpoint}")
    bucket.list_objects(prefix=prefix, max_keys=1)  # a missing bucket or a wrong key fails before anything
    missing: list[str] = []  # keys of the manifest with no object any more
    if manifest is not None:
        objects: Any = manifest_objects(bucket, manifest_keys, missing)
        state = BackfillCheckpoint(bucket_name, prefix, since or "")
        checkpoint_path = None
    else:
        checkpoint_path = checkpoint or _checkpoint_path(bucket_name, prefix, since or "")
        if restart and checkpoint_path.exists():
            checkpoint_path.unlink()
        state = BackfillCheckpoint.load(checkpoint_path, bucket_name, prefix, since or "")
        if state.marker:
            console.print(
                f"resuming the backfill of oss://{bucket_name}/{prefix} after {state.marker!r} "
                f"({counted(state.submitted, 'object')} sent before, {state.failed:,} failed); "
                "--restart starts over"
            )
        objects = listed_objects(bucket, prefix, state.marker)
    run_id = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    report_path = report or LOCAL_STATE / "backfill" / f"{bucket_name}-{run_id}.failures.jsonl"
    failures = FailureReport(report_path, run_id)
    fc = None
    if remote:
        submit = _remote(function, template, target)
    else:
        fc = host_functions(template, target, rules=rules, env_vars=env_vars)
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
    result.missing, result.missing_keys = len(missing), missing[:MISSING_SHOWN]
    _print_summary(
        console, result, bucket_name, prefix, report_path, failures.count, as_json, bool(state.marker)
    )
    if result.stopped or result.failed:
        raise SystemExit(1)


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
    report_note = (
        f"{report_path} ({failed} lines; run again with --manifest {report_path})" if failed else "none"
    )
    if as_json:
        click.echo(to_json({**summary(result), "report": str(report_path) if failed else None}))
        return
    gone = (
        f"{result.missing} of the manifest's keys have no object any more: {', '.join(result.missing_keys)}"
        + ("…" if result.missing > len(result.missing_keys) else "")
    )
    if result.listed == 0:
        where = "after the checkpoint" if resumed else "at all"
        console.print(f"nothing found under oss://{bucket}/{prefix} {where}: no object sent")
        if result.missing:
            console.print(gone)
        return
    table = Table(title=f"backfill of oss://{bucket}/{prefix}", show_header=False)
    table.add_column("")
    table.add_column("")
    for name, value in summary(result).items():
        if name == "missing_keys":
            continue
        table.add_row(name, gone if name == "missing" and value else str(value))
    table.add_row("failure report", report_note)
    plain_console().print(table)
