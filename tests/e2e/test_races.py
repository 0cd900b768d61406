"""Races between uploaders and both functions, replayed exactly and counted.

Every key gets a seeded script. The uploader uploads it (with or without `x-oss-tagging`), then overwrites
it with new tags, or adds a tag with PutObjectTagging (read, add, write, as an uploader's tool does), or
both; and later adds one more tag while the expiry sweep prunes the key. Each of those actions lands at a
seeded point of a function's work on that key: just before its 1st, 2nd or 3rd request to OSS (the local
OSS runs a hook before serving each request), or after it. Upload events are handled in a seeded order, the
first one stale (after the overwrite and its own event) when the script says so. Every interleaving is thus
replayed exactly, run after run: the counts are a property of the code, not of the machine's timing.

OSS has no conditional PutObjectTagging: a write replaces the tag set as its writer last read it. An
uploader's request landing between a function's last read and its write is lost, on any bucket, and
nothing can tell afterwards. What the functions guarantee, and this test asserts, is that nothing else is
lost: they confirm the object (the event's eTag, the ownership record's object digest, the listing's ETag)
as late as possible, never write onto an object they did not read, never spend a write on a replaced
object, and read nothing between their last tag read and their write. On a versioned bucket every read and
write names the version, so an overwrite is never lost.

`AUTOTAG_RACE_KEYS` (default 1000) and `AUTOTAG_RACE_SEED` size and vary the run; the long run's figures
are in docs/reliability.md."""

from __future__ import annotations

import json
import os
import random
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import oss2
import pytest
from conftest import REGION, make_auth

from localcloud.fc import fc_context, load_handler
from localcloud.oss import LocalOSS

CODE_URI = Path(__file__).parents[2] / "functions"
KEYS = int(os.environ.get("AUTOTAG_RACE_KEYS", "1000"))
SEED = int(os.environ.get("AUTOTAG_RACE_SEED", "20261122"))
RULES = {
    "version": 1,
    "rules": [
        {"name": "kind", "tags": {"kind": {"from": "extension", "default": "other"}}},
        {"name": "owner", "tags": {"owner": {"from": "meta", "name": "owner", "default": "nobody"}}},
        {"name": "fresh", "tags": {"fresh": "yes"}, "ttl": "1h"},
    ],
}
SCRIPTS = ("overwrite", "retag", "overwrite+retag")
POINTS = 4  # before the function's 1st, 2nd or 3rd request on the key, or after its 3rd
WRITES = frozenset({"PutObjectTagging", "DeleteObjectTagging"})


@dataclass
class Action:
    """One thing the uploader does after the first upload, and where it lands."""

    name: str  # overwrite, retag, late-retag
    stage: str  # whose work it lands in: e1, e2 (the upload events) or sweep
    before: int  # before that work's n-th request to OSS on the key (past the last: after the work)
    run: Callable[[], None] = lambda: None
    landed: str = "after"  # the API of the function request it landed just before
    version: str = ""  # in a sweep of a versioned bucket: the version whose requests it counts


@dataclass
class Plan:
    index: int
    key: str
    script: str
    first: dict[str, str]
    stale_e1: bool
    actions: list[Action]
    expected: dict[str, dict[str, str]] = field(default_factory=dict)  # version ("" unversioned) -> tags
    set_by: dict[str, str] = field(default_factory=dict)  # tag key -> the action that set it


def plans(count: int, seed: int) -> list[Plan]:
    made = []
    for index in range(count):
        rng = random.Random(seed * 1_000_003 + index)
        script = rng.choice(SCRIPTS)
        names = script.split("+")
        actions = [
            Action(name, "e1" if number == 0 else rng.choice(["e1", "e2"]), rng.randrange(POINTS))
            for number, name in enumerate(names)
        ]
        actions.append(Action("late-retag", "sweep", rng.randrange(POINTS)))
        made.append(
            Plan(
                index,
                f"race/{index:05d}.{rng.choice(['jpg', 'csv', 'log'])}",
                script,
                {"up": f"a{index}"} if rng.random() < 0.5 else {},
                script.startswith("overwrite") and rng.random() < 0.5,
                actions,
            )
        )
    return made


class Uploader:
    """The uploader's side, signing with long-term credentials (the functions sign with STS)."""

    def __init__(self, oss: LocalOSS, name: str, versioned: bool) -> None:
        self.bucket = oss2.Bucket(make_auth("v1"), oss.endpoint, name, region=REGION)
        self.versioned = versioned
        self.version: dict[str, str] = {}  # key -> the version the uploader wrote last

    def _slot(self, plan: Plan) -> str:
        return self.version.get(plan.key, "") if self.versioned else ""

    def upload(self, plan: Plan, body: bytes, tags: dict[str, str], by: str) -> None:  # one thread per key
        headers = {"x-oss-tagging": "&".join(f"{k}={v}" for k, v in tags.items())} if tags else {}
        self.version[plan.key] = self.bucket.put_object(plan.key, body, headers=headers).versionid or ""
        if not self.versioned:
            plan.expected.clear()
        plan.expected[self._slot(plan)] = dict(tags)
        plan.set_by.update(dict.fromkeys(tags, by))

    def add_tag(self, plan: Plan, key: str, value: str, by: str) -> None:
        params = {"versionId": self.version[plan.key]} if self.versioned else None
        tags = dict(self.bucket.get_object_tagging(plan.key, params=params).tag_set.tagging_rule)
        tags[key] = value
        rule = oss2.models.TaggingRule()
        rule.tagging_rule.update(tags)
        self.bucket.put_object_tagging(plan.key, oss2.models.Tagging(rule), params=params)
        plan.expected.setdefault(self._slot(plan), {})[key] = value
        plan.set_by[key] = by


class Injector:
    """Called by the local OSS before it serves each request: runs the uploader action armed for the
    function request that is about to be served. Actions whose request never came run after the work."""

    def __init__(self) -> None:
        self._armed: dict[str, list[Action]] = {}
        self._seen: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()
        self.stages: dict[str, str] = {}  # key -> whose work on it is under way
        self.sweeping = False

    def arm(self, key: str, action: Action) -> None:
        with self._lock:
            self._armed.setdefault(key, []).append(action)

    def leftovers(self, key: str, stage: str) -> list[Action]:
        with self._lock:
            armed = self._armed.get(key, [])
            self._armed[key] = [a for a in armed if a.stage != stage]
        return sorted((a for a in armed if a.stage == stage), key=lambda a: a.before)

    def __call__(self, request: Any) -> None:
        if "x-oss-security-token" not in request.headers or not request.key:
            return  # only the functions sign with STS
        version = request.query.get("versionId", "") if self.sweeping else ""
        with self._lock:
            stage = "sweep" if self.sweeping else self.stages.get(request.key, "")
            ordinal = self._seen[(request.key, stage + version)]
            self._seen[(request.key, stage + version)] += 1
            armed = self._armed.get(request.key, [])
            due = [a for a in armed if a.stage == stage and a.before == ordinal and a.version == version]
            self._armed[request.key] = [a for a in armed if a not in due]
        for action in due:
            action.landed = request.api
            action.run()


@dataclass
class RaceReport:
    versioned: bool
    keys: int
    actions: Counter[str]  # uploader actions, by name
    lost: Counter[str]  # of those, the ones whose tags were lost
    outside_window: list[str]  # losses of actions that did not land right before a function's write
    stale_skipped: int

    def line(self) -> str:
        lost = sum(self.lost.values())
        total = sum(self.actions.values())
        by = ", ".join(f"{name} {self.lost[name]}/{self.actions[name]}" for name in sorted(self.actions))
        kind = "versioned" if self.versioned else "unversioned"
        return (
            f"{kind}: {self.keys} keys, {lost} of {total} uploader actions lost ({lost / total:.1%}: {by}); "
            f"{len(self.outside_window)} outside the last-read-to-write gap; "
            f"{self.stale_skipped} stale events skipped"
        )


@pytest.fixture
def functions(oss: LocalOSS, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Any]]:
    rules = tmp_path / "race-rules.json"
    rules.write_text(json.dumps(RULES))
    monkeypatch.setenv("AUTOTAG_OSS_ENDPOINT", oss.endpoint)
    monkeypatch.setenv("AUTOTAG_RULES", str(rules))
    yield load_handler(CODE_URI, "tag_on_upload.handler"), load_handler(CODE_URI, "tag_expiry.handler")


def race(oss: LocalOSS, bucket: oss2.Bucket, functions: tuple[Any, Any], *, versioned: bool) -> RaceReport:
    upload_handler, expiry_handler = functions
    if versioned:
        config = oss2.models.BucketVersioningConfig()
        config.status = "Enabled"
        bucket.put_bucket_versioning(config)
    events: dict[str, list[bytes]] = {}
    arrived = threading.Condition()

    def collect(payload: bytes) -> None:
        key = json.loads(payload)["events"][0]["oss"]["object"]["key"]
        with arrived:
            events.setdefault(key, []).append(payload)
            arrived.notify_all()

    oss.subscribe(bucket.bucket_name, ["oss:ObjectCreated:*"], collect)
    injector = Injector()
    oss.conditions.hooks.append(injector)
    uploader = Uploader(oss, bucket.bucket_name, versioned)
    stale: Counter[str] = Counter()

    def handle(stage: str, plan: Plan) -> None:
        size = 1 if stage == "e1" else 2  # the first upload is 1 byte, the overwrite 2: events tell apart

        def delivered() -> list[bytes]:
            return [
                e
                for e in events.get(plan.key, [])
                if json.loads(e)["events"][0]["oss"]["object"]["size"] == size
            ]

        with arrived:
            assert arrived.wait_for(delivered, timeout=300)
            (payload,) = delivered()
        injector.stages[plan.key] = stage
        (result,) = json.loads(upload_handler(payload, fc_context()))["results"]
        stale[plan.key] += "replaced since its event" in result["reason"]
        for late in injector.leftovers(plan.key, stage):
            late.run()

    def play(plan: Plan) -> None:
        uploader.upload(plan, b"1", plan.first, "upload")
        for action in plan.actions:
            if action.name == "overwrite":
                new = {"up": f"b{plan.index}", "team": "x"}
                action.run = lambda plan=plan, new=new: uploader.upload(plan, b"22", new, "overwrite")
            elif action.name == "retag":
                action.run = lambda plan=plan: uploader.add_tag(plan, "mine", f"c{plan.index}", "retag")
            else:
                action.run = lambda plan=plan: uploader.add_tag(plan, "last", f"d{plan.index}", "late-retag")
        order = ["e1", "e2"] if plan.script.startswith("overwrite") else ["e1"]
        for action in plan.actions:
            if action.name == "overwrite" and plan.stale_e1:
                action.run()  # overwritten before any event is handled: e1 is stale from the start
                action.landed = "before any event"
                order = ["e2", "e1"]
            else:
                injector.arm(plan.key, action)
        for stage in order:
            handle(stage, plan)

    everything = plans(KEYS, SEED)
    with ThreadPoolExecutor(4) as players:  # keys are independent: each one's script runs in order
        list(players.map(play, everything))

    # An hour later the `fresh` TTL has run out: one sweep prunes every key while its uploader adds a tag
    # (on a versioned bucket, to the version it wrote last: the sweep's requests on that version count).
    for plan in everything:
        for action in plan.actions:
            if action.stage == "sweep" and versioned:
                action.version = uploader.version[plan.key]
    oss.clock.advance(timedelta(hours=1, minutes=1))
    injector.sweeping = True
    moment = oss.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")
    payload = json.dumps({"buckets": [bucket.bucket_name], "workers": 8})
    event = json.dumps({"triggerTime": moment, "triggerName": "race", "payload": payload}).encode()
    context = fc_context(function="tag-expiry", handler="tag_expiry.handler", timeout=600)
    (report,) = json.loads(expiry_handler(event, context))["sweeps"]
    assert report["complete"], report["stopped"]
    for plan in everything:
        for late in injector.leftovers(plan.key, "sweep"):
            late.run()

    actions: Counter[str] = Counter()
    lost: Counter[str] = Counter()
    outside: list[str] = []
    for plan in everything:
        lost_keys = set()
        for version, wanted in plan.expected.items():
            params = {"versionId": version} if version else None
            tags = dict(uploader.bucket.get_object_tagging(plan.key, params=params).tag_set.tagging_rule)
            lost_keys |= {k for k, v in wanted.items() if tags.get(k) != v}
        culprits = {plan.set_by[k] for k in lost_keys}
        for action in plan.actions:
            actions[action.name] += 1
            if action.name in culprits:
                lost[action.name] += 1
                if action.landed not in WRITES:
                    outside.append(
                        f"{plan.key}: {action.name} landed before {action.landed} of {action.stage}"
                    )
        if "upload" in culprits:
            outside.append(f"{plan.key}: the first upload's own tags")
    return RaceReport(versioned, KEYS, actions, lost, outside, sum(stale.values()))


@pytest.mark.timeout(900)
@pytest.mark.parametrize("versioned", [False, True], ids=["unversioned", "versioned"])
def test_replayed_races_lose_only_what_lands_between_a_last_read_and_its_write(
    oss: LocalOSS, bucket: oss2.Bucket, functions: tuple[Any, Any], versioned: bool
) -> None:
    report = race(oss, bucket, functions, versioned=versioned)
    print(report.line())
    assert report.outside_window == []
    if versioned:
        assert report.lost["overwrite"] == 0  # a function never writes onto a version it did not read
    else:
        assert report.stale_skipped > 0  # stale events were met, and spent no write
