"""The sweep of one scope: list, pick candidates, reconcile them on a bounded worker pool, checkpoint,
and stop cleanly before the deadline. Resumes where the previous run of the pass stopped.

After a change of rules, the next pass is what `on_rules_change` says (checkpoint.py): `selected` lists only
the prefixes the change can reach (rules/reach.py), filters the listed keys before any per-object request,
and gives each candidate the full plan of the new rules; when it completes, the incremental pass that judges
TTLs since the previous completed pass follows in the same run. Its previous rules come from the scope's
sealed copy (applied_rules.py); without one to believe, every object is reconciled instead.

With rules kept in OSS, nothing is written by rules that are no longer in force (rules_watch.py): when the
rules change during a pass, the run starts a new pass with the new ones, at most MAX_RESTARTS times."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

from ..gateway import OutOfTime, PermanentOssError, TransientOssError
from ..rules import RuleSet
from ..rules.changes import diff_rules
from ..rules.reach import Affected, affected_objects
from ..timestamps import format_timestamp
from .applied_rules import forget_rules, keep_rules, kept_rules
from .checkpoint import (
    PRUNE,
    Checkpoint,
    PassTotals,
    Position,
    Scope,
    SweepPass,
    advanced,
    completed,
    next_pass,
    widened,
)
from .clock import absurd, ahead_of, describe_ahead
from .gateway import ListedObject, ListingPage, SweepGateway
from .reconcile import (
    PLANNED,
    PRUNED,
    REJECTED,
    RULES_CHANGED,
    SKIPPED,
    TAGGED,
    Reconciled,
    reconcile_object,
    retag_object,
)
from .rules_watch import RulesWatch
from .selection import is_candidate, listing_starts, selected_prefixes
from .state import Busy, Lease, LeaseLost, StateStore

MAX_REPORTED_OBJECTS = 200  # objects listed in a summary (the counts cover all of them)
MAX_RESTARTS = 3  # new passes one run starts because the rules changed; then the next run goes on


@dataclass(frozen=True)
class SweepLimits:
    workers: int = 8
    max_objects: int | None = None  # listed objects per run
    checkpoint_seconds: float = 30.0
    page_size: int = 1000
    lease_seconds: float = 960.0  # longer than FC's longest timeout (900 s): a dead holder's lease expires


@dataclass
class SweepReport:
    scope: Scope
    clock: datetime
    dry_run: bool
    # incremental, full, selected, or none (nothing to do): the pass the run was for (a selected pass, not
    # the incremental one that follows it; after a restart, the new pass)
    mode: str = "none"
    passes: list[str] = field(default_factory=list)  # the modes of the passes this run worked on
    retag: bool = False  # that pass gave candidates the full plan of the rules, not only pruning
    reconciled_from: str | None = None  # a selected pass: the fingerprint of the rules it reconciled from
    listed_prefixes: tuple[str, ...] | None = None  # a selected pass: the prefixes it lists
    since: datetime | None = None
    resumed: bool = False
    complete: bool = False
    stopped: str = ""  # why the run ended before the pass completed
    listed: int = 0
    candidates: int = 0
    pruned: int = 0
    tagged: int = 0  # objects given the full plan of the rules (tags added, changed or removed)
    deleted: int = 0  # objects left with no tags: DeleteObjectTagging
    tags_added: int = 0
    tags_changed: int = 0
    tags_removed: int = 0
    unchanged: int = 0
    skipped: int = 0
    rejected: int = 0
    failed: int = 0
    foreign: int = 0  # left alone: an ownership record this system did not write (a forgery, a hand edit)
    requests: int = 0
    rules_checks: int = 0  # conditional GETs of the rules object (part of `requests`)
    objects: list[Reconciled] = field(default_factory=list)  # those with stale tags (first ones)
    warnings: list[str] = field(default_factory=list)  # state not believed or set aside; rules that changed

    def record(self, result: Reconciled) -> None:
        outcome = result.outcome
        if outcome == RULES_CHANGED:  # judged again in the next pass, with the rules in force
            return
        if outcome in (PRUNED, PLANNED, TAGGED):
            self.pruned += outcome == PRUNED
            self.tagged += outcome == TAGGED
            self.deleted += result.deleted_all
            self.tags_removed += len(result.plan.removed) if result.plan else 0
            self.tags_added += len(result.plan.added) if result.plan else 0
            self.tags_changed += len(result.plan.changed) if result.plan else 0
        elif outcome == SKIPPED:
            self.skipped += 1
        elif outcome == REJECTED:
            self.rejected += 1
        else:
            self.unchanged += 1
        self.foreign += result.foreign
        if (outcome in (PRUNED, PLANNED, TAGGED, REJECTED) or result.foreign) and len(
            self.objects
        ) < MAX_REPORTED_OBJECTS:
            self.objects.append(result)

    def summary(self) -> dict[str, Any]:
        return {
            "bucket": self.scope.bucket,
            "prefix": self.scope.prefix,
            "range": {"startAt": self.scope.start_at, "endBefore": self.scope.end_before},
            "clock": format_timestamp(self.clock),
            "mode": self.mode,
            "passes": list(self.passes),
            "retag": self.retag,
            "reconciledFrom": self.reconciled_from,
            "listedPrefixes": list(self.listed_prefixes) if self.listed_prefixes is not None else None,
            "since": format_timestamp(self.since) if self.since else None,
            "dryRun": self.dry_run,
            "resumed": self.resumed,
            "complete": self.complete,
            "stopped": self.stopped,
            "listed": self.listed,
            "candidates": self.candidates,
            "pruned": self.pruned,
            "tagged": self.tagged,
            "deleted": self.deleted,
            "tagsAdded": self.tags_added,
            "tagsChanged": self.tags_changed,
            "tagsRemoved": self.tags_removed,
            "unchanged": self.unchanged,
            "skipped": self.skipped,
            "rejected": self.rejected,
            "failed": self.failed,
            "foreign": self.foreign,
            "ossRequests": self.requests,
            "rulesChecks": self.rules_checks,
            "warnings": list(self.warnings),
            "objects": [r.summary() for r in self.objects],
        }


Progress = Callable[[SweepReport], None]


def run_sweep(
    gateway: SweepGateway,
    rules: RuleSet,
    store: StateStore,
    clock: datetime | None,
    *,
    limits: SweepLimits = SweepLimits(),
    deadline: float | None = None,
    dry_run: bool = False,
    full: bool = False,
    owner: str = "",
    monotonic: Callable[[], float] = time.monotonic,
    progress: Progress | None = None,
    rules_in_force: Callable[[], RuleSet] | None = None,
    on_rules_change: str = PRUNE,
) -> SweepReport:
    """Sweep `store.scope` at `clock` (None: OSS's clock, from the `Date` of its answers) until the pass
    completes, `deadline` (a `monotonic` time) is near, or `limits.max_objects` are listed. A clock ahead
    of OSS's is refused unless this is a dry run, which reads the checkpoint but writes nothing at all.
    `rules_in_force` (rules kept in OSS) answers which rules are in force: asked before each write.
    `on_rules_change` (checkpoint.ON_RULES_CHANGE) says what a pass after a change of rules does."""
    report = SweepReport(store.scope, clock or datetime.now(timezone.utc), dry_run)
    separate_state = store.gateway is not gateway  # a state bucket
    before = gateway.requests + (store.gateway.requests if separate_state else 0)
    watch = RulesWatch(rules_in_force) if rules_in_force is not None and not dry_run else None
    notes: list[str] = []  # what the run itself reports, after what the state store does
    lease: Lease | None = None
    try:
        versioned = gateway.is_versioned()  # the first answer tells OSS's clock
        oss_now = gateway.oss_now() or datetime.now(timezone.utc)
        report.clock = clock = clock or oss_now
        if absurd(clock):
            report.stopped = f"the sweep's clock {clock.isoformat()} {absurd(clock)}: refused"
            return report
        if not dry_run and ahead_of(clock, oss_now):
            report.stopped = describe_ahead("the sweep's clock", clock, oss_now) + (
                ": refused (only a dry run may look ahead)"
            )
            return report
        if not dry_run:
            taken = _acquire(store, owner, limits.lease_seconds, oss_now)
            if isinstance(taken, Busy):
                report.stopped = f"another sweep holds this scope (run {taken.owner})"
                return report
            lease = taken
        checkpoint = store.load(oss_now, keep_aside=not dry_run)
        restarts = 0
        interrupted: str | None = None  # the fingerprint of the pass a change of rules stopped
        following = False  # working on the incremental pass that follows a completed selected pass
        while True:
            sweep = next_pass(
                checkpoint,
                rules.fingerprint,
                clock,
                force_full=full,
                on_rules_change=on_rules_change,
                interrupted=interrupted,
            )
            if sweep is None:
                report.complete = True
                if not report.passes:  # else the pass before it brought the scope up to this time
                    report.stopped = "already swept up to this time with these rules"
                return report
            resumed = sweep is checkpoint.current
            sweep, affected = _selection(sweep, rules, store, checkpoint, notes)
            if not following:  # the summary describes the pass the run was for, `passes` all of them
                report.mode, report.since, report.retag = sweep.mode, sweep.since, sweep.retag
                report.reconciled_from = sweep.previous
                report.listed_prefixes = (
                    _listed_prefixes(affected, store.scope) if affected is not None else None
                )
                report.resumed = resumed and sweep is checkpoint.current
            report.passes.append(sweep.mode)
            report.clock = sweep.clock  # a resumed pass keeps judging expiry at its own clock
            report.complete = False
            newer, checkpoint = _sweep_pass(
                gateway,
                rules,
                store,
                checkpoint,
                sweep,
                affected,
                lease,
                report,
                limits,
                deadline,
                monotonic,
                progress,
                versioned,
                watch,
            )
            if newer is None:
                if report.complete and sweep.previous is not None:
                    following = True  # the incremental pass: TTLs that ran out since the previous one
                    continue
                break
            notes.append(
                f"the rules changed during the pass ({rules.fingerprint} to {newer.fingerprint}): nothing "
                "more was written by the old ones, and a new pass started with the new ones"
            )
            interrupted, rules, restarts, following = rules.fingerprint, newer, restarts + 1, False
            if restarts > MAX_RESTARTS:
                report.stopped = (
                    f"the rules changed {restarts} times during this run; the next run starts a full pass "
                    "with the rules then in force"
                )
                break
    except LeaseLost as lost:
        report.stopped = str(lost)
        lease = None
    except TransientOssError as error:  # on the listing or the state objects: the checkpoint stands
        report.stopped = f"{error.why()} ({error}); the next run resumes from the last checkpoint"
    except PermanentOssError as error:  # a missing bucket, a refused listing: retrying cannot help
        report.stopped = f"OSS refused the sweep ({error})"
    except OutOfTime as late:
        report.stopped = f"stopped before the function timeout ({late}); the next run resumes"
    finally:
        if lease is not None:
            # else the lease expires by itself
            with contextlib.suppress(TransientOssError, PermanentOssError, OutOfTime):
                store.release(lease)
        report.rules_checks = watch.checks if watch is not None else 0
        report.requests = (
            gateway.requests
            - before
            + (store.gateway.requests if store.gateway is not gateway else 0)
            + report.rules_checks
        )
        report.warnings = [*store.warnings, *notes, *report.warnings]
    return report


def _acquire(store: StateStore, owner: str, lease_seconds: float, oss_now: datetime) -> Lease | Busy:
    """The scope's lease; a state bucket that does not exist is named as such (the first call on it)."""
    try:
        return store.acquire(owner, lease_seconds, oss_now)
    except PermanentOssError as error:
        if error.code != "NoSuchBucket":
            raise
        name = store.gateway.bucket.bucket_name
        raise PermanentOssError(
            f"the state bucket {name!r}",
            status=error.status,
            code=error.code,
            request_id=error.request_id,
            message="it does not exist; `autotag deploy` creates the buckets template.yml declares "
            "(AUTOTAG_SWEEP_STATE_BUCKET names it)",
        ) from None


def _selection(
    sweep: SweepPass, rules: RuleSet, store: StateStore, checkpoint: Checkpoint, notes: list[str]
) -> tuple[SweepPass, Affected | None]:
    """A selected pass and what the change from its previous rules can reach; without previous rules to
    believe, a full pass instead (said in `notes`). Any other pass as it is."""
    if sweep.previous is None:
        return sweep, None
    previous = kept_rules(store, sweep.previous)
    if isinstance(previous, str):
        notes.append(
            f"{previous}: every object is reconciled with rules {rules.fingerprint} (a full pass) instead "
            "of only those the change can reach"
        )
        return widened(sweep, checkpoint), None
    return sweep, affected_objects(diff_rules(previous, rules))


def _listed_prefixes(affected: Affected, scope: Scope) -> tuple[str, ...]:
    return selected_prefixes(affected.prefixes, scope.prefix)


def _listing(
    gateway: SweepGateway,
    scope: Scope,
    start: Position,
    versioned: bool,
    page_size: int,
    prefixes: tuple[str, ...] | None = None,
) -> Iterator[ListedObject]:
    """The scope's objects from `start` on (only those under `prefixes`, when given). The next page is
    fetched while this one is being worked on, so an incremental sweep (mostly listing) is not held up by
    the round trips of its few candidates."""
    starts = [(scope.prefix, start)] if prefixes is None else listing_starts(prefixes, start)
    for prefix, first in starts:

        def fetch(key_marker: str, version_marker: str, prefix: str = prefix) -> ListingPage:
            if versioned:
                return gateway.list_versions_page(prefix, key_marker, version_marker, page_size)
            return gateway.list_page(prefix, key_marker, page_size)

        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="listing") as fetcher:
            upcoming = fetcher.submit(fetch, first.key, first.version_id)
            while True:
                page = upcoming.result()
                if page.truncated:
                    upcoming = fetcher.submit(fetch, page.next_key_marker, page.next_version_marker)
                for listed in page.objects:
                    if scope.end_before is not None and listed.key >= scope.end_before:
                        return
                    yield listed
                if not page.truncated:
                    break


def _sweep_pass(
    gateway: SweepGateway,
    rules: RuleSet,
    store: StateStore,
    checkpoint: Checkpoint,
    sweep: SweepPass,
    affected: Affected | None,
    lease: Lease | None,
    report: SweepReport,
    limits: SweepLimits,
    deadline: float | None,
    monotonic: Callable[[], float],
    progress: Progress | None,
    versioned: bool,
    watch: RulesWatch | None,
) -> tuple[RuleSet | None, Checkpoint]:
    """Work on `sweep` until it completes or the run must stop. Returns the rules in force when they turn
    out to have changed (nothing more is written by `rules` then, and the caller starts a new pass), else
    None; and the checkpoint as it stands (saved, unless this is a dry run)."""
    scope = store.scope
    last_saved = monotonic()
    batch_size = limits.workers * 4
    position = sweep.position
    totals = PassTotals()

    def save(state: Checkpoint) -> None:
        nonlocal last_saved
        if lease is not None:
            store.save(state, lease)
        last_saved = monotonic()

    def windows() -> Iterator[tuple[list[ListedObject], list[ListedObject]]]:
        """(listed, candidates) batches: enough candidates to keep every worker busy, at most a page of
        listing, and never past maxObjects, so a checkpoint always falls on a window's end."""
        window: list[ListedObject] = []
        candidates: list[ListedObject] = []
        room = limits.max_objects if limits.max_objects is not None else -1
        prefixes = _listed_prefixes(affected, scope) if affected is not None else None
        for listed in _listing(gateway, scope, position, versioned, limits.page_size, prefixes):
            if not scope.contains(listed.key) or listed.key.startswith(store.state_prefix):
                continue
            window.append(listed)
            if affected is not None:  # a selected pass: only what the change can reach, by key and size
                chosen = affected.may_reach(listed.key, listed.size)
            elif sweep.retag:
                chosen = True
            else:
                chosen = is_candidate(rules, listed, sweep.since, sweep.clock)
            if chosen:
                candidates.append(listed)
            room -= 1
            if len(candidates) == batch_size or len(window) == limits.page_size or room == 0:
                yield window, candidates
                window, candidates = [], []
        if window:
            yield window, candidates

    with ThreadPoolExecutor(max_workers=limits.workers, thread_name_prefix="sweep") as pool:
        for mine, candidates in windows():
            if deadline is not None and monotonic() >= deadline:
                report.stopped = "stopped before the function timeout; the next run resumes"
                break
            if limits.max_objects is not None and report.listed >= limits.max_objects:
                report.stopped = f"listed maxObjects ({limits.max_objects}); the next run resumes"
                break
            write = not report.dry_run
            if sweep.retag:  # a selected pass: objects whose metadata no changed rule matches cost a HEAD
                reaches = affected.reaches if affected is not None else None
                futures = [
                    pool.submit(
                        retag_object,
                        o,
                        rules,
                        gateway,
                        sweep.clock,
                        write=write,
                        watch=watch,
                        reaches=reaches,
                    )
                    for o in candidates
                ]
            else:
                futures = [
                    pool.submit(reconcile_object, o, rules, gateway, sweep.clock, write=write, watch=watch)
                    for o in candidates
                ]
            failures = []
            results = []
            late = False
            for future in futures:
                if future.cancelled():
                    continue
                try:
                    results.append(future.result())
                except OutOfTime as waited:  # the rate limit: the window is redone by the next run
                    late = True
                    report.stopped = f"stopped before the function timeout ({waited}); the next run resumes"
                    for waiting in futures:
                        waiting.cancel()
                except TransientOssError as error:
                    failures.append(error)
                    for waiting in futures:  # OSS is failing after retries: stop adding load to it
                        waiting.cancel()
            for result in results:
                report.record(result)
            window_totals = PassTotals(
                listed=len(mine),
                candidates=len(candidates),
                updated=sum(r.outcome in (PRUNED, TAGGED) and not r.deleted_all for r in results),
                deleted=sum(r.deleted_all for r in results),
                tags_removed=sum(
                    len(r.plan.removed) for r in results if r.outcome in (PRUNED, TAGGED) and r.plan
                ),
            )
            report.listed += len(mine)
            report.candidates += len(candidates)
            if failures:
                # The window is not done: the checkpoint stays before it, and the next run redoes it
                # (reconciling is idempotent, so objects already pruned come out unchanged).
                report.failed += len(failures)
                report.stopped = f"{failures[0].why()} ({failures[0]}); the next run resumes here"
                break
            if late:
                break
            if watch is not None and any(r.outcome == RULES_CHANGED for r in results):
                return watch.latest, checkpoint  # the window is not done: the new pass judges it
            totals = totals.plus(window_totals)
            position = Position(mine[-1].key, mine[-1].version_id or "")
            if progress is not None:
                progress(report)
            if not report.dry_run and monotonic() - last_saved >= limits.checkpoint_seconds:
                save(
                    Checkpoint(
                        scope,
                        checkpoint.completed_clock,
                        checkpoint.completed_fingerprint,
                        advanced(sweep, position, totals),
                        checkpoint.rules_kept,
                    )
                )
                sweep, totals = advanced(sweep, position, totals), PassTotals()
        else:
            report.complete = True
    if report.dry_run:
        return None, completed(checkpoint, sweep) if report.complete else checkpoint
    if report.complete:
        done = completed(checkpoint, sweep)
        kept = checkpoint.rules_kept
        if kept != rules.fingerprint:  # the first pass with these rules: keep them for the next change
            why = keep_rules(store, rules)
            if why:
                report.warnings.append(f"{why}; after the next change of rules every object is reconciled")
            else:
                done = replace(done, rules_kept=rules.fingerprint)
        save(done)
        if kept is not None and done.rules_kept != kept:
            forget_rules(store, kept)
        return None, done
    counted = replace(totals, runs=1)
    state = Checkpoint(
        scope,
        checkpoint.completed_clock,
        checkpoint.completed_fingerprint,
        advanced(sweep, position, counted),
        checkpoint.rules_kept,
    )
    save(state)
    return None, state
