"""`autotag backfill`: tag objects that existed before the trigger, through the same function."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from backfill.runner import (
    BackfillCheckpoint,
    BackfillReport,
    Submit,
    listed_objects,
    manifest_objects,
    run_backfill,
    summary,
    write_report,
)
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from autotag.timestamps import parse_timestamp

from .fc_options import in_process_fc, read_template, template_option
from .options import bucket_for, credential_options


def _in_process(function: str, template_path: Path) -> tuple[Submit, Any]:
    fc = in_process_fc(read_template(template_path))

    def submit(event: bytes) -> str | None:
        result = fc.invoke(function, event)
        if not result.ok:
            return result.error_message
        refused = [
            r for r in json.loads(result.payload or "{}").get("results", []) if r["outcome"] == "rejected"
        ]
        return refused[0]["reason"] if refused else None

    return submit, fc


def _remote(
    function: str, template_path: Path, endpoint: str, key_id: str, secret: str, token: str
) -> Submit:
    import fc2

    spec = read_template(template_path).function(function)
    client = fc2.Client(endpoint=endpoint, accessKeyID=key_id, accessKeySecret=secret, securityToken=token)

    def submit(event: bytes) -> str | None:
        try:
            client.invoke_function(
                spec.service, spec.name, payload=event, headers={"x-fc-invocation-type": "Async"}
            )
        except fc2.fc_exceptions.FcError as error:
            return f"FC refused the invocation: {error}"
        return None

    return submit


@click.command()
@click.option("--bucket", "bucket_name", required=True)
@click.option("--prefix", default="", help="Only keys under this prefix.")
@click.option("--since", help="Only objects last modified at or after this ISO-8601 time.")
@click.option(
    "--manifest",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Only these objects: a failure report of an earlier backfill, or one key per line.",
)
@click.option("--rate", type=click.FloatRange(min=0, min_open=True), help="Objects per second, at most.")
@click.option("--workers", default=8, show_default=True, type=click.IntRange(1, 64))
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
    help="Resume file [default: .localcloud/backfill-<bucket>.json]; not used with --manifest.",
)
@click.option(
    "--report",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("backfill-failures.jsonl"),
    show_default=True,
    help="Failures as JSON lines (feed it back with --manifest).",
)
@click.option("--function", default="tag-on-upload", show_default=True)
@template_option
@click.option(
    "--fc-endpoint", help="Send the events as asynchronous invocations to this FC endpoint instead."
)
@click.option(
    "--endpoint", envvar="AUTOTAG_OSS_ENDPOINT", required=True, help="OSS endpoint [env AUTOTAG_OSS_ENDPOINT]"
)
@click.option("--region", default="cn-hangzhou", show_default=True)
@credential_options(required=True)
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
    report: Path,
    function: str,
    template_path: Path,
    fc_endpoint: str | None,
    endpoint: str,
    region: str,
    access_key_id: str,
    access_key_secret: str,
    security_token: str,
    as_json: bool,
) -> None:
    """Send every existing object (under --prefix, since --since) through the upload function."""
    since_time = parse_timestamp(since) if since else None
    if since and since_time is None:
        raise click.BadParameter(f"{since!r} is not an ISO-8601 time", param_hint="--since")
    bucket = bucket_for(endpoint, bucket_name, access_key_id, access_key_secret, security_token, workers)
    if manifest is not None:
        objects = manifest_objects(bucket, manifest)
        state = BackfillCheckpoint(bucket_name, prefix, since or "")
        checkpoint_path = None
    else:
        checkpoint_path = checkpoint or Path(f".localcloud/backfill-{bucket_name}.json")
        state = BackfillCheckpoint.load(checkpoint_path, bucket_name, prefix, since or "")
        objects = listed_objects(bucket, prefix, state.marker)
    fc = None
    if fc_endpoint:
        submit = _remote(
            function, template_path, fc_endpoint, access_key_id, access_key_secret, security_token
        )
    else:
        submit, fc = _in_process(function, template_path)
        fc.start()
    console = Console(stderr=as_json)
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
                region=region,
                checkpoint=state,
                checkpoint_path=checkpoint_path,
                since=since_time,
                rate=rate,
                workers=workers,
                max_failure_rate=max_failure_rate,
                progress=show,
            )
    finally:
        if fc is not None:
            fc.stop()
    write_report(report, result)
    if as_json:
        click.echo(json.dumps({**summary(result), "report": str(report)}))
    else:
        table = Table(title=f"backfill of oss://{bucket_name}/{prefix}")
        table.add_column("")
        table.add_column("")
        for name, value in summary(result).items():
            table.add_row(name, str(value))
        table.add_row("failure report", f"{report} ({result.failed} lines; rerun with --manifest {report})")
        console.print(table)
    if result.stopped or result.failed:
        raise SystemExit(1)
