"""Tag-expiry sweep against a naive loop, side by side on one local OSS with injected latency.

The bucket holds `--objects` objects already tagged by the system (kind + ownership record); `--stale`
percent of them, spread through the key space, are `.tmp` files whose 7-day `lifecycle` tag has just run
out (bench rules: the shipped `kind` rule's idea plus a TTL rule on the extension). A previous
pass is recorded as completed one day after the upload, so the measured sweep is the common, incremental
run. The naive loop is what the reference docs do: ObjectIterator, then GetObjectTagging and (when stale)
PutObjectTagging per object, sequentially; it runs for `--naive-seconds` and its rate is extrapolated.
A full reconcile (what a rules change costs with AUTOTAG_RECONCILE_ON_RULES_CHANGE=prune) is measured over a
`--full-sample` prefix. With `--rules-change`, a rule tagging the first 1% of the keys (one prefix) is then
added and the pass after that change (`selected`, the default) runs over the whole bucket: its requests are
also given per object in the bucket.

With `--rules-in-oss` the rules are an OSS object (`AUTOTAG_RULES=oss://...`), and the sweep asks which rules
are in force before each write (a conditional GET, 304 when unchanged): the figures then include those
checks, shown in their own column.

The server runs in its own process (`autotag local oss`); every request waits `--latency-ms` first."""

from __future__ import annotations

import argparse
import json
import platform
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import oss2
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from autotag.handlers.rules_source import fetch_from
from autotag.oss_tags import encode_tagging_header
from autotag.ownership import Ownership, ownership_record
from autotag.rules import RuleSet, parse_rules
from autotag.rules.remote import Location, RulesCache
from autotag.settings import DEFAULT_STATE_PREFIX
from autotag.sweep.checkpoint import PRUNE, SELECTED, Checkpoint, Scope
from autotag.sweep.gateway import SweepGateway
from autotag.sweep.runner import SweepLimits, run_sweep
from autotag.sweep.state import StateStore
from localcloud.oss.process import spawn

ACCESS_KEY_ID, ACCESS_KEY_SECRET = "bench-key", "bench-secret"
STALE = {"lifecycle": "temporary", "kind": "data"}
STALE_TAGS = encode_tagging_header({**STALE, "autotag": ownership_record(STALE, STALE, Ownership())})
FRESH_TAGS = encode_tagging_header(
    {"kind": "data", "autotag": ownership_record({"kind": "data"}, ["kind"], Ownership())}
)
BENCH_RULES = {
    "version": 1,
    "rules": [
        {"name": "kind", "tags": {"kind": "data"}},
        {"name": "scratch", "when": {"extension": "tmp"}, "tags": {"lifecycle": "temporary"}, "ttl": "7d"},
    ],
}


@dataclass
class Measured:
    name: str
    listed: int
    removed: int
    requests: int
    seconds: float
    rules_checks: int = 0

    def row(self) -> list[str]:
        return [
            self.name,
            f"{self.listed:,}",
            f"{self.seconds:.1f}",
            f"{self.listed / self.seconds:,.0f}",
            f"{self.removed / self.seconds:,.1f}",
            f"{self.requests:,}",
            f"{self.requests / self.listed:.4f}" if self.listed else "—",
            f"{self.rules_checks:,}",
        ]


ADMIN_HEADERS: dict[str, str] = {}  # the spawned server's admin token, set once it is ready


def admin(endpoint: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    request = urllib.request.Request(
        f"{endpoint}/_admin/{path}",
        data=json.dumps(body or {}).encode(),
        method=method,
        headers=ADMIN_HEADERS,
    )
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read())


def seed(bucket: oss2.Bucket, objects: int, stale_percent: float, threads: int) -> list[str]:
    stale_every = round(100 / stale_percent) if stale_percent else 0
    keys = [
        f"data/{i:07d}.tmp" if stale_every and i % stale_every == 0 else f"data/{i:07d}.csv"
        for i in range(objects)
    ]

    def put(key: str) -> None:
        bucket.put_object(
            key, b"x", headers={"x-oss-tagging": STALE_TAGS if key.endswith(".tmp") else FRESH_TAGS}
        )

    with Progress(transient=True) as progress, ThreadPoolExecutor(threads) as pool:
        task = progress.add_task(f"uploading {objects:,} tagged objects", total=objects)
        for _ in pool.map(put, keys):
            progress.advance(task)
    return keys


def naive_loop(bucket: oss2.Bucket, budget: float, endpoint: str) -> Measured:
    """The reference docs' way: list, then read and rewrite tags one object at a time."""
    admin(endpoint, "POST", "stats/reset")
    started = time.perf_counter()
    listed = removed = 0
    for info in oss2.ObjectIterator(bucket):
        if info.key.startswith(DEFAULT_STATE_PREFIX):
            continue
        listed += 1
        rule = bucket.get_object_tagging(info.key).tag_set
        if "lifecycle" in rule.tagging_rule:
            del rule.tagging_rule["lifecycle"]
            bucket.put_object_tagging(info.key, oss2.models.Tagging(rule))
            removed += 1
        if time.perf_counter() - started > budget:
            break
    seconds = time.perf_counter() - started
    return Measured(
        "naive loop (sequential)", listed, removed, admin(endpoint, "GET", "stats")["total"], seconds
    )


def product_sweep(
    bucket: oss2.Bucket,
    endpoint: str,
    rules: RuleSet,
    scope: Scope,
    clock: datetime,
    workers: int,
    full: bool,
    rules_in_force: Callable[[], RuleSet] | None,
    on_rules_change: str = PRUNE,
) -> Measured:
    gateway = SweepGateway(bucket)
    admin(endpoint, "POST", "stats/reset")
    started = time.perf_counter()
    report = run_sweep(
        gateway,
        rules,
        StateStore(gateway, DEFAULT_STATE_PREFIX, scope),
        clock,
        limits=SweepLimits(workers=workers),
        full=full,
        rules_in_force=rules_in_force,
        on_rules_change=on_rules_change,
    )
    seconds = time.perf_counter() - started
    assert report.complete, report.stopped
    what = "full reconcile" if full else report.mode
    if report.mode == "selected":
        what = f"selected pass after a change ({report.tagged:,} tagged, {report.tags_added:,} tags added)"
    name = f"sweep, {what} ({workers} workers)"
    total = admin(endpoint, "GET", "stats")["total"]
    return Measured(name, report.listed, report.tags_removed, total, seconds, report.rules_checks)


def rules_kept_in_oss(auth: oss2.AuthBase, endpoint: str) -> Callable[[], RuleSet]:
    """BENCH_RULES as an OSS object, and what the timer function asks before each write."""
    holder = oss2.Bucket(auth, endpoint, "bench-rules")
    holder.create_bucket()
    location = Location("bench-rules", "rules.json")
    holder.put_object(location.key, json.dumps(BENCH_RULES).encode())
    rules_cache = RulesCache(location)
    fetch = fetch_from(holder, location)
    return lambda: rules_cache.confirm(fetch)


def changed_rules(objects: int) -> RuleSet:
    """BENCH_RULES and a rule tagging the keys under one prefix: the first 1% of the seeded keys."""
    digits = len(str(max(objects // 100, 1) - 1))  # the key digits that vary within the first 1%
    prefix = "data/" + "0" * (7 - digits)
    hot = {"name": "hot", "when": {"prefix": prefix}, "tags": {"tier": "hot"}}
    return parse_rules({**BENCH_RULES, "rules": [*BENCH_RULES["rules"], hot]})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--objects", type=int, default=100_000)
    parser.add_argument("--stale", type=float, default=1.0, help="percent of objects newly stale")
    parser.add_argument("--latency-ms", type=float, default=5.0)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--naive-seconds", type=float, default=60.0)
    parser.add_argument("--full-sample", type=int, default=10_000, help="objects in the full-reconcile run")
    parser.add_argument("--markdown", type=Path, help="also write the table here")
    parser.add_argument(
        "--rules-in-oss", action="store_true", help="rules kept in OSS, confirmed before each write"
    )
    parser.add_argument(
        "--rules-change", action="store_true", help="then a rule for 1%% of the keys added: the selected pass"
    )
    args = parser.parse_args()
    console = Console(width=170)
    server, endpoint, admin_token = spawn(f"{ACCESS_KEY_ID}:{ACCESS_KEY_SECRET}")
    ADMIN_HEADERS["Authorization"] = f"Bearer {admin_token}"
    try:
        auth = oss2.Auth(ACCESS_KEY_ID, ACCESS_KEY_SECRET)
        bucket = oss2.Bucket(auth, endpoint, "bench-sweep", session=oss2.Session(pool_size=args.workers + 4))
        bucket.create_bucket()
        seeding = time.perf_counter()
        seed(bucket, args.objects, args.stale, threads=16)
        uploaded = datetime.now(timezone.utc)
        console.print(f"seeded {args.objects:,} objects in {time.perf_counter() - seeding:.0f} s")
        # The previous pass completed a day after the uploads: the common run is incremental from there.
        rules = parse_rules(BENCH_RULES)
        whole = Scope(bucket.bucket_name)
        previous = Checkpoint(whole, uploaded + timedelta(days=1), rules.fingerprint)
        store = StateStore(SweepGateway(bucket), DEFAULT_STATE_PREFIX, whole)
        bucket.put_object(store.checkpoint_key, store.sealed_checkpoint(previous))
        admin(endpoint, "PUT", "conditions", {"latency_ms": args.latency_ms})
        # 8 days later, on the local OSS's clock too (a sweep's clock is never ahead of OSS's): the .tmp
        # files' 7-day TTL has run out, nothing else has.
        admin(endpoint, "PUT", "clock", {"offset": "8d"})
        clock = uploaded + timedelta(days=8)

        naive = naive_loop(bucket, args.naive_seconds, endpoint)
        in_force = rules_kept_in_oss(auth, endpoint) if args.rules_in_oss else None
        sweep = product_sweep(bucket, endpoint, rules, whole, clock, args.workers, False, in_force)
        sample = Scope(bucket.bucket_name, "data/", end_before=f"data/{args.full_sample:07d}")
        full = product_sweep(bucket, endpoint, rules, sample, clock, args.workers, True, in_force)
        runs = [naive, sweep, full]
        if args.rules_change:
            changed = changed_rules(args.objects)
            in_force = (lambda: changed) if args.rules_in_oss else None
            runs.append(
                product_sweep(
                    bucket, endpoint, changed, whole, clock, args.workers, False, in_force, SELECTED
                )
            )
            per_object = runs[-1].requests / args.objects
            console.print(f"selected pass: {per_object:.4f} OSS requests per object in the bucket")

        table = Table(
            title=f"tag-expiry sweep vs naive loop: {args.objects:,} objects, {args.stale}% newly stale, "
            f"{args.latency_ms:g} ms latency per request, rules "
            f"{'in OSS' if args.rules_in_oss else 'in the package'} "
            f"({platform.machine()}, {platform.python_version()})"
        )
        for column in (
            "run",
            "objects listed",
            "seconds",
            "objects listed/s",
            "tags removed/s",
            "OSS requests",
            "requests per listed object",
            "rules checks",
        ):
            table.add_column(column)
        for measured in runs:
            table.add_row(*measured.row())
        console.print(table)
        speedup = (sweep.listed / sweep.seconds) / (naive.listed / naive.seconds)
        console.print(f"incremental sweep lists {speedup:,.0f}x faster than the naive loop")
        if args.markdown:
            header = "| " + " | ".join(c.header for c in table.columns) + " |"  # type: ignore[misc]
            lines = [header, "|" + "---|" * len(table.columns)]
            lines += ["| " + " | ".join(m.row()) + " |" for m in runs]
            args.markdown.write_text("\n".join(lines) + f"\n\nSpeed-up (objects listed/s): {speedup:,.0f}x\n")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
