"""`autotag reconcile OLD NEW --bucket B`: after the rules changed from OLD to NEW, bring the objects the
change can reach to what NEW derives, and send nothing about any other object.

The objects are selected here (backfill/selection.py): only the prefixes the changed rules can match are
listed (or, with --inventory, an OSS inventory's rows read), and each key (and size) is filtered with
Affected.may_reach before any request about it. The candidates then run through the backfill's engine as
the lines of a CSV manifest: here, through the manifest flow's reader, batches and processor
(backfill.py's laptop run, tag_batch with NEW: what NEW derives is set, owned tags NEW no longer derives are
removed, nobody else's are touched); with --cloud, written to OSS beside the reports and run as an
execution of the manifest flow with NEW pinned, as `backfill --cloud --manifest --rules` does."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click
import requests
from fc2.fc_exceptions import FcError

from autotag.inventory import InventoryError, parse_location
from autotag.output import to_json
from autotag.rules import RulesError
from autotag.rules.remote import parse_location as parse_rules_location
from autotag.settings import Settings
from backfill.estimate import MEASURED_OBJECTS_PER_SECOND, estimate
from backfill.runner import OssSource
from backfill.selection import (
    Listed,
    Selection,
    SelectionError,
    inventory_rows,
    kept_rows,
    list_prefixes,
    manifest_lines,
)

from .backfill import Candidates, backfill_here, bulk_options, require_cloudflow, start_cloud
from .console import counted, shown
from .errors import BadInput, CliError, doing
from .function_host import read_template
from .names import BUCKET
from .options import rules_from
from .rules_change import Change, compare, reach_document, reach_lines, selection_lines
from .target import Target, require_reachable


@click.command()
@click.argument("old", metavar="OLD")
@click.argument("new", metavar="NEW")
@click.option(
    "--bucket", "bucket_name", required=True, type=BUCKET, help="The bucket whose objects to bring up to NEW."
)
@click.option(
    "--inventory",
    metavar="oss://BUCKET/.../manifest.json",
    help="Read the objects from this OSS bucket inventory instead of listing the affected prefixes. It must "
    "have been started after NEW (in OSS) was last modified.",
)
@click.option(
    "--cloud",
    is_flag=True,
    help="Select here, write the candidates as a CSV manifest beside the reports, and start an execution of "
    "the template's manifest flow with NEW pinned (NEW must be oss://); `backfill status REF` follows it.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Select and show what would run, with its estimated cost; send no request about any object and "
    "write nothing.",
)
@bulk_options(fc_optional=True)  # FC: which rules the deployed upload function reads
@click.pass_context
def reconcile(
    ctx: click.Context,
    old: str,
    new: str,
    bucket_name: str,
    inventory: str | None,
    cloud: bool,
    dry_run: bool,
    rate: float | None,
    workers: int,
    max_failure_rate: float,
    report: Path | None,
    concurrency: int,
    report_location: str | None,
    report_part_rows: int | None,
    cloudflow_endpoint: str | None,
    template_path: Path,
    target: Target,
    as_json: bool,
) -> None:
    """Bring the objects a change of rules from OLD to NEW can reach to what NEW derives (each a file, or
    oss://BUCKET/KEY; NEW the rules the functions already read): only the affected prefixes are listed,
    each key is filtered before any request about it, and the candidates run through the backfill's engine,
    here or on CloudFlow (--cloud). Nothing else is sent a request.

    \b
    Examples:
      autotag rules diff oss://autotag-demo-state/rules.json my-rules.json --bucket autotag-demo
      autotag rules push my-rules.json --to oss://autotag-demo-state/rules.json
      autotag reconcile old-rules.json oss://autotag-demo-state/rules.json --bucket autotag-demo
    """
    try:  # a malformed oss:// NEW is named as NEW, as the loader names every other mistake in it
        new_location = parse_rules_location(new, "NEW")
    except RulesError as error:
        raise BadInput(str(error)) from None
    if cloud:
        if new_location is None:
            raise click.BadParameter(
                f"{new!r}: with --cloud the backfill function reads the rules from OSS: give NEW as "
                "oss://<bucket>/<key> (autotag rules push puts a file there)",
                param_hint="NEW",
            )
        typed = click.core.ParameterSource.COMMANDLINE
        here = [name for name in ("rate", "report") if ctx.get_parameter_source(name) == typed]
        if here:
            options = ", ".join("--" + name for name in here)
            raise click.UsageError(f"--cloud runs on CloudFlow: {options} are for a reconcile here")
    where = None
    if inventory is not None:
        try:
            where = parse_location(inventory, "--inventory")
        except InventoryError as error:
            raise click.BadParameter(
                str(error).removeprefix("--inventory "), param_hint="--inventory"
            ) from None
    require_reachable(target.oss_endpoint, "OSS")
    change = compare(old, new, target, new_for_functions=True)
    if change.diff.ownership_moved:  # the system's tags would be orphaned: before any request about them
        raise BadInput(
            f"OLD records the system's tags under {change.old.ownership.tag!r} and NEW under "
            f"{change.new.ownership.tag!r}: under NEW the tags the system set would no longer be its own, "
            "and no reconcile moves them; keep ownership_tag as OLD has it "
            "(docs/reconcile.md#the-ownership-tag)"
        )
    _note_if_not_uploads(change, template_path, target)
    document = reach_document(change)
    if change.diff.unchanged or not change.affected.prefixes:
        if as_json:
            click.echo(to_json({"reach": document, "selection": None}))
        else:
            for line in reach_lines(document):
                click.echo(shown(line))
        return
    selection = Selection(change.affected.prefixes, inventory or "listing")
    rows = _rows(bucket_name, where, change, selection, target, template_path)
    kept = kept_rows(rows, change.affected, selection)

    def shown_json() -> dict[str, Any]:
        return {"reach": document, "selection": selection.as_json()}

    def shown_text() -> list[str]:
        return [*reach_lines(document), *selection_lines(selection, None)]

    if dry_run:
        for _ in kept:
            pass
        cost = estimate(selection, change.new_reads_head, MEASURED_OBJECTS_PER_SECOND)
        if as_json:
            click.echo(to_json({**shown_json(), "estimate": cost, "dryRun": True}))
            return
        for line in [*reach_lines(document), *selection_lines(selection, cost)]:
            click.echo(shown(line))
        click.echo("dry run: no request about any object was sent, nothing written")
        return
    if cloud:
        assert new_location is not None
        _reconcile_cloud(
            bucket_name, kept, selection, new, report_location, concurrency, max_failure_rate, template_path,
            cloudflow_endpoint, target, as_json, report_part_rows, shown_json, shown_text,
        )  # fmt: skip
        return
    candidates = Candidates(
        f"the candidates of oss://{bucket_name} ({counted(len(selection.prefixes), 'prefix', 'prefixes')})",
        manifest_lines(kept),
        change.new,
        shown_json,
        shown_text,
        change.affected.reaches,
    )
    backfill_here(
        bucket_name, "", "", None, None, None, rate, workers, max_failure_rate, None, False, report, None,
        template_path, target, as_json, candidates,
    )  # fmt: skip


UPLOAD_FUNCTION = "tag-on-upload"  # the template's function whose rules decide an upload's tags


def _note_if_not_uploads(change: Change, template_path: Path, target: Target) -> None:
    """Say so when NEW is not the rules the upload function reads (its AUTOTAG_RULES, read as every command
    reads rules): the reconcile tags by NEW, while uploads go on getting those rules' tags."""
    source = _upload_rules_source(template_path, target)
    try:
        uploads = rules_from(source, target, functions_read=True)
    except CliError as error:
        said = error.message.removeprefix("AUTOTAG_RULES ")
        note = (
            f"note: could not read the rules {UPLOAD_FUNCTION} reads ({source}) to compare NEW with: {said}"
        )
    else:
        if uploads.fingerprint == change.new.fingerprint:
            return
        note = (
            f"note: NEW ({change.new_source}) is not the rules {UPLOAD_FUNCTION} reads ({source}, "
            f"fingerprint {uploads.fingerprint}): uploads keep getting those rules' tags"
        )
    click.echo(shown(note), err=True)


def _upload_rules_source(template_path: Path, target: Target) -> str:
    """The AUTOTAG_RULES of the upload function as FC runs it (GetFunction: a deploy, or `local up --rules`,
    may set other rules than the template's), else as the template declares it."""
    spec = read_template(template_path).function(UPLOAD_FUNCTION)
    try:
        answer = target.fc_client().get_function(spec.service, spec.name)
        deployed = (answer.data.get("environmentVariables") or {}).get("AUTOTAG_RULES")
    except (CliError, FcError, requests.RequestException):  # no FC there, no such function, refused
        deployed = None
    return str(deployed or spec.environment.get("AUTOTAG_RULES") or "default")


def _in_force_at(new: str, template_path: Path, target: Target) -> datetime | None:
    """When every function instance reads NEW kept in OSS: its Last-Modified plus the upload function's
    AUTOTAG_RULES_MAX_AGE (an instance revalidates its rules at most that long after a push). None when
    NEW is a file: what the functions read is then the operator's to know."""
    location = parse_rules_location(new)
    if location is None:
        return None
    environment = read_template(template_path).function(UPLOAD_FUNCTION).environment
    try:
        max_age = float(environment.get("AUTOTAG_RULES_MAX_AGE") or Settings.rules_max_age)
    except ValueError:
        max_age = Settings.rules_max_age
    doing(f"reading when the rules {new} were last modified at {target.oss_endpoint}")
    modified = target.bucket(location.bucket).head_object(location.key).last_modified
    return datetime.fromtimestamp(modified + max_age, timezone.utc)


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _rows(
    bucket_name: str, where: Any, change: Change, selection: Selection, target: Target, template_path: Path
) -> Iterator[Listed]:
    """The objects to filter: the affected prefixes' listing, or the inventory's rows. An inventory started
    before NEW was in force everywhere is refused: objects uploaded between were tagged by OLD and are not
    in it. A listing that starts before then is said to: objects uploaded meanwhile may keep OLD's tags."""
    in_force = _in_force_at(change.new_source, template_path, target)
    if where is None:
        now = target.oss_time()
        if in_force is not None and now < in_force:
            click.echo(
                shown(
                    f"note: until {_when(in_force)} (NEW's Last-Modified plus AUTOTAG_RULES_MAX_AGE) a "
                    "function instance may still tag uploads with the old rules; run the reconcile again "
                    "after then to reach those objects too"
                ),
                err=True,
            )
        doing(f"listing oss://{bucket_name}/ under the affected prefixes at {target.oss_endpoint}")
        target.bucket(bucket_name).list_objects(max_keys=1)  # a missing bucket or a wrong key fails first
        return list_prefixes(target.bucket, bucket_name, selection)
    source = OssSource(target.bucket)
    doing(f"reading the inventory {where} at {target.oss_endpoint}")
    try:
        rows = inventory_rows(source.read, where, bucket_name, selection)
        first = next(rows, None)  # reads manifest.json: its creation time, and whether it lists this bucket
    except SelectionError as error:
        raise BadInput(f"--inventory: {error}") from None
    created = selection.inventory_created
    if in_force is not None and created is not None and created < in_force:
        raise BadInput(
            f"the inventory {where} was started at {_when(created)}, before NEW {change.new_source} was in "
            f"force everywhere at {_when(in_force)} (its Last-Modified plus AUTOTAG_RULES_MAX_AGE): objects "
            "uploaded between were tagged by the old rules and are not in it; use a newer inventory, or "
            "leave --inventory out to list"
        )

    def all_rows() -> Iterator[Listed]:
        if first is not None:
            yield first
        try:
            yield from rows
        except SelectionError as error:
            raise BadInput(f"--inventory: {error}") from None

    return all_rows()


def _reconcile_cloud(
    bucket_name: str,
    kept: Iterator[Listed],
    selection: Selection,
    new: str,
    report_location: str | None,
    concurrency: int,
    max_failure_rate: float,
    template_path: Path,
    cloudflow_endpoint: str | None,
    target: Target,
    as_json: bool,
    report_part_rows: int | None,
    shown_json: Any,
    shown_text: Any,
) -> None:
    """Write the candidates as a CSV manifest under backfill/manifests/ of the reports' bucket (where the
    flows' role reads manifests) and start the manifest flow over it with NEW pinned."""
    if report_location is None:
        declared = read_template(template_path).buckets
        if not declared:
            raise click.UsageError("--report-location is needed: the template declares no bucket for reports")
        report_location = f"oss://{declared[0].name}/backfill/reports/"
    try:
        reports = parse_location(report_location if report_location.endswith("/") else report_location + "/")
    except InventoryError as error:
        raise click.BadParameter(str(error), param_hint="--report-location") from None
    require_cloudflow(target, cloudflow_endpoint)  # before the manifest: no execution, nothing written
    run = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    manifest = f"backfill/manifests/reconcile-{bucket_name}-{run}.csv"
    with tempfile.TemporaryFile() as spool:  # the candidates may be many: on disk, not in memory
        for line in manifest_lines(kept):
            spool.write(line)
        if not as_json:
            for line in shown_text():
                click.echo(shown(line))
        if selection.candidates == 0:
            if as_json:
                click.echo(to_json({**shown_json(), "execution": None}))
            else:
                click.echo("no candidates: nothing to reconcile, no execution started")
            return
        spool.seek(0)
        doing(f"writing the candidates to oss://{reports.bucket}/{manifest} at {target.oss_endpoint}")
        target.bucket(reports.bucket).put_object(manifest, spool, headers={"Content-Type": "text/csv"})
    if not as_json:
        click.echo(f"candidates: oss://{reports.bucket}/{manifest}")
    try:
        start_cloud(
            bucket_name, "", None, f"oss://{reports.bucket}/{manifest}", report_location, concurrency,
            max_failure_rate, template_path, cloudflow_endpoint, target, as_json, new, report_part_rows,
            {**shown_json(), "candidatesManifest": f"oss://{reports.bucket}/{manifest}"},
        )  # fmt: skip
    except BrokenPipeError:  # the execution started; only its output's reader went away
        raise
    except Exception:  # no execution started (an interrupt may have come after the start: kept then)
        _delete_manifest(target, reports.bucket, manifest)
        raise


def _delete_manifest(target: Target, bucket: str, manifest: str) -> None:
    """Best effort: a manifest no execution reads is deleted, and the user told whether it was."""
    try:
        target.bucket(bucket).delete_object(manifest)
    except Exception:  # the start's own error is the one to report; this one is only said
        said = f"note: no execution started; the candidates' manifest could not be deleted: oss://{bucket}/"
    else:
        said = f"note: no execution started; the candidates' manifest was deleted: oss://{bucket}/"
    said += manifest
    click.echo(shown(said), err=True)
