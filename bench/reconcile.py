"""Reconcile after a rules change against the naive full pass, OSS requests counted at the local OSS.

Two buckets hold the same `--objects` objects, 100 folders `pNN/` of equal size, every 100th object a
`.log` file, the objects of `p42/` with an `owner` metadata (ann, bob or none, in turn), all tagged as the
first rules derive (the tags the upload path would have written, set with the upload). Then the rules change
step by step, each step a row:
1. one rule under one prefix (`team` under `p07/`, 1% of the objects): key-only rules;
2. a regex rule with no literal prefix (`retention` on keys ending `.log`, 1%);
3. a rule with a metadata condition added (`steward` under `p42/`, needs the objects' metadata from here);
4. that metadata condition changed (`owner` ann to bob; 1% of the keys match its key pattern);
5. one rule under one prefix again (`team` back), now with rules that need metadata: a HEAD per candidate.
On the first bucket each step runs `autotag reconcile OLD NEW --bucket B` (the laptop path: it lists only
the prefixes the changed rules can match, filters keys on the client, and runs the candidates through the
backfill's engine); on the second, `autotag backfill --bucket B --rules NEW` over the whole bucket (the
naive full pass). Both are the real CLI in a subprocess against one local OSS (`autotag local oss`, every
request delayed `--latency-ms`), and requests are what that OSS counted during the command. After each
step, `autotag plan` over the whole reconciled bucket under the new rules must find nothing to change
(checked with no latency; its requests are not counted)."""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import oss2
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from autotag.facts import ObjectFacts
from autotag.oss_tags import encode_tagging_header
from autotag.planning import plan_tags
from autotag.rules import RuleSet, derive_tags, parse_rules
from autotag.settings import Settings

ACCESS_KEY_ID, ACCESS_KEY_SECRET = "bench-key", "bench-secret"
AUTOTAG = str(Path(sys.executable).with_name("autotag"))
KIND = {"name": "kind", "tags": {"kind": {"from": "extension", "map": {"csv": "data", "log": "log"}}}}
TEAM = {"name": "team", "when": {"prefix": "p07/"}, "tags": {"team": "alpha"}}
RETENTION = {"name": "retention", "key_regex": "\\.log$", "tags": {"retention": "30d"}}
STEWARD = {
    "name": "steward",
    "key_regex": "^p42/",
    "when": {"meta": {"owner": "ann"}},
    "tags": {"steward": "yes"},
}


def _rules(*specs: dict[str, Any]) -> dict[str, Any]:
    return {"version": 1, "rules": list(specs)}


def _with(spec: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**spec, **changes}


FIRST = _rules(KIND, TEAM, RETENTION)
STEPS: list[tuple[str, dict[str, Any]]] = [
    ("one rule under one prefix, 1% affected", _rules(KIND, _with(TEAM, tags={"team": "beta"}), RETENTION)),
    (
        "a regex rule with no literal prefix, 1% affected",
        _rules(KIND, _with(TEAM, tags={"team": "beta"}), _with(RETENTION, tags={"retention": "90d"})),
    ),
    (
        "a metadata rule added under one prefix",
        _rules(
            KIND, _with(TEAM, tags={"team": "beta"}), _with(RETENTION, tags={"retention": "90d"}), STEWARD
        ),
    ),
    (
        "a metadata condition changed, 1% of keys match its key pattern",
        _rules(
            KIND,
            _with(TEAM, tags={"team": "beta"}),
            _with(RETENTION, tags={"retention": "90d"}),
            _with(STEWARD, when={"meta": {"owner": "bob"}}),
        ),
    ),
    (
        "one rule under one prefix, 1% affected, rules that need metadata",
        _rules(
            KIND,
            TEAM,
            _with(RETENTION, tags={"retention": "90d"}),
            _with(STEWARD, when={"meta": {"owner": "bob"}}),
        ),
    ),
]


@dataclass
class Measured:
    step: str
    objects: int
    reconcile: dict[str, int]
    reconcile_seconds: float
    naive: dict[str, int]
    naive_seconds: float
    selected: str

    def row(self) -> list[str]:
        mine, full = sum(self.reconcile.values()), sum(self.naive.values())
        return [
            self.step,
            self.selected,
            f"{mine:,} ({_apis(self.reconcile)})",
            f"{mine / self.objects:.4f}",
            f"{self.reconcile_seconds:.1f}",
            f"{full:,} ({_apis(self.naive)})",
            f"{full / self.objects:.4f}",
            f"{full / mine:,.1f}×" if mine else "—",
        ]


COLUMNS = (
    "change",
    "listed / candidates",
    "reconcile: OSS requests",
    "per bucket object",
    "seconds",
    "full pass: OSS requests",
    "per bucket object",
    "fewer",
)


def _apis(counts: dict[str, int]) -> str:
    short = {
        "ListObjects": "List",
        "HeadObject": "Head",
        "GetObjectTagging": "GetTag",
        "PutObjectTagging": "PutTag",
    }
    return ", ".join(f"{short.get(api, api)} {n:,}" for api, n in sorted(counts.items()) if n)


class LocalOss:
    def __init__(self, latency_ms: float) -> None:
        from localcloud.oss.process import spawn

        self.server, self.endpoint, token = spawn(f"{ACCESS_KEY_ID}:{ACCESS_KEY_SECRET}")
        self.headers = {"Authorization": f"Bearer {token}"}
        self.latency_ms = latency_ms

    def admin(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        request = urllib.request.Request(
            f"{self.endpoint}/_admin/{path}",
            data=json.dumps(body or {}).encode(),
            method=method,
            headers=self.headers,
        )
        with urllib.request.urlopen(request) as response:
            return json.loads(response.read())

    def latency(self, milliseconds: float) -> None:
        self.admin("PUT", "conditions", {"latency_ms": milliseconds})

    def counted(self, command: list[str]) -> tuple[dict[str, int], float, str]:
        """Run a CLI command with the latency on; the requests the OSS counted meanwhile, by API."""
        self.latency(self.latency_ms)
        self.admin("POST", "stats/reset")
        started = time.perf_counter()
        output = self.cli(command)
        seconds = time.perf_counter() - started
        stats = self.admin("GET", "stats")
        self.latency(0)
        return dict(stats["requests"]), seconds, output

    def cli(self, command: list[str]) -> str:
        environment = {
            **os.environ,
            "AUTOTAG_OSS_ENDPOINT": self.endpoint,
            "ALIBABA_CLOUD_ACCESS_KEY_ID": ACCESS_KEY_ID,
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": ACCESS_KEY_SECRET,
            "COLUMNS": "200",
        }
        done = subprocess.run(
            [AUTOTAG, *command], capture_output=True, text=True, env=environment, timeout=7200
        )
        if done.returncode != 0:
            raise RuntimeError(f"autotag {' '.join(command)} exited {done.returncode}: {done.stderr[-2000:]}")
        return done.stdout

    def stop(self) -> None:
        self.server.terminate()
        self.server.wait()


def keys_and_owners(objects: int) -> list[tuple[str, str | None]]:
    per_folder = max(1, objects // 100)
    found: list[tuple[str, str | None]] = []
    for i in range(objects):
        folder, index = divmod(i, per_folder)
        extension = "log" if i % 100 == 50 else "csv"
        owner = ("ann", "bob", None)[index % 3] if folder == 42 else None
        found.append((f"p{folder:02d}/{index:06d}.{extension}", owner))
    return found


def seed(bucket: oss2.Bucket, objects: list[tuple[str, str | None]], rules: RuleSet) -> None:
    """Each object uploaded with the tags the rules derive for it, as the upload path would write them."""

    def put(item: tuple[str, str | None]) -> None:
        key, owner = item
        meta = {"owner": owner} if owner else {}
        facts = ObjectFacts(key, 1, "application/octet-stream", meta)
        tags = plan_tags({}, derive_tags(rules, facts).tags, rules.ownership).desired
        headers = {"x-oss-tagging": encode_tagging_header(tags)}
        headers.update({f"x-oss-meta-{k}": v for k, v in meta.items()})
        bucket.put_object(key, b"x", headers=headers)

    with Progress(transient=True) as progress, ThreadPoolExecutor(16) as pool:
        task = progress.add_task(
            f"uploading {len(objects):,} tagged objects to {bucket.bucket_name}", total=len(objects)
        )
        for _ in pool.map(put, objects):
            progress.advance(task)


def nothing_to_change(oss: LocalOss, bucket: str, rules_file: Path, objects: int) -> None:
    output = oss.cli(
        [
            "plan",
            "--bucket",
            bucket,
            "--prefix",
            "",
            "--limit",
            str(objects),
            "--rules",
            str(rules_file),
            "--json",
        ]
    )
    planned = [json.loads(line) for line in output.splitlines() if line.strip().startswith("{")]
    changing = [p for p in planned if p.get("outcome") not in ("unchanged",)]
    if len(planned) != objects or changing:
        raise AssertionError(
            f"{bucket}: plan covers {len(planned)} objects, {len(changing)} would change: {changing[:3]}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--objects", type=int, default=100_000)
    parser.add_argument("--latency-ms", type=float, default=5.0)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--markdown", type=Path, help="also write the table here")
    args = parser.parse_args()
    console = Console(width=200)
    settings = Settings.from_environment()
    oss = LocalOss(args.latency_ms)
    try:
        auth = oss2.Auth(ACCESS_KEY_ID, ACCESS_KEY_SECRET)
        reconciled, naive = (
            oss2.Bucket(auth, oss.endpoint, name, session=oss2.Session(pool_size=20))
            for name in ("bench-reconcile", "bench-full-pass")
        )
        objects = keys_and_owners(args.objects)
        first = parse_rules(FIRST, record_secrets=settings.record_secrets)
        for bucket in (reconciled, naive):
            bucket.create_bucket()
            seed(bucket, objects, first)
        folder = Path(tempfile.mkdtemp(prefix="bench-reconcile-"))
        before = folder / "rules-0.json"
        before.write_text(json.dumps(FIRST))
        rows: list[Measured] = []
        for number, (step, document) in enumerate(STEPS, start=1):
            after = folder / f"rules-{number}.json"
            after.write_text(json.dumps(document))
            mine, mine_seconds, output = oss.counted(
                [
                    "reconcile",
                    str(before),
                    str(after),
                    "--bucket",
                    reconciled.bucket_name,
                    "--workers",
                    str(args.workers),
                    "--json",
                ]
            )
            summary = json.loads(output.strip().splitlines()[-1])
            full, full_seconds, _ = oss.counted(
                [
                    "backfill",
                    "--bucket",
                    naive.bucket_name,
                    "--rules",
                    str(after),
                    "--workers",
                    str(args.workers),
                    "--restart",
                    "--checkpoint",
                    str(folder / f"full-{number}.checkpoint.json"),
                    "--json",
                ]
            )
            selection = summary.get("selection", summary)
            selected = f"{selection.get('listed', '?'):,} / {selection.get('candidates', '?'):,}"
            rows.append(Measured(step, args.objects, mine, mine_seconds, full, full_seconds, selected))
            console.print(f"{step}: {rows[-1].row()}")
            nothing_to_change(oss, reconciled.bucket_name, after, args.objects)
            before = after
        table = Table(
            title=f"reconcile vs full pass: {args.objects:,} objects, {args.latency_ms:g} ms latency per "
            f"request, {args.workers} workers ({platform.machine()}, Python {platform.python_version()})"
        )
        for column in COLUMNS:
            table.add_column(column)
        for measured in rows:
            table.add_row(*measured.row())
        console.print(table)
        if args.markdown:
            lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
            lines += ["| " + " | ".join(m.row()) + " |" for m in rows]
            args.markdown.write_text("\n".join(lines) + "\n")
    finally:
        oss.stop()


if __name__ == "__main__":
    main()
