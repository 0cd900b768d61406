"""Scheduled tag expiry, end to end: objects are tagged by the upload handler (or carry tags set over HTTP),
then the expiry handler, loaded from its CodeUri with an FC-shaped context, sweeps the local OSS at chosen
trigger times. Results are read back through oss2."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import oss2
import pytest
from conftest import BucketFactory, readable, sealed_header, tags_of

from autotag.rules import load_rules
from autotag.sweep.checkpoint import Scope
from autotag.sweep.gateway import SweepGateway
from autotag.sweep.reconcile import SKIPPED, reconcile_object
from autotag.sweep.request import SweepRequestError
from autotag.sweep.runner import SweepLimits, run_sweep
from autotag.sweep.state import Lease, StateStore
from autotag_cli.local_inventory import inventory_configuration
from localcloud.fc import fc_context, load_handler
from localcloud.oss import FaultRule, LocalOSS
from localcloud.oss.errors import OssError

CODE_URI = Path(__file__).parents[2] / "functions"
DAY = timedelta(days=1)


def days_later(oss: LocalOSS, days: float) -> datetime:
    """Move the local OSS's clock `days` after the real time (what was uploaded so far is that much older)
    and return its now: the trigger time of a sweep run then."""
    oss.clock.offset = timedelta(days=days)
    return oss.clock.now()


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class Uploads:
    """Delivers the bucket's created-object events to the upload handler, as the OSS trigger would."""

    def __init__(self, oss: LocalOSS, bucket: oss2.Bucket) -> None:
        self.oss = oss
        self.handler = load_handler(CODE_URI, "tag_on_upload.handler")
        self.payloads: list[bytes] = []
        self._lock = threading.Lock()
        oss.subscribe(bucket.bucket_name, ["oss:ObjectCreated:*"], self._collect)

    def _collect(self, payload: bytes) -> None:
        with self._lock:
            self.payloads.append(payload)

    def run(self) -> None:
        assert self.oss.notifier.drain(600)
        with self._lock:
            taken, self.payloads = self.payloads, []
        for payload in taken:
            self.handler(payload, fc_context())


class Sweeper:
    """Invokes the expiry handler with timer events, as the timer trigger (or a console replay) would."""

    def __init__(self, bucket: oss2.Bucket) -> None:
        self.bucket = bucket
        self.handler = load_handler(CODE_URI, "tag_expiry.handler")

    def event(self, at: datetime, **payload: Any) -> bytes:
        body = {"buckets": [self.bucket.bucket_name], **payload}
        return json.dumps(
            {"triggerTime": stamp(at), "triggerName": "expiry", "payload": json.dumps(body)}
        ).encode()

    def invoke(self, event: bytes, timeout: int = 60) -> dict[str, Any]:
        context = fc_context(function="tag-expiry", handler="tag_expiry.handler", timeout=timeout)
        return json.loads(self.handler(event, context))  # type: ignore[no-any-return]

    def run(self, at: datetime, **payload: Any) -> dict[str, Any]:
        (report,) = self.invoke(self.event(at, **payload))["sweeps"]
        return report  # type: ignore[no-any-return]


@pytest.fixture
def env(oss: LocalOSS, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOTAG_OSS_ENDPOINT", oss.endpoint)
    monkeypatch.delenv("AUTOTAG_RULES", raising=False)


@pytest.fixture
def uploads(env: None, oss: LocalOSS, bucket: oss2.Bucket) -> Uploads:
    return Uploads(oss, bucket)


@pytest.fixture
def sweeper(env: None, bucket: oss2.Bucket) -> Sweeper:
    return Sweeper(bucket)


def use_rules(monkeypatch: pytest.MonkeyPatch, path: Path, rules: list[dict[str, Any]], **extra: Any) -> None:
    path.write_text(json.dumps({"version": 1, "rules": rules, **extra}))
    monkeypatch.setenv("AUTOTAG_RULES", str(path))


TTL_RULES = [
    {"name": "kind", "tags": {"kind": {"from": "extension"}}},
    {"name": "short", "when": {"prefix": "a/"}, "tags": {"stage": "fresh"}, "ttl": "1d"},
    {"name": "long", "when": {"prefix": "b/"}, "tags": {"stage": "new"}, "ttl": "3d"},
]


def test_expired_tags_go_and_every_other_tag_stays(
    uploads: Uploads, sweeper: Sweeper, bucket: oss2.Bucket, oss: LocalOSS
) -> None:
    bucket.put_object("tmp/run.log", b"x", headers={"x-oss-tagging": "team=ops&lifecycle=mine"})
    bucket.put_object("tmp/scratch.csv", b"x")
    uploads.run()
    assert tags_of(bucket, "tmp/scratch.csv")["lifecycle"] == "temporary"

    early = sweeper.run(days_later(oss, 1))
    assert (early["mode"], early["complete"], early["tagsRemoved"]) == ("full", True, 0)

    oss.conditions.reset_counters()
    late = sweeper.run(days_later(oss, 8))
    assert (late["mode"], late["complete"], late["pruned"], late["tagsRemoved"]) == (
        "incremental",
        True,
        1,
        1,
    )
    assert readable(tags_of(bucket, "tmp/scratch.csv")) == {
        "kind": "data",
        "size": "small",
        "autotag": "kind size",
    }
    # The uploader's own `lifecycle` (kept over the rule's value) is not the system's: untouched.
    assert readable(tags_of(bucket, "tmp/run.log")) == {
        "team": "ops",
        "lifecycle": "mine",
        "kind": "log",
        "size": "small",
        "autotag": "kind size",
    }
    assert oss.conditions.requests["PutObjectTagging"] == 1
    (pruned,) = late["objects"]
    assert pruned["removed"] == [
        {"key": "lifecycle", "value": "temporary", "reason": "its TTL (7d from Last-Modified) has passed"}
    ]


def test_removing_a_rule_removes_its_tags_on_the_next_sweep(
    oss: LocalOSS,
    uploads: Uploads,
    sweeper: Sweeper,
    bucket: oss2.Bucket,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    both = [
        {"name": "kind", "tags": {"kind": {"from": "extension"}}},
        {"name": "project", "key_regex": "^p/(?P<p>[a-z]+)/", "tags": {"project": "{p}"}},
    ]
    use_rules(monkeypatch, tmp_path / "v1.json", both)
    bucket.put_object("p/apollo/x.txt", b"x", headers={"x-oss-tagging": "project=mine-too"})
    bucket.put_object("p/gemini/y.txt", b"x", headers={"x-oss-tagging": "owner=ann"})
    uploads.run()
    assert sweeper.run(days_later(oss, 0))["complete"]
    assert tags_of(bucket, "p/gemini/y.txt")["project"] == "gemini"

    use_rules(monkeypatch, tmp_path / "v2.json", both[:1])
    oss.clock.advance(timedelta(minutes=5))
    report = sweeper.run(oss.clock.now())
    # The rules changed: every object the removed rule could match is reconciled (the default,
    # AUTOTAG_RECONCILE_ON_RULES_CHANGE=selected), and only those are listed.
    assert (report["mode"], report["listedPrefixes"]) == ("selected", ["p/"]), report
    assert readable(tags_of(bucket, "p/gemini/y.txt")) == {"owner": "ann", "kind": "txt", "autotag": "kind"}
    assert readable(tags_of(bucket, "p/apollo/x.txt")) == {
        "project": "mine-too",
        "kind": "txt",
        "autotag": "kind",
    }
    assert {r["reason"] for o in report["objects"] for r in o["removed"]} == {
        "no current rule derives it for this object"
    }


KIND = {"name": "kind", "tags": {"kind": {"from": "extension"}}}
TEAM = {"name": "team", "tags": {"team": "blue"}}


def not_swept(monkeypatch: pytest.MonkeyPatch, bucket: oss2.Bucket) -> oss2.Bucket:
    """`bucket`, taken out of AUTOTAG_BUCKETS: one the functions read (rules, inventories) but never tag,
    so no uploader of theirs writes it."""
    listed = os.environ["AUTOTAG_BUCKETS"].split(",")
    monkeypatch.setenv("AUTOTAG_BUCKETS", ",".join(b for b in listed if b != bucket.bucket_name))
    return bucket


def rules_in_oss(
    monkeypatch: pytest.MonkeyPatch, new_bucket: BucketFactory, rules: list[dict[str, Any]]
) -> Callable[[list[dict[str, Any]]], None]:
    """Rules kept in OSS, in a bucket of their own (not one the functions tag: AUTOTAG_BUCKETS), revalidated
    by the upload function at every event (AUTOTAG_RULES_MAX_AGE 0); what it returns pushes a new
    version."""
    holder = not_swept(monkeypatch, new_bucket())
    monkeypatch.setenv("AUTOTAG_RULES", f"oss://{holder.bucket_name}/rules.json")
    monkeypatch.setenv("AUTOTAG_RULES_MAX_AGE", "0")

    def push(version: list[dict[str, Any]]) -> None:
        holder.put_object("rules.json", json.dumps({"version": 1, "rules": version}).encode())

    push(rules)
    return push


def test_a_rules_push_during_a_pass_never_strips_a_tag_the_new_rules_derive(
    oss: LocalOSS,
    uploads: Uploads,
    sweeper: Sweeper,
    bucket: oss2.Bucket,
    new_bucket: BucketFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The sweep has read its rules (no `team` rule); then the rules gain `team: blue`, and an upload is
    tagged with it before the sweep reads that object's tags. The sweep must not judge the object by the
    rules it started with: it finds the rules changed before it writes, and starts a full pass with the
    new ones."""
    push = rules_in_oss(monkeypatch, new_bucket, [KIND])
    bucket.put_object("a.jpg", b"x")
    uploads.run()
    pushed: list[str] = []  # the listing's prefix, then b.jpg's team as the upload function set it

    def push_and_upload_while_the_sweep_lists(request: Any) -> None:
        if request.api == "ListObjects" and request.bucket == bucket.bucket_name and not pushed:
            if request.query.get("prefix", "").startswith(".autotag/"):
                return  # the sweep's leases, before it reads any object
            pushed.append(request.query.get("prefix", ""))
            push([KIND, TEAM])
            bucket.put_object("b.jpg", b"x")
            uploads.run()  # the upload function revalidates: b.jpg gets team=blue under the new rules
            pushed.append(readable(tags_of(bucket, "b.jpg")).get("team", ""))

    oss.conditions.hooks.append(push_and_upload_while_the_sweep_lists)
    try:
        report = sweeper.run(days_later(oss, 0))
    finally:
        oss.conditions.hooks.remove(push_and_upload_while_the_sweep_lists)
    assert pushed == ["", "blue"], pushed
    assert readable(tags_of(bucket, "b.jpg")) == {"kind": "jpg", "team": "blue", "autotag": "kind team"}
    assert report["complete"] and report["mode"] == "full" and report["tagsRemoved"] == 0, report
    assert any("the rules changed" in w for w in report["warnings"]), report["warnings"]


def test_a_sweep_removes_nothing_while_it_cannot_read_the_rules_in_force(
    oss: LocalOSS,
    uploads: Uploads,
    sweeper: Sweeper,
    bucket: oss2.Bucket,
    new_bucket: BucketFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rules_in_oss(monkeypatch, new_bucket, [KIND, {**TEAM, "ttl": "1d"}])
    bucket.put_object("a.jpg", b"x")
    uploads.run()
    assert sweeper.run(days_later(oss, 0))["complete"]
    rules_bucket = os.environ["AUTOTAG_RULES"].split("/")[2]

    def rules_unreadable(request: Any) -> None:
        if request.api == "GetObject" and request.bucket == rules_bucket:
            raise OssError(503, "ServiceUnavailable", "Please try again.")

    oss.conditions.hooks.append(rules_unreadable)
    try:
        stopped = sweeper.run(days_later(oss, 2))
    finally:
        oss.conditions.hooks.remove(rules_unreadable)
    assert not stopped["complete"] and "the rules in force could not be read" in stopped["stopped"], stopped
    assert readable(tags_of(bucket, "a.jpg"))["team"] == "blue"  # nothing removed unconfirmed
    resumed = sweeper.run(days_later(oss, 2))
    assert resumed["complete"] and resumed["resumed"] and resumed["tagsRemoved"] == 1, resumed
    assert resumed["rulesChecks"] == 1 and readable(tags_of(bucket, "a.jpg")) == {
        "kind": "jpg",
        "autotag": "kind",
    }


def test_protected_keys_are_never_removed(
    oss: LocalOSS,
    uploads: Uploads,
    sweeper: Sweeper,
    bucket: oss2.Bucket,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rules = [{"name": "cc", "tags": {"cost-center": "42", "stage": "new"}, "ttl": "1d"}]
    use_rules(monkeypatch, tmp_path / "rules.json", rules, protected_keys=["cost-center"])
    bucket.put_object("x", b"x")
    uploads.run()
    sweeper.run(days_later(oss, 2))
    assert readable(tags_of(bucket, "x")) == {"cost-center": "42", "autotag": "cost-center"}


def test_nothing_left_means_delete_object_tagging(
    uploads: Uploads,
    sweeper: Sweeper,
    bucket: oss2.Bucket,
    oss: LocalOSS,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    use_rules(monkeypatch, tmp_path / "rules.json", [{"name": "t", "tags": {"stage": "new"}, "ttl": "1h"}])
    bucket.put_object("only-ours", b"x")
    uploads.run()
    assert readable(tags_of(bucket, "only-ours")) == {"stage": "new", "autotag": "stage"}
    oss.conditions.reset_counters()
    report = sweeper.run(days_later(oss, 2))
    assert (report["pruned"], report["deleted"]) == (1, 1)
    assert readable(tags_of(bucket, "only-ours")) == {}
    assert oss.conditions.requests["DeleteObjectTagging"] == 1
    assert "PutObjectTagging" not in oss.conditions.requests


def test_versioned_bucket_prunes_each_version(
    env: None, oss: LocalOSS, new_bucket: BucketFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_rules(monkeypatch, tmp_path / "rules.json", TTL_RULES)
    bucket = new_bucket(versioning="Enabled")
    uploads, sweeper = Uploads(oss, bucket), Sweeper(bucket)
    first = bucket.put_object("a/doc.txt", b"v1").versionid
    second = bucket.put_object("a/doc.txt", b"v2", headers={"x-oss-tagging": "draft=yes"}).versionid
    uploads.run()
    assert tags_of(bucket, "a/doc.txt", versionId=first)["stage"] == "fresh"
    report = sweeper.run(days_later(oss, 2))
    assert (report["listed"], report["pruned"]) == (2, 2)
    assert {o["versionId"] for o in report["objects"]} == {first, second}
    assert readable(tags_of(bucket, "a/doc.txt", versionId=first)) == {"kind": "txt", "autotag": "kind"}
    assert readable(tags_of(bucket, "a/doc.txt", versionId=second)) == {
        "draft": "yes",
        "kind": "txt",
        "autotag": "kind",
    }


def test_dry_run_shows_what_would_expire_then_and_writes_nothing(
    uploads: Uploads, sweeper: Sweeper, bucket: oss2.Bucket, oss: LocalOSS
) -> None:
    bucket.put_object("tmp/a.txt", b"x")
    bucket.put_object("docs/b.txt", b"x")
    uploads.run()
    before = tags_of(bucket, "tmp/a.txt")
    oss.conditions.reset_counters()
    report = sweeper.run(datetime.now(timezone.utc) + 8 * DAY, dryRun=True)
    assert (report["dryRun"], report["mode"], report["pruned"], report["tagsRemoved"]) == (True, "full", 0, 1)
    (planned,) = report["objects"]
    assert (planned["key"], planned["outcome"]) == ("tmp/a.txt", "planned")
    assert readable(planned["remaining"]) == {"kind": "text", "size": "small", "autotag": "kind size"}
    assert tags_of(bucket, "tmp/a.txt") == before
    written = {"PutObjectTagging", "DeleteObjectTagging", "PutObject", "DeleteObject"}
    assert written.isdisjoint(oss.conditions.requests)  # not even a checkpoint or a lease


def test_incremental_sweeps_read_only_objects_whose_ttl_ran_out(
    uploads: Uploads,
    sweeper: Sweeper,
    bucket: oss2.Bucket,
    oss: LocalOSS,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    use_rules(monkeypatch, tmp_path / "rules.json", TTL_RULES)
    for i in range(4):
        bucket.put_object(f"a/{i}.txt", b"x")
        bucket.put_object(f"b/{i}.txt", b"x")
        bucket.put_object(f"c/{i}.txt", b"x")
    uploads.run()
    first = sweeper.run(days_later(oss, 2))  # first pass is full: reads all 12, prunes a/
    assert (first["mode"], first["candidates"], first["pruned"]) == ("full", 12, 4)

    oss.conditions.reset_counters()
    second = sweeper.run(days_later(oss, 4))  # only b/ objects' 3-day TTL ends in (2d, 4d]
    assert (second["mode"], second["listed"], second["candidates"], second["pruned"]) == (
        "incremental",
        12,
        4,
        4,
    )
    assert oss.conditions.requests["GetObjectTagging"] == 4

    oss.conditions.reset_counters()
    third = sweeper.run(days_later(oss, 5))
    assert (third["candidates"], third["pruned"]) == (0, 0)
    assert "GetObjectTagging" not in oss.conditions.requests
    assert all(
        readable(tags_of(bucket, f"{p}/{i}.txt")) == {"kind": "txt", "autotag": "kind"}
        for p in "abc"
        for i in range(4)
    )


def test_a_sweep_never_judges_a_new_upload_by_the_listed_version(
    uploads: Uploads, bucket: oss2.Bucket, oss: LocalOSS, env: None
) -> None:
    """The race with the upload path on an unversioned bucket: the object is replaced after the sweep
    listed it. The sweep confirms the listed object is still there before writing, so the new object's
    tags (the uploader's and those the upload handler just set) survive."""
    bucket.put_object("tmp/race.txt", b"old")
    uploads.run()
    gateway = SweepGateway(bucket)
    (listed,) = gateway.list_page("tmp/", "").objects
    bucket.put_object("tmp/race.txt", b"new", headers={"x-oss-tagging": "from=uploader"})
    uploads.run()
    fresh = tags_of(bucket, "tmp/race.txt")
    rules = load_rules(CODE_URI / "autotag/rules/default.json")
    result = reconcile_object(listed, rules, gateway, datetime.now(timezone.utc) + 30 * DAY)
    assert result.outcome == SKIPPED
    assert tags_of(bucket, "tmp/race.txt") == fresh
    assert fresh["lifecycle"] == "temporary" and fresh["from"] == "uploader"


def many_objects(bucket: oss2.Bucket, count: int) -> None:
    """`count` objects already tagged by the system, with a 1-day TTL tag each."""
    tagging = sealed_header({"stage": "new", "kind": "txt"}, "kind", "stage")
    for i in range(count):
        bucket.put_object(f"a/{i:04d}.txt", b"x", headers={"x-oss-tagging": tagging})


def test_a_run_stopped_early_checkpoints_and_the_next_resumes(
    env: None,
    sweeper: Sweeper,
    bucket: oss2.Bucket,
    oss: LocalOSS,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    use_rules(monkeypatch, tmp_path / "rules.json", TTL_RULES)
    many_objects(bucket, 150)
    at = days_later(oss, 2)
    reports = []
    while not reports or not reports[-1]["complete"]:
        reports.append(sweeper.run(at + timedelta(minutes=len(reports)), maxObjects=40, workers=2))
        assert len(reports) <= 6
    assert [r["resumed"] for r in reports] == [False, True, True, True]
    assert {r["clock"] for r in reports} == {stamp(at).replace("Z", ".000Z")}  # one pass, one clock
    assert sum(r["listed"] for r in reports) == 150  # each object listed once: no double processing
    assert sum(r["pruned"] for r in reports) == 150
    assert readable(tags_of(bucket, "a/0149.txt")) == {"kind": "txt", "autotag": "kind"}


def test_the_deadline_stops_a_run_cleanly(
    env: None, bucket: oss2.Bucket, oss: LocalOSS, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    many_objects(bucket, 100)
    rules = load_rules(_write(tmp_path / "rules.json", TTL_RULES))
    gateway = SweepGateway(bucket)
    store = StateStore(gateway, ".autotag/", Scope(bucket.bucket_name))
    ticks = iter(range(10_000))
    at = days_later(oss, 2)
    limits = SweepLimits(workers=2)  # chunks of 8 objects; the clock passes the deadline after a few
    stopped = run_sweep(gateway, rules, store, at, limits=limits, deadline=6, monotonic=lambda: next(ticks))
    assert not stopped.complete and "before the function timeout" in stopped.stopped
    assert 0 < stopped.pruned < 100
    finished = run_sweep(gateway, rules, store, at, limits=limits)
    assert finished.complete and finished.resumed
    assert stopped.listed + finished.listed == 100 and stopped.pruned + finished.pruned == 100


def _write(path: Path, rules: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps({"version": 1, "rules": rules}))
    return path


def test_overlapping_runs_never_process_the_same_scope(
    env: None,
    sweeper: Sweeper,
    bucket: oss2.Bucket,
    oss: LocalOSS,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    use_rules(monkeypatch, tmp_path / "rules.json", TTL_RULES)
    many_objects(bucket, 60)
    oss.conditions.latency_seconds = 0.005
    at = days_later(oss, 2)
    results: list[dict[str, Any]] = []
    threads = [threading.Thread(target=lambda: results.append(sweeper.run(at, workers=2))) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    busy = [r for r in results if "another sweep holds this scope" in r["stopped"]]
    worked = [r for r in results if r["listed"]]
    assert len(worked) >= 1 and len(busy) + len(worked) == 3
    assert sum(r["pruned"] for r in results) == 60  # every object pruned exactly once
    oss.conditions.latency_seconds = 0
    assert sweeper.run(at)["stopped"] == "already swept up to this time with these rules"


def test_a_crashed_runs_lease_blocks_until_it_expires(
    env: None,
    oss: LocalOSS,
    sweeper: Sweeper,
    bucket: oss2.Bucket,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    use_rules(monkeypatch, tmp_path / "rules.json", TTL_RULES)
    many_objects(bucket, 3)
    at = days_later(oss, 2)
    store = StateStore(SweepGateway(bucket), ".autotag/", Scope(bucket.bucket_name))
    crashed = store.acquire("crashed-run", lease_seconds=120, oss_now=at)  # never released
    assert isinstance(crashed, Lease)
    assert "crashed-run" in sweeper.run(at)["stopped"]
    # FC ended the crashed run at its timeout: by OSS's clock its lease is dead after the timeout (60 s
    # here) and the margin (60 s), counted from the lease object's Last-Modified.
    oss.clock.advance(timedelta(seconds=121))
    assert sweeper.run(at)["complete"]


def test_faults_mid_sweep_lose_nothing_and_the_next_run_resumes(
    env: None,
    sweeper: Sweeper,
    bucket: oss2.Bucket,
    oss: LocalOSS,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    use_rules(monkeypatch, tmp_path / "rules.json", TTL_RULES)
    many_objects(bucket, 40)
    at = days_later(oss, 2)
    oss.conditions.set_faults([FaultRule("error", 1.0, frozenset({"PutObjectTagging"}))])
    broken = sweeper.run(at, workers=8)
    assert not broken["complete"] and broken["failed"] > 0 and "OSS kept failing" in broken["stopped"]
    assert tags_of(bucket, "a/0039.txt")["stage"] == "new"  # nothing lost, nothing half-written

    oss.conditions.set_faults(
        [FaultRule("throttle", 0.2), FaultRule("reset", 0.05, frozenset({"GetObjectTagging"}))], seed=7
    )
    runs = [sweeper.run(at, workers=2)]
    while not runs[-1]["complete"] and len(runs) < 6:  # a run that still meets a fault stops and resumes
        runs.append(sweeper.run(at, workers=2))
    oss.conditions.set_faults([])
    assert runs[-1]["complete"], [r["stopped"] for r in runs]
    assert any(r["resumed"] for r in runs)  # the pass the broken run started, not a new one
    assert all(
        readable(tags_of(bucket, f"a/{i:04d}.txt")) == {"kind": "txt", "autotag": "kind"} for i in range(40)
    )


def test_shards_fan_out_and_cover_every_key_once(
    oss: LocalOSS,
    env: None,
    sweeper: Sweeper,
    bucket: oss2.Bucket,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AUTOTAG_FANOUT", "in-process")
    use_rules(monkeypatch, tmp_path / "rules.json", [{"name": "t", "tags": {"stage": "new"}, "ttl": "1d"}])
    keys = [f"{top}/{i}" for top in ("a", "b", "c", "d", "e", "f") for i in range(5)] + ["root-1", "zz"]
    for key in keys:
        bucket.put_object(
            key, b"x", headers={"x-oss-tagging": sealed_header({"stage": "new", "keep": "me"}, "stage")}
        )
    at = days_later(oss, 2)
    result = sweeper.invoke(sweeper.event(at, shards=3))
    (dispatch,) = result["dispatched"]
    reports = [invocation["sweeps"][0] for invocation in dispatch["invocations"]]
    assert len(dispatch["shards"]) == 3
    assert sum(r["listed"] for r in reports) == len(keys)
    assert all(readable(tags_of(bucket, key)) == {"keep": "me"} for key in keys)
    again = sweeper.invoke(sweeper.event(days_later(oss, 3), shards=3))["dispatched"][0]
    assert again["shards"] == dispatch["shards"]  # the stored plan keeps each shard's checkpoint valid


def test_a_shard_plan_the_system_did_not_seal_is_made_again(
    oss: LocalOSS,
    env: None,
    sweeper: Sweeper,
    bucket: oss2.Bucket,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A stored plan steers which keys the shards sweep: one with a gap (written by anyone who may write the
    state) would leave the keys in it unswept for good. It is reported, and a plan of the system's own made
    and stored in its place."""
    monkeypatch.setenv("AUTOTAG_FANOUT", "in-process")
    use_rules(monkeypatch, tmp_path / "rules.json", [{"name": "t", "tags": {"stage": "new"}, "ttl": "1d"}])
    keys = [f"{top}/{i}" for top in ("a", "b", "c", "d") for i in range(3)]
    for key in keys:
        bucket.put_object(key, b"x", headers={"x-oss-tagging": sealed_header({"stage": "new"}, "stage")})
    plan_key = f".autotag/sweep/{Scope(bucket.bucket_name).id}/shards.json"
    gap = {"count": 2, "ranges": [["", "b/"], ["d/", None]]}  # b/ and c/ fall in no shard
    bucket.put_object(plan_key, json.dumps(gap).encode())
    (dispatch,) = sweeper.invoke(sweeper.event(days_later(oss, 2), shards=2))["dispatched"]
    assert [s["startAt"] for s in dispatch["shards"]] == ["", "c/"], dispatch["shards"]
    assert all(readable(tags_of(bucket, key)) == {} for key in keys)
    (warning,) = dispatch["warnings"]
    assert "shards.json: not believed" in warning and "not sealed by this system" in warning, warning
    assert json.loads(bucket.get_object(plan_key).read())["ranges"] == [["", "c/"], ["c/", None]]


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (b"not json", "the event is not JSON"),
        (b'{"triggerName": "t", "payload": "{}"}', "event: 'triggerTime' is a required property"),
        (
            b'{"triggerTime": "yesterday", "triggerName": "t", "payload": "{}"}',
            "event.triggerTime: 'yesterday'",
        ),
        (
            b'{"triggerTime": "2026-01-01T00:00:00Z", "triggerName": "t", "payload": "{oops"}',
            "payload is not JSON",
        ),
        (
            b'{"triggerTime": "2026-01-01T00:00:00Z", "triggerName": "t", "payload": "{}"}',
            "payload: 'buckets'",
        ),
        (
            b'{"triggerTime": "2026-01-01T00:00:00Z", "triggerName": "t",'
            b' "payload": "{\\"buckets\\": [\\"B!\\"]}"}',
            "payload.buckets[0]: 'B!' does not match",
        ),
        (
            b'{"triggerTime": "2026-01-01T00:00:00Z", "triggerName": "t",'
            b' "payload": "{\\"buckets\\": [\\"bb1\\"], \\"workers\\": 0}"}',
            "payload.workers: 0 is less than the minimum of 1",
        ),
    ],
)
def test_bad_timer_events_name_the_field(sweeper: Sweeper, event: bytes, message: str) -> None:
    with pytest.raises(SweepRequestError) as raised:
        sweeper.invoke(event)
    assert message in str(raised.value)


def configure_inventory(bucket: oss2.Bucket, destination: oss2.Bucket) -> None:
    """`bucket`'s inventory `daily`, written into `destination` under inventory/."""
    fields = ("Size", "LastModifiedDate")
    bucket.put_bucket_inventory_configuration(
        inventory_configuration(destination.bucket_name, "daily", fields=fields)
    )


def run_inventory(oss: LocalOSS, bucket: oss2.Bucket, rows_per_file: int) -> str:
    """Run `bucket`'s inventory `daily` now: the key of its manifest.json."""
    run = oss.run_inventory(bucket.bucket_name, "daily", rows_per_file=rows_per_file)
    assert run.manifest_key is not None
    return run.manifest_key


def seed(bucket: oss2.Bucket, keys: list[str]) -> None:
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda key: bucket.put_object(key, b"x"), keys))


@pytest.fixture
def one_folder(env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Shards run on local threads; one rule, so that a first pass reads each object's tags once."""
    monkeypatch.setenv("AUTOTAG_FANOUT", "in-process")
    use_rules(monkeypatch, tmp_path / "rules.json", [{"name": "t", "tags": {"stage": "new"}, "ttl": "1d"}])


def test_an_inventory_balances_the_shards_of_keys_that_share_one_folder(
    oss: LocalOSS,
    one_folder: None,
    sweeper: Sweeper,
    bucket: oss2.Bucket,
    new_bucket: BucketFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """400 keys under all/: the listing's one top-level entry makes one shard of everything; the inventory's
    4 data files (its newest run's, found from the inventory's folder) make 4 shards of about 100 each,
    planned with one ranged GetObject per data file, once."""
    keys = [f"all/k{i:04d}" for i in range(400)]
    seed(bucket, keys[:100])
    destination = not_swept(monkeypatch, new_bucket())
    configure_inventory(bucket, destination)
    older = run_inventory(oss, bucket, rows_per_file=25)  # 100 keys: it would cut at k0025, k0050, ...
    seed(bucket, keys[100:])
    at = days_later(oss, 1)
    newest = run_inventory(oss, bucket, rows_per_file=100)
    assert older.rsplit("/", 2)[0] == newest.rsplit("/", 2)[0] and older < newest
    folder = f"oss://{destination.bucket_name}/{newest.rsplit('/', 2)[0]}/"

    (listed,) = sweeper.invoke(sweeper.event(at, shards=4))["dispatched"]
    assert [s["startAt"] for s in listed["shards"]] == [""]  # one top-level entry: one shard
    assert [i["sweeps"][0]["listed"] for i in listed["invocations"]] == [400]

    data_files = json.loads(destination.get_object(newest).read())["files"]
    assert len(data_files) == 4
    reads: list[tuple[str, str, str]] = []
    oss.conditions.hooks.append(
        lambda request: (
            reads.append((request.api, request.key, request.header("range")))
            if request.bucket == destination.bucket_name
            else None
        )
    )
    (planned,) = sweeper.invoke(sweeper.event(at, shards=4, inventory=folder))["dispatched"]
    counts = [i["sweeps"][0]["listed"] for i in planned["invocations"]]
    assert len(planned["shards"]) == 4 and sum(counts) == 400, planned["shards"]
    assert all(60 <= count <= 140 for count in counts), counts  # within 40% of 100
    plan_key = f".autotag/sweep/{Scope(bucket.bucket_name).id}/shards.json"
    stored = json.loads(bucket.get_object(plan_key).read())
    assert stored["inventory"] == folder
    assert stored["ranges"] == [[s["startAt"], s["endBefore"]] for s in planned["shards"]]
    assert sorted(reads) == sorted(
        [
            ("ListObjects", "", ""),
            ("GetObject", newest, ""),
            ("GetObject", newest.removesuffix(".json") + ".checksum", ""),
            *[("GetObject", f["key"], "bytes=0-65535") for f in data_files],
        ]
    )

    reads.clear()
    (again,) = sweeper.invoke(sweeper.event(days_later(oss, 2), shards=4, inventory=folder))["dispatched"]
    assert again["shards"] == planned["shards"] and reads == []  # the stored plan: no inventory read


def test_an_inventory_that_cannot_be_used_is_one_line_naming_it_and_nothing_is_swept(
    oss: LocalOSS,
    one_folder: None,
    sweeper: Sweeper,
    bucket: oss2.Bucket,
    new_bucket: BucketFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seed(bucket, [f"all/k{i:04d}" for i in range(40)])
    destination = not_swept(monkeypatch, new_bucket())
    configure_inventory(bucket, destination)
    manifest = run_inventory(oss, bucket, rows_per_file=10)
    other = new_bucket()
    seed(other, ["x"])
    configure_inventory(other, destination)
    others = run_inventory(oss, other, rows_per_file=10)
    data_file = json.loads(destination.get_object(manifest).read())["files"][1]["key"]
    inv = f"oss://{destination.bucket_name}"
    folder = manifest.rsplit("/", 2)[0]

    def refuse_data_files(request: Any) -> None:
        if request.bucket == destination.bucket_name and request.key == data_file:
            raise OssError(403, "AccessDenied", "You have no right to access this object.")

    cases = [
        (f"{inv}/{others}", f"{inv}/{others} is an inventory of bucket {other.bucket_name!r}, not "
                            f"{bucket.bucket_name!r}"),
        (f"{inv}/{folder}/2020-01-01T00-00Z/manifest.json",
         f"{inv}/{folder}/2020-01-01T00-00Z/manifest.json does not exist"),
        (f"{inv}/{folder}/data/", f"{inv}/{folder}/data/ holds no inventory run (no YYYY-MM-DDTHH-MMZ/"),
        ("oss://no-such-inventory/x/", "cannot list oss://no-such-inventory/x/: ListObjects 'x/' /: 404 "),
        (f"{inv}/{manifest}", f"cannot read {inv}/{data_file}, listed in {inv}/{manifest}: GetObject "
                              f"{data_file!r}: 403 AccessDenied"),
    ]  # fmt: skip
    at = days_later(oss, 0)
    for location, message in cases:
        if location == cases[-1][0]:
            oss.conditions.hooks.append(refuse_data_files)
        result = sweeper.invoke(sweeper.event(at, shards=4, inventory=location))
        (dispatch,) = result["dispatched"]
        assert dispatch["error"].startswith(message), (location, dispatch["error"])
        assert "\n" not in dispatch["error"] and "Traceback" not in dispatch["error"]
        assert "shards" not in dispatch and result["sweeps"] == []
    oss.conditions.hooks.clear()
    destination.delete_object(data_file)
    (gone,) = sweeper.invoke(sweeper.event(at, shards=4, inventory=f"{inv}/{folder}/"))["dispatched"]
    assert gone["error"] == f"{inv}/{data_file}, listed in {inv}/{manifest}, does not exist"
    with pytest.raises(oss2.exceptions.NoSuchKey):  # no plan was stored
        bucket.get_object(f".autotag/sweep/{Scope(bucket.bucket_name).id}/shards.json")
