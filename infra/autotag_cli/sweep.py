"""`autotag sweep`: the expiry sweep the timer function runs, from a terminal, with progress and a summary.

Same code as the function (autotag.sweep.runner.run_sweep), same checkpoints and leases in the bucket, so a
CLI run and a timer run never overlap and each resumes the other's pass."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import click
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from autotag.gateway import RateLimiter
from autotag.handlers.rules_source import fetch_from
from autotag.output import to_json
from autotag.rules import RuleSet
from autotag.rules.remote import RulesCache, parse_location
from autotag.settings import Settings
from autotag.sweep.checkpoint import Scope
from autotag.sweep.clock import absurd
from autotag.sweep.gateway import SweepGateway
from autotag.sweep.runner import SweepLimits, SweepReport, run_sweep
from autotag.sweep.state import StateStore
from autotag.timestamps import format_timestamp, parse_timestamp

from .console import Table, plain_console, shown_lines
from .errors import doing
from .options import FiniteFloatRange, rules_from, rules_option, state_prefix_option
from .target import Target, require_reachable, target_options


def _mode(report: SweepReport) -> str:
    if report.mode != "none":
        return report.mode
    if report.complete:  # the pass this clock asks for is done: only --full would do it again
        return f"none: {report.stopped or 'nothing to do'} (--full reconciles every object again)"
    return f"none: {report.stopped}"


def _unsuccessful(report: SweepReport) -> str:
    """Why the run ends in an error ("" when it does not): it was refused or stopped before its pass
    completed (other than at --max-objects, which resumes), or objects failed."""
    where = f"sweep of oss://{report.scope.bucket}/{report.scope.prefix}"
    if report.stopped and not report.complete and "maxObjects" not in report.stopped:
        return f"{where}: {report.stopped}"
    if report.failed:
        return f"{where}: {report.failed} object{'' if report.failed == 1 else 's'} failed"
    return ""


SUMMARY_ROWS = [
    ("mode", _mode),
    ("clock", lambda r: r.summary()["clock"]),
    ("complete", lambda r: "yes" if r.complete else f"no: {r.stopped}"),
    ("objects listed", lambda r: r.listed),
    ("candidates read", lambda r: r.candidates),
    ("objects pruned", lambda r: r.pruned if not r.dry_run else f"{len(r.objects)} (dry run)"),
    ("tags removed", lambda r: r.tags_removed),
    ("tag sets deleted", lambda r: r.deleted),
    ("skipped / rejected / failed", lambda r: f"{r.skipped} / {r.rejected} / {r.failed}"),
    ("records this system did not write", lambda r: f"{r.foreign} (left alone)" if r.foreign else "0"),
    ("OSS requests", lambda r: r.requests),
    ("state set aside", lambda r: shown_lines(r.warnings) or "—"),
    ("requests per listed object", lambda r: f"{r.requests / r.listed:.4f}" if r.listed else "—"),
]


def _clock(text: str | None) -> datetime | None:
    if text is None:
        return None  # OSS's clock, from the Date of its answers
    moment = parse_timestamp(text)
    if moment is None:
        raise click.BadParameter(
            f"{text!r} is not an ISO-8601 time such as 2026-12-01T03:00:00Z", param_hint="--at"
        )
    if absurd(moment):
        written = format_timestamp(moment).replace(".000Z", "Z")
        raise click.BadParameter(f"{written} {absurd(moment)}: no timer fires then", param_hint="--at")
    return moment


def _table(report: SweepReport) -> Table:
    scope = report.scope
    table = Table(title=f"tag expiry sweep of oss://{scope.bucket}/{scope.prefix}", show_header=False)
    table.add_column("")
    table.add_column("")
    for label, value in SUMMARY_ROWS:
        table.add_row(label, str(value(report)))
    return table


def _stale_table(report: SweepReport) -> Table:
    title = "stale tags" + (" (dry run: nothing written)" if report.dry_run else " removed")
    table = Table(title=title + (", and objects left alone" if report.foreign else ""))
    for column in ("key", "version", "removed", "why", "remaining"):
        table.add_column(column)
    for result in report.objects:
        removed = result.plan.removed if result.plan else ()
        table.add_row(
            result.listed.key,
            result.listed.version_id or "",
            shown_lines(f"{r.key}={r.value}" for r in removed) or result.outcome,
            shown_lines(r.reason for r in removed) or result.reason,
            shown_lines(f"{k}={v}" for k, v in (result.plan.desired if result.plan else {}).items()) or "—",
        )
    return table


@click.command()
@click.option("--bucket", "buckets", required=True, multiple=True, help="Bucket to sweep (repeatable).")
@click.option("--prefix", default="", help="Only keys under this prefix. Default: every key.")
@click.option(
    "--at",
    "at",
    help="The sweep's clock (ISO-8601, UTC), like a timer's triggerTime; default: OSS's clock. Only a "
    "dry run may be ahead of OSS's clock.",
)
@click.option(
    "--dry-run", is_flag=True, help="Show what would be removed; write nothing (no checkpoint either)."
)
@click.option("--full", is_flag=True, help="Reconcile every object, not only those whose TTLs ran out.")
@click.option(
    "--workers", default=8, show_default=True, type=click.IntRange(1, 64), help="Objects read at once."
)
@click.option(
    "--qps",
    type=FiniteFloatRange(min=0, min_open=True),
    help="Cap on OSS requests per second. Default: none.",
)
@click.option(
    "--max-objects", type=click.IntRange(min=1), help="Stop (with a checkpoint) after listing this many."
)
@state_prefix_option("the timer function's AUTOTAG_STATE_PREFIX.")
@click.option(
    "--state-bucket",
    envvar=["AUTOTAG_SWEEP_STATE_BUCKET", "AUTOTAG_STATE_BUCKET"],
    show_envvar=True,
    default="",
    help="Keep checkpoints, leases and shard plans in this bucket, as the timer function does (its "
    "AUTOTAG_SWEEP_STATE_BUCKET; template.yml: autotag-demo-state). Default: the swept bucket.",
)
@rules_option
@target_options(oss=True)
@click.option("--json", "as_json", is_flag=True, help="Print the JSON summary instead of tables.")
def sweep(
    buckets: tuple[str, ...],
    prefix: str,
    at: str | None,
    dry_run: bool,
    full: bool,
    workers: int,
    qps: float | None,
    max_objects: int | None,
    state_prefix: str,
    state_bucket: str,
    rules_path: str,
    target: Target,
    as_json: bool,
) -> None:
    """Remove stale tags this system set: TTL passed, or the rules no longer derive them.

    \b
    Examples:
      autotag sweep --bucket autotag-demo --dry-run
      autotag sweep --bucket autotag-demo --full --json
    """
    rules = rules_from(rules_path, target)  # a malformed location is one error line there
    location = parse_location(rules_path)
    if location is not None and location.bucket in buckets and not dry_run:  # as the functions refuse them
        raise click.BadParameter(
            f"{rules_path} is in {location.bucket!r}, which this sweep removes tags in: uploaders write "
            "there, and whoever writes the rules decides which tags go; keep them where only deployers "
            "write (docs/rules.md), or give --dry-run",
            param_hint="--rules",
        )
    in_force = _rules_in_force(rules_path, target)
    clock = _clock(at)
    limiter = RateLimiter(qps) if qps else None
    console = plain_console(stderr=as_json)
    reports = []
    for name in buckets:
        doing(f"sweeping oss://{name}/{prefix} at {target.oss_endpoint}")
        require_reachable(target.oss_endpoint, "OSS")
        bucket = target.bucket(name, workers)
        bucket.list_objects(prefix=prefix, max_keys=1)  # a missing bucket or a wrong key: one clear error
        gateway = SweepGateway(bucket, limiter=limiter)
        state = gateway
        if state_bucket:
            state_oss = target.bucket(state_bucket)
            state = SweepGateway(state_oss, limiter=limiter)
        store = StateStore(
            state,
            state_prefix,
            Scope(name, prefix),
            secrets=Settings.from_environment().record_secrets,  # the functions' seals, so both believe them
            legacy=gateway if state is not gateway else None,
        )
        with Progress(
            SpinnerColumn(),
            BarColumn(),  # pulses: a listing has no known total
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
            disable=as_json,
        ) as progress:
            label = f"oss://{name}/{prefix}"
            task = progress.add_task(label, total=None)

            def show(
                report: SweepReport, task_id: Any = task, label: str = label, bar: Progress = progress
            ) -> None:
                bar.update(
                    task_id,
                    description=f"{label}  listed {report.listed:,}  read {report.candidates:,}"
                    f"  pruned {report.pruned:,}  tags removed {report.tags_removed:,}",
                )

            report = run_sweep(
                gateway,
                rules,
                store,
                clock,
                limits=SweepLimits(workers=workers, max_objects=max_objects),
                dry_run=dry_run,
                full=full,
                owner=f"cli-{uuid.uuid4()}",
                progress=show,
                rules_in_force=in_force,
            )
        reports.append(report)
        if not as_json:
            console.print(_table(report))
            if report.objects:
                console.print(_stale_table(report))
    if as_json:
        click.echo(to_json({"rulesFingerprint": rules.fingerprint, "sweeps": [r.summary() for r in reports]}))
    unsuccessful = [why for why in map(_unsuccessful, reports) if why]
    if unsuccessful:
        raise click.ClickException("; ".join(unsuccessful))


def _rules_in_force(rules_path: str, target: Target) -> Callable[[], RuleSet] | None:
    """For rules kept in OSS, what the sweep asks before each write, as the timer function does."""
    location = parse_location(rules_path)
    if location is None:
        return None
    rules_cache = RulesCache(location, Settings.from_environment().record_secrets)
    fetch = fetch_from(target.bucket(location.bucket), location)
    return lambda: rules_cache.confirm(fetch)
