"""`autotag backfill`: tag objects that existed before the trigger, with the upload path's own tagging.

Here (the default), the backfill flow's distributed Map runs in this process with the command's own
credentials (backfill/runner.py): the items of a listing, of a CSV manifest (a local file or in OSS) or of
an OSS inventory are read by the flow's own readers, cut into batches as the flow's definition in
template.yml says, and each batch goes to the backfill function's processor on `--workers` threads. No
function and no CloudFlow is involved. A run never loses a failure: each failure is written to the run's
failed.csv (and its reason beside it) before the checkpoint moves past it; a run of a listing that resumes
says so and from where; `--restart` starts over.

With `--cloud`, it starts an execution of one of template.yml's backfill flows on CloudFlow (a distributed
Map the engine runs and keeps the state of); `backfill status REF` and `backfill cancel REF` follow and stop
it (backfill_cloud.py)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

import click
import oss2
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from autotag.facts import ObjectFacts
from autotag.gateway import OssGateway, RateLimiter
from autotag.handlers.map_items import tag_batch
from autotag.map_batch import is_map_batch, parse_map_batch
from autotag.output import to_json
from autotag.rules import RuleSet
from autotag.settings import DEFAULT_STATE_PREFIX
from autotag.timestamps import parse_timestamp
from backfill.runner import (
    BackfillCheckpoint,
    BackfillJob,
    BackfillReport,
    CheckpointError,
    FailureReport,
    OssSource,
    run_backfill,
    summary,
)
from cloudformats.items import CHUNK_BYTES, Item, SourceError, constructed, csv_items, read_items
from flowspec.definition import DefinitionError, MapSpec, parse_definition, resolve_map
from flowspec.expressions import construct

from .backfill_cloud import MAP_STATE, CloudBackfillError, plan_execution, read_status, start, stop
from .console import Table, plain_console, shown
from .errors import BadInput, command_line, doing, resumable
from .function_host import LOCAL_STATE, read_template, template_option
from .names import BUCKET
from .options import FiniteFloatRange, pinned_rules, rules_from
from .target import LOCAL_CLOUDFLOW_ENDPOINT, Target, is_loopback, require_reachable, target_options

BACKFILL_FUNCTION = "tag-backfill"  # the template's function whose processor runs here, with its rules
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Candidates:
    """Objects another command chose (`autotag reconcile`), run here as the lines of a CSV manifest
    (`bucket,key[,versionId]`, keys URL-encoded) through the manifest flow's reader, batches and processor,
    exactly as `backfill --manifest FILE` runs a file's. `shown_json` and `shown_text` say how they were
    chosen (called once the lines are read: their counts are final then)."""

    name: str  # what the run reads, as the summary and the failure reasons name it
    lines: Iterable[bytes]
    rules: RuleSet
    shown_json: Callable[[], dict[str, Any]]
    shown_text: Callable[[], list[str]]
    # the change's exact check on an object's facts (reach.Affected.reaches): after its HEAD, an object no
    # changed rule matches is left as it is, its tags not read
    reaches: Callable[[ObjectFacts], bool] | None = None


CLOUDFLOW_ENDPOINT = click.option(
    "--cloudflow-endpoint",
    envvar="AUTOTAG_CLOUDFLOW_ENDPOINT",
    show_envvar=True,
    metavar="URL",
    help=f"With --cloud: CloudFlow's endpoint. Default: the local cloud's ({LOCAL_CLOUDFLOW_ENDPOINT}) when "
    "OSS is local, else the region's.",
)


def bulk_options(*, fc_optional: bool = False) -> Callable[[F], F]:
    """The options of a bulk run that `backfill` and `reconcile` share: how it runs here (rate, workers,
    breaker, report), on CloudFlow (concurrency, report location and parts, endpoint), the template, where
    it points (with `fc_optional`, FC's endpoint too: target.target_options), and --json."""

    def decorate(command: F) -> F:
        options = (*_BULK_OPTIONS, target_options(oss=True, fc_optional=fc_optional), JSON_OPTION)
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


_BULK_OPTIONS: tuple[Callable[[Any], Any], ...] = (
    click.option(
        "--rate",
        type=FiniteFloatRange(min=0, min_open=True),
        help="Here: objects per second, at most. Default: no cap.",
    ),
    click.option(
        "--workers",
        default=8,
        show_default=True,
        type=click.IntRange(1, 64),
        help="Here: batches at once, each on a thread of its own.",
    ),
    click.option(
        "--max-failure-rate",
        default=0.5,
        show_default=True,
        type=FiniteFloatRange(0, 1),
        help="Here: stop when more than this share of the last 200 objects failed. With --cloud: the share "
        "of items the execution tolerates failing.",
    ),
    click.option(
        "--report",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Here: the failed.csv to append what failed to (each reason beside it in <name>.reasons.jsonl). "
        "Default: a new .localcloud/backfill/<bucket>-<run>.failed.csv per run.",
    ),
    click.option(
        "--concurrency",
        default=16,
        show_default=True,
        type=click.IntRange(1, 10000),
        help="With --cloud: batches at once (the Map's MaxConcurrency).",
    ),
    click.option(
        "--report-location",
        metavar="oss://BUCKET/PREFIX/",
        help="With --cloud: where the engine writes the results. Default: backfill/reports/ in the "
        "template's declared bucket (the flows' role may write there).",
    ),
    click.option(
        "--report-part-rows",
        type=click.IntRange(1, 5_000_000),
        help="With --cloud: rows per part of the completion report and of its failed-objects manifest. "
        "Default: 500,000.",
    ),
    CLOUDFLOW_ENDPOINT,
    template_option,
)
JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")


def require_cloudflow(target: Target, endpoint: str | None) -> str:
    """The CloudFlow endpoint the commands use ("" for the region's), checked to answer when given or
    local: before anything is written for an execution that could not start."""
    chosen = endpoint or (LOCAL_CLOUDFLOW_ENDPOINT if is_loopback(target.oss_endpoint) else "")
    if chosen:
        require_reachable(chosen, "CloudFlow")
    return chosen


def _cloudflow(target: Target, endpoint: str | None) -> Any:
    """A client of CloudFlow's API (alibabacloud-fnf20190315) with the target's credentials."""
    from deployer.flows import cloudflow_client

    chosen = require_cloudflow(target, endpoint)
    credentials = target.credentials
    return cloudflow_client(
        chosen,
        target.region,
        credentials.access_key_id,
        credentials.access_key_secret,
        credentials.security_token,
    )


def _checkpoint_path(job: BackfillJob) -> Path:
    """One file per job: a run of another job (another endpoint, account, source or rules) never finds it."""
    return LOCAL_STATE / "backfill" / f"{job.bucket}-{job.scope}.checkpoint.json"


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
@click.option("--prefix", default="", help="Only keys under this prefix (a listing). Default: every key.")
@click.option(
    "--since",
    help="Here, of a listing: only objects last modified at or after this ISO-8601 time. Default: all.",
)
@click.option(
    "--manifest",
    help="Only the objects of this CSV manifest (bucket,key, keys URL-encoded: a run's failed.csv, or OSS "
    "Batch Operations' manifest), locally or oss://bucket/key (only oss:// with --cloud). Default: a "
    "listing.",
)
@click.option(
    "--inventory",
    help="Only the objects of this OSS bucket inventory, oss://bucket/.../manifest.json. Default: a listing.",
)
@click.option(
    "--checkpoint",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Here, of a listing: the resume file. Default: "
    ".localcloud/backfill/<bucket>-<scope>.checkpoint.json.",
)
@click.option("--restart", is_flag=True, help="Ignore the checkpoint and start from the first key.")
@click.option(
    "--rules",
    "rules",
    envvar="AUTOTAG_RULES",
    show_envvar=True,
    help=f"Here: the rules to tag with. Default: the template's {BACKFILL_FUNCTION} AUTOTAG_RULES.",
)
@click.option(
    "--cloud",
    is_flag=True,
    help="Start an execution of the template's backfill flow on CloudFlow (from a listing, --inventory or an "
    "oss:// --manifest) and return at once; `backfill status REF` follows it.",
)
@bulk_options()
@click.pass_context
def backfill(
    ctx: click.Context,
    bucket_name: str | None,
    prefix: str,
    since: str | None,
    manifest: str | None,
    inventory: str | None,
    rate: float | None,
    workers: int,
    max_failure_rate: float,
    checkpoint: Path | None,
    restart: bool,
    report: Path | None,
    rules: str | None,
    cloud: bool,
    concurrency: int,
    report_location: str | None,
    report_part_rows: int | None,
    cloudflow_endpoint: str | None,
    template_path: Path,
    target: Target,
    as_json: bool,
) -> None:
    """Tag every existing object (under --prefix, or those --manifest or --inventory names) as an upload
    would be: here, with your credentials, or as an execution on CloudFlow (--cloud) that `backfill status`
    and `backfill cancel` follow and stop.

    \b
    Examples:
      autotag backfill --bucket autotag-demo --prefix projects/
      autotag backfill --bucket autotag-demo --manifest .localcloud/backfill/autotag-demo-<run>.failed.csv
      autotag backfill --bucket autotag-demo --inventory oss://inv-bucket/autotag-demo/daily/2026-12-01T00-00Z/manifest.json
      autotag backfill --bucket autotag-demo --cloud --concurrency 64
      autotag backfill status oss-autotag-backfill-prefix/<execution>
    """
    if ctx.invoked_subcommand is not None:
        return
    if bucket_name is None:
        raise click.UsageError("Missing option '--bucket'.")
    if inventory and manifest:
        raise click.UsageError("--inventory and --manifest name the objects two ways: give one")
    if cloud:
        typed = click.core.ParameterSource.COMMANDLINE  # not AUTOTAG_RULES from the environment
        options_here = ("since", "rate", "checkpoint", "restart", "report")
        here = [name for name in options_here if ctx.get_parameter_source(name) == typed]
        if here:
            options = ", ".join("--" + name for name in here)
            raise click.UsageError(f"--cloud runs on CloudFlow: {options} are for a backfill here")
        start_cloud(
            bucket_name, prefix, inventory, manifest, report_location, concurrency, max_failure_rate,
            template_path, cloudflow_endpoint, target, as_json,
            # an execution's own rules only when typed: AUTOTAG_RULES is this machine's, not the flow's
            rules if ctx.get_parameter_source("rules") == typed else None, report_part_rows,
        )  # fmt: skip
        return
    manifest = _manifest_location(manifest)
    since_time = parse_timestamp(since) if since else None
    if since and since_time is None:
        raise click.BadParameter(f"{since!r} is not an ISO-8601 time", param_hint="--since")
    if (inventory or manifest) and (prefix or since):
        raise click.UsageError(
            "--prefix and --since select from a listing; a manifest or inventory names its objects"
        )
    backfill_here(
        bucket_name, prefix, since or "", since_time, manifest, inventory, rate, workers, max_failure_rate,
        checkpoint, restart, report, rules, template_path, target, as_json,
    )  # fmt: skip


def start_cloud(
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
    shown_json: dict[str, Any] | None = None,
) -> None:
    """Start the execution; `shown_json` goes into its JSON beside it (how reconcile chose the objects)."""
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
        click.echo(
            to_json({**(shown_json or {}), "execution": started.reference, "flow": flow, "input": given})
        )
        return
    click.echo(
        f"started {started.reference} (report under {report_location.rstrip('/')}/{started.execution}/)"
    )
    click.echo(f"follow it: autotag backfill status {started.reference}")


def _flow_map(template_path: Path, flow_name: str, given: dict[str, Any]) -> MapSpec:
    """The Map state of the template's backfill flow `flow_name`, resolved over `given` as CloudFlow would."""
    flow = next((f for f in read_template(template_path).flows if f.name == flow_name), None)
    if flow is None:
        raise BadInput(f"{template_path}: declares no flow {flow_name}")
    try:
        state = parse_definition(flow.definition).body.states.get(MAP_STATE)
        if state is None or state.map is None:
            raise DefinitionError(f"no Map state named {MAP_STATE}")
        return resolve_map(state.map, {"Input": given, "Context": {}}, f"States[{MAP_STATE}]")
    except DefinitionError as error:
        raise BadInput(f"{template_path}: flow {flow_name}: {error}") from None


def _file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as file:
        while piece := file.read(CHUNK_BYTES):
            yield piece


def backfill_here(
    bucket_name: str,
    prefix: str,
    since: str,
    since_time: datetime | None,
    manifest: str | None,
    inventory: str | None,
    rate: float | None,
    workers: int,
    max_failure_rate: float,
    checkpoint: Path | None,
    restart: bool,
    report: Path | None,
    rules: str | None,
    template_path: Path,
    target: Target,
    as_json: bool,
    candidates: Candidates | None = None,
) -> None:
    template = read_template(template_path)
    function = template.function(BACKFILL_FUNCTION).environment
    local_manifest = Path(manifest) if manifest and not manifest.startswith("oss://") else None
    # the input `--cloud` would start the flow with (its report location unused here); a local manifest (or
    # the candidates' lines) is read by the manifest flow's reader, from the file
    local_lines = local_manifest is not None or candidates is not None
    oss_manifest = f"oss://{bucket_name}/manifest.csv" if local_lines else manifest
    try:
        flow_name, given = plan_execution(
            bucket_name, prefix, inventory, oss_manifest, f"oss://{bucket_name}/backfill/reports/", workers,
            max_failure_rate * 100,
        )  # fmt: skip
    except CloudBackfillError as error:
        raise click.UsageError(str(error)) from None
    spec = _flow_map(template_path, flow_name, given)
    scope: dict[str, Any] = {"Input": given, "Context": {}}
    console = plain_console(stderr=True)
    require_reachable(target.oss_endpoint, "OSS")
    # what the objects are tagged with: part of what the job is (checked before anything is listed or resumed)
    rule_set = (
        candidates.rules
        if candidates is not None
        else rules_from(rules or function.get("AUTOTAG_RULES") or "default", target, functions_read=True)
    )
    clients: dict[str, oss2.Bucket] = {}
    clients_lock = threading.Lock()

    def bucket_for(name: str) -> oss2.Bucket:
        with clients_lock:
            if name not in clients:
                clients[name] = target.bucket(name, workers)
            return clients[name]

    listing = not (manifest or inventory or candidates)
    job = BackfillJob(
        target.oss_endpoint,
        target.credentials.access_key_id,
        bucket_name,
        prefix,
        since,
        rule_set.fingerprint,
    )
    state = BackfillCheckpoint(job)
    checkpoint_path = None
    if listing:
        doing(f"listing oss://{bucket_name}/{prefix} at {target.oss_endpoint}")
        bucket_for(bucket_name).list_objects(
            prefix=prefix, max_keys=1
        )  # a missing bucket or a wrong key fails first
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
                    f"({state.submitted:,} objects done before, {state.failed:,} failed); "
                    "--restart starts over"
                )
            )
    source = OssSource(bucket_for, state.marker, since_time)
    items: Iterator[Item]
    headers = spec.reader.csv_headers if spec.reader else ()
    if candidates is not None:
        items = constructed(csv_items(candidates.lines, candidates.name, headers), spec, scope)
    elif local_manifest is not None:
        items = constructed(
            csv_items(_file_chunks(local_manifest), str(local_manifest), headers), spec, scope
        )
    else:
        items = read_items(spec, source, scope)
    batch_extra = None
    if spec.batcher is not None and spec.batcher.batch_input:
        batch_extra = construct(spec.batcher.batch_input, scope)
    limiter = RateLimiter(rate) if rate else None
    ignored_prefix = function.get("AUTOTAG_STATE_PREFIX") or DEFAULT_STATE_PREFIX

    def refusal(bucket: str) -> str:
        return (
            ""
            if bucket == bucket_name
            else f"bucket {bucket!r} is not {bucket_name!r}, the one this run tags"
        )

    def gateway_for(bucket: str) -> OssGateway:
        if limiter is not None:
            limiter.acquire()
        return OssGateway(bucket_for(bucket))

    def process(value: Any) -> dict[str, Any]:
        document = value if is_map_batch(value) else {"Items": [value]}
        return tag_batch(
            parse_map_batch(document), rule_set, gateway_for, region=target.region, refusal=refusal,
            ignored_prefix=ignored_prefix, reaches=candidates.reaches if candidates is not None else None,
        )  # fmt: skip

    again = command_line(drop=("--restart",))
    if listing:
        resumable(f"Run `{again}` again: it resumes after its checkpoint.")
    else:  # a manifest's or an inventory's run keeps no checkpoint
        resumable(f"Run `{again}` again: it reads its objects again (tagging is idempotent).")
    run_id = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    report_path = report or LOCAL_STATE / "backfill" / f"{bucket_name}-{run_id}.failed.csv"
    failures = FailureReport(report_path, run_id)
    what = (
        f"oss://{bucket_name}/{prefix}"
        if listing
        else candidates.name
        if candidates is not None
        else str(manifest or inventory)
    )
    doing(f"backfilling {what}")
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
            task = bar.add_task(f"backfill {what}", total=None)

            def show(current: BackfillReport) -> None:
                bar.update(
                    task,
                    description=f"read {current.read:,}  tagged {current.tagged:,}  unchanged "
                    f"{current.unchanged:,}  failed {current.failed + current.rejected:,}",
                )

            result = run_backfill(
                items,
                spec.batcher,
                batch_extra,
                process,
                checkpoint=state,
                checkpoint_path=checkpoint_path,
                workers=workers,
                max_failure_rate=max_failure_rate,
                progress=show,
                record_failure=failures,
            )
    except SourceError as error:
        raise BadInput(f"reading {what}: {error.message}") from None
    finally:
        failures.close()
    result.skipped_older = source.skipped_older
    if not result.stopped:  # through its whole source: finished, nothing to resume
        BackfillCheckpoint.finish(checkpoint_path)
    found_in = f"under {what}" if listing else f"in {what}"
    if candidates is not None and not as_json:
        for line in candidates.shown_text():
            plain_console().print(shown(line), soft_wrap=True)
    shown_json = candidates.shown_json() if candidates is not None else None
    _print_summary(console, result, what, found_in, failures, as_json, bool(state.marker), shown_json)
    if result.stopped or result.failed or result.rejected:
        raise SystemExit(1)


reference_argument = click.argument("reference", metavar="REF")
# Accepted and changing nothing, so that a script passing it works: REF always names an execution on
# CloudFlow.
cloud_flag = click.option(
    "--cloud", is_flag=True, hidden=True, help="Accepted, and changes nothing: REF is always on CloudFlow."
)


@backfill.command("status")
@reference_argument
@click.option(
    "--watch",
    type=FiniteFloatRange(min=1),
    metavar="SECONDS",
    help="Show the status again every SECONDS until the execution has ended. Default: once.",
)
@cloud_flag
@CLOUDFLOW_ENDPOINT
@target_options(oss=True)
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def backfill_status(
    reference: str,
    watch: float | None,
    cloud: bool,
    cloudflow_endpoint: str | None,
    target: Target,
    as_json: bool,
) -> None:
    """Show an execution's progress, read from CloudFlow: items done, failed and read, the rate, the ETA
    and the report's location (REF: <flow>/<execution>, as `backfill --cloud` printed it).

    \b
    Example:
      autotag backfill status oss-autotag-backfill-prefix/<execution> --watch 10
    """
    _cloud_status(reference, watch, _cloudflow(target, cloudflow_endpoint), as_json, _object_reader(target))


@backfill.command("cancel")
@reference_argument
@cloud_flag
@CLOUDFLOW_ENDPOINT
@target_options(oss=True)
@click.option("--json", "as_json", is_flag=True, help="Print CloudFlow's answer as JSON.")
def backfill_cancel(
    reference: str, cloud: bool, cloudflow_endpoint: str | None, target: Target, as_json: bool
) -> None:
    """Stop an execution on CloudFlow (StopExecution); what it finished stays in its report.

    \b
    Example:
      autotag backfill cancel oss-autotag-backfill-prefix/<execution>
    """
    try:
        stopped = stop(_cloudflow(target, cloudflow_endpoint), reference)
    except CloudBackfillError as error:
        raise BadInput(str(error)) from None
    click.echo(to_json(stopped) if as_json else f"{reference}: stopped")


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
            # What an operator copies (the reference, locations) goes on a line of its own, whole at any
            # width; the rest fits 80 columns.
            click.echo(f"execution: {shown_status['execution']}")
            click.echo(
                f"{shown_status['status']}; {items['done']} of {items['read']} items read so far done "
                f"({items['failed']} failed), {shown_status['objectsPerSecond']}/s"
                + (f", about {eta} s left" if eta is not None else "")
            )
            if shown_status["report"]:
                click.echo(f"report: {shown_status['report']}")
                counts = shown_status["objects"] or {}
                per_outcome = ", ".join(f"{outcome} {count:,}" for outcome, count in sorted(counts.items()))
                click.echo(shown(f"objects: {per_outcome or 'none'}"))
                label = (
                    "failed objects (a --manifest)"
                    if counts.get("failed")
                    else "failed manifest (no failed object in it)"
                )
                for failed_manifest in shown_status["failedManifests"]:
                    click.echo(shown(f"{label}: {failed_manifest}"))
        if not as_json and shown_status.get("error"):
            click.echo(shown(f"why: {shown_status['error']['code']}: {shown_status['error']['cause']}"))
        if watch is None or shown_status["status"] not in ("Starting", "Running"):
            if shown_status.get("error"):  # the work failed: exit 1 (docs/cli.md), its why said above
                raise click.exceptions.Exit(1)
            return
        time.sleep(watch)


def _print_summary(
    console: Console,
    result: BackfillReport,
    what: str,
    found_in: str,
    failures: FailureReport,
    as_json: bool,
    resumed: bool,
    shown_json: dict[str, Any] | None = None,
) -> None:
    """The summary table, with what an operator copies into the next command on lines of its own, whole
    at any width (a table's cell folds or cuts them): the failure report, its reasons and the `--manifest`
    that runs it again, below it."""
    failed = failures.count
    if as_json:
        document = {**summary(result), "report": str(failures.path) if failed else None}
        click.echo(to_json({**(shown_json or {}), **document}))
        return
    if result.read == 0:
        where = "after the checkpoint" if resumed else "at all"
        console.print(shown(f"nothing found {found_in} {where}: no object tagged"))
        return
    console = plain_console()
    console.print(shown(f"backfill of {what}"), soft_wrap=True)
    table = Table(show_header=False)
    table.add_column("")
    table.add_column("")
    for name, value in summary(result).items():
        table.add_row(name, str(value))
    table.add_row("failure report", f"{failed} failures (below)" if failed else "none")
    console.print(table)
    if failed:
        console.print(shown(f"failure report: {failures.path}"), soft_wrap=True)
        console.print(shown(f"reasons: {failures.reasons_path}"), soft_wrap=True)
        console.print(shown(f"run again with: --manifest {failures.path}"), soft_wrap=True)
