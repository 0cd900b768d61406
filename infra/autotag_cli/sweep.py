"""`autotag sweep`: the expiry sweep the timer function runs, from a terminal, with progress and a summary.

Same code as the function (autotag.sweep.runner.run_sweep), same checkpoints and leases in the bucket, so a
CLI run and a timer run never overlap and each resumes the other's pass."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import click
from rich.console import Console
from rich.progress import Progress, ProgressColumn, SpinnerColumn, Task, TextColumn, TimeElapsedColumn
from rich.table import Column
from rich.text import Text

from autotag.gateway import RateLimiter
from autotag.handlers.rules_source import fetch_from
from autotag.output import to_json
from autotag.rules import RuleSet
from autotag.rules.remote import RulesCache, parse_location
from autotag.settings import Settings
from autotag.sweep.checkpoint import Scope
from autotag.sweep.clock import absurd
from autotag.sweep.gateway import ListingPage, SweepGateway
from autotag.sweep.runner import SweepLimits, SweepReport, run_sweep
from autotag.sweep.state import StateStore
from autotag.timestamps import format_timestamp, parse_timestamp

from .console import Table, plain_console, shown
from .errors import FAILED, BadInput, CliError, command_line, doing, failure, resumable
from .names import BUCKET, bucket_name_problem
from .options import FiniteFloatRange, rules_from, rules_option, state_prefix_option
from .target import Target, require_reachable, target_options


def _mode(report: SweepReport) -> str:
    if report.mode != "none":
        return report.mode
    if report.complete:  # the pass this clock asks for is done: only --full would do it again
        return f"none: {report.stopped or 'nothing to do'} (--full reconciles every object again)"
    return f"none: {report.stopped}"


def _unsuccessful(report: SweepReport) -> str:
    return unsuccessful_sweep(report.summary())


def unsuccessful_sweep(summary: Mapping[str, Any]) -> str:
    """Why a sweep, as its summary (the tag-expiry function's answer) tells it, ends in an error ("" when
    it does not): it was refused or stopped before its pass completed (other than at --max-objects, which
    resumes), or objects failed."""
    where = f"sweep of oss://{summary.get('bucket', '')}/{summary.get('prefix', '')}"
    stopped = str(summary.get("stopped") or "")
    if stopped and not summary.get("complete") and "maxObjects" not in stopped:
        return f"{where}: {stopped}"
    failed = int(summary.get("failed") or 0)
    if failed:
        return f"{where}: {failed} object{'' if failed == 1 else 's'} failed"
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
    ("state set aside", lambda r: f"{len(r.warnings)} (below)" if r.warnings else "—"),
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
    table = Table(show_header=False)  # its heading, the swept location, is a line of its own above it
    table.add_column("")
    table.add_column("")
    for label, value in SUMMARY_ROWS:
        table.add_row(label, str(value(report)))
    return table


def _print_report(console: Console, report: SweepReport) -> None:
    """The summary table, with what an operator copies into the next command on lines of its own,
    whole at any width (a table's cell folds or cuts them): the swept location above it, the keys of
    state set aside below it, then each object with its key and version first."""
    scope = report.scope
    console.print(shown(f"tag expiry sweep of oss://{scope.bucket}/{scope.prefix}"), soft_wrap=True)
    console.print(_table(report))
    for warning in report.warnings:
        console.print(shown(f"state set aside: {warning}"), soft_wrap=True)
    if not report.objects:
        return
    title = "stale tags" + (" (dry run: nothing written)" if report.dry_run else " removed")
    console.print(shown(title + (", and objects left alone" if report.foreign else "")), soft_wrap=True)
    for result in report.objects:
        version = result.listed.version_id
        lines = [result.listed.key + (f" (version {version})" if version else "")]
        removed = result.plan.removed if result.plan else ()
        lines += [f"  removed {r.key}={r.value}: {r.reason}" for r in removed]
        if not removed:
            lines.append(f"  {result.outcome}: {result.reason}")
        remaining = (result.plan.desired if result.plan else {}).items()
        lines.append("  remaining: " + (", ".join(f"{k}={v}" for k, v in remaining) or "—"))
        for line in lines:
            console.print(shown(line), soft_wrap=True)


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
    type=BUCKET,
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
    bad_names = [problem for problem in map(bucket_name_problem, buckets) if problem]
    if bad_names:  # every one named, before anything is swept
        raise BadInput("; ".join(bad_names))
    rules = rules_from(rules_path, target)  # a malformed location is one error line there
    location = parse_location(rules_path)
    if location is not None and location.bucket in buckets and not dry_run:  # as the functions refuse them
        raise click.BadParameter(
            f"{rules_path} is in {location.bucket!r}, which this sweep removes tags in: uploaders write "
            "there, and whoever writes the rules decides which tags go; keep them where only deployers "
            "write (docs/rules.md), or give --dry-run",
            param_hint="--rules",
        )
    run = SweepRun(
        target,
        prefix,
        rules,
        _rules_in_force(rules_path, target),
        _clock(at),
        RateLimiter(qps) if qps else None,
        SweepLimits(workers=workers, max_objects=max_objects),
        state_bucket,
        state_prefix,
        dry_run,
        full,
        plain_console(stderr=as_json),
        as_json,
    )
    if not dry_run:
        resumable(f"Run `{command_line()}` again: it resumes from its last checkpoint (one every 30 s).")
    reports: list[SweepReport] = []
    not_swept: list[tuple[str, str, int]] = []  # (bucket, why, exit code): the others are swept all the same
    for name in buckets:
        try:
            reports.append(run.sweep(name))
        except BrokenPipeError:  # the output's reader went away: nothing more to show anyone
            raise
        except Exception as error:
            if len(buckets) == 1:
                raise
            why, code = failure(error, click.get_current_context().meta)
            click.echo(f"oss://{name}/{prefix} not swept: {why}", err=True)
            not_swept.append((name, why, code))
    if as_json:
        summaries = [r.summary() for r in reports]
        click.echo(to_json({"rulesFingerprint": run.rules.fingerprint, "sweeps": summaries}))
    unsuccessful = [why for why in map(_unsuccessful, reports) if why]
    if not_swept:
        codes = {code for _, _, code in not_swept} | ({FAILED} if unsuccessful else set())
        names = ", ".join(name for name, _, _ in not_swept)
        raise CliError(
            f"{len(not_swept)} of {len(buckets)} buckets not swept: {names} (each named above)"
            + "".join(f"; {why}" for why in unsuccessful),
            codes.pop() if len(codes) == 1 else FAILED,
        )
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


@dataclass(frozen=True)
class SweepRun:
    """What every bucket of one `autotag sweep` is swept with."""

    target: Target
    prefix: str
    rules: RuleSet
    rules_in_force: Callable[[], RuleSet] | None  # asked before each write, for rules kept in OSS
    clock: datetime | None
    limiter: RateLimiter | None
    limits: SweepLimits
    state_bucket: str
    state_prefix: str
    dry_run: bool
    full: bool
    console: Console
    as_json: bool

    def sweep(self, name: str) -> SweepReport:
        """One bucket's sweep, its tables printed unless `as_json`."""
        target, prefix = self.target, self.prefix
        doing(f"sweeping oss://{name}/{prefix} at {target.oss_endpoint}")
        require_reachable(target.oss_endpoint, "OSS")
        bucket = target.bucket(name, self.limits.workers)
        bucket.list_objects(prefix=prefix, max_keys=1)  # a missing bucket or a wrong key: one clear error
        gateway = _CountingGateway(bucket, limiter=self.limiter)
        state = gateway
        if self.state_bucket:
            state = SweepGateway(target.bucket(self.state_bucket), limiter=self.limiter)
        store = StateStore(
            state,
            self.state_prefix,
            Scope(name, prefix),
            secrets=Settings.from_environment().record_secrets,  # the functions' seals, so both believe them
            legacy=gateway if state is not gateway else None,
        )
        done: list[SweepReport] = []  # the latest report of a finished window
        with Progress(
            SpinnerColumn(),
            _Counts(lambda: _counts(gateway, done[-1] if done else None)),  # before the label: never cut
            TimeElapsedColumn(),
            TextColumn("{task.description}", table_column=Column(no_wrap=True, overflow="ellipsis")),
            console=self.console,
            transient=True,
            disable=self.as_json,
        ) as progress:
            progress.add_task(shown(f"oss://{name}/{prefix}"), total=None)
            report = run_sweep(
                gateway,
                self.rules,
                store,
                self.clock,
                limits=self.limits,
                dry_run=self.dry_run,
                full=self.full,
                owner=f"cli-{uuid.uuid4()}",
                progress=done.append,
                rules_in_force=self.rules_in_force,
                # the functions' choice for the pass after a change of rules, so both start the same one
                on_rules_change=Settings.from_environment().reconcile_on_rules_change,
            )
        if not self.as_json:
            _print_report(self.console, report)
        return report


class _CountingGateway(SweepGateway):
    """The sweep's gateway, counting the objects listed as each page comes (the sweep reports its counts
    only when a window of objects is done, which can take a while), for the progress line."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.listed = 0

    def list_page(self, prefix: str, key_marker: str, max_keys: int = 1000) -> ListingPage:
        page = super().list_page(prefix, key_marker, max_keys)
        self.listed += len(page.objects)
        return page

    def list_versions_page(
        self, prefix: str, key_marker: str, version_marker: str, max_keys: int = 1000
    ) -> ListingPage:
        page = super().list_versions_page(prefix, key_marker, version_marker, max_keys)
        self.listed += len(page.objects)
        return page


def _counts(gateway: _CountingGateway, report: SweepReport | None) -> str:
    """The progress line's counts: what is listed and the requests spent so far, live; what the finished
    windows pruned."""
    pruned = f" · {report.pruned:,} pruned" if report else ""
    return f"{gateway.listed:,} listed{pruned} · {gateway.requests:,} OSS requests"


class _Counts(ProgressColumn):
    """A column drawn anew at every refresh (10 a second) from live counters."""

    def __init__(self, text: Callable[[], str]) -> None:
        super().__init__()
        self.text = text

    def render(self, task: Task) -> Text:
        return Text(self.text(), no_wrap=True, overflow="ellipsis")
