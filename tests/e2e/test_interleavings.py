"""Duplicate and reordered deliveries: OSS promises neither exactly-once nor ordered events. Whatever
order and however often the events of one object's life (an upload with uploader tags, two appends, a
CopyObject onto itself with new metadata) reach the function, the final tags are the same."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import datetime, timezone
from pathlib import Path

import oss2
import pytest
from conftest import make_auth, readable, sealed_header
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from localcloud.fc import DeadLetterStore, LocalFC, fc_context, load_handler, load_template
from localcloud.oss import LocalOSS

CODE_URI = Path(__file__).parents[2] / "functions"
INTERLEAVINGS = 60


def test_every_interleaving_of_duplicates_and_reorders_ends_the_same(
    local_oss: LocalOSS, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTOTAG_OSS_ENDPOINT", local_oss.endpoint)
    handler = load_handler(CODE_URI, "tag_on_upload.handler")
    bucket = oss2.Bucket(make_auth("sts-v1"), local_oss.endpoint, f"t-{uuid.uuid4().hex[:16]}")
    bucket.create_bucket()
    monkeypatch.setenv("AUTOTAG_BUCKETS", bucket.bucket_name)
    payloads: list[bytes] = []
    local_oss.subscribe(bucket.bucket_name, ["oss:ObjectCreated:*"], payloads.append)
    key = "projects/x/run.log"
    bucket.append_object(key, 0, b"a", headers={"x-oss-tagging": "team=ops", "x-oss-meta-owner": "ann"})
    bucket.append_object(key, 1, b"b")
    bucket.copy_object(
        bucket.bucket_name,
        key,
        key,
        headers={"x-oss-metadata-directive": "REPLACE", "x-oss-meta-owner": "bo"},
    )
    assert local_oss.notifier.drain(600)
    events = sorted(payloads, key=lambda p: json.loads(p)["events"][0]["eventTime"])
    assert len(events) == 3
    uploader = {"team": "ops"}

    def deliver(order: list[int]) -> dict[str, str]:
        rule = oss2.models.TaggingRule()
        rule.tagging_rule.update(uploader)  # the object as the uploader left it
        bucket.put_object_tagging(key, oss2.models.Tagging(rule))
        for index in order:
            handler(events[index], fc_context())
        return dict(bucket.get_object_tagging(key).tag_set.tagging_rule)

    expected = deliver([0, 1, 2])
    assert readable(expected) == {
        "team": "ops",
        "kind": "log",
        "project": "x",
        "owner": "bo",
        "size": "small",
        "autotag": "kind owner project size",
    }
    tried: list[list[int]] = []

    @settings(max_examples=INTERLEAVINGS, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(st.sampled_from([0, 1, 2]), min_size=3, max_size=7).filter(lambda o: set(o) == {0, 1, 2}))
    def every_order(order: list[int]) -> None:
        tried.append(order)
        assert deliver(order) == expected, order

    every_order()
    assert len(tried) >= INTERLEAVINGS // 2  # duplicates and reorders of all three events
    assert any(o[0] != 0 for o in tried) and any(len(o) > 3 for o in tried)


def sweep_event(full: bool = True) -> bytes:
    payload = json.dumps({"buckets": ["autotag-demo"], "full": full, "workers": 4})
    moment = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return json.dumps({"triggerTime": moment, "triggerName": "t", "payload": payload}).encode()


def test_sweeps_running_during_uploads_never_touch_new_versions(
    local_oss: LocalOSS, tmp_path: Path, template_bucket: oss2.Bucket
) -> None:
    """Full reconciles (the rules changed: `legacy` is gone) run again and again while the same keys are
    overwritten, three times each, with new versions carrying uploader tags. Every newest version ends with
    its uploader's tag and the current rules' tags, and no `legacy` tag survives."""
    bucket = template_bucket
    config = oss2.models.BucketVersioningConfig()
    config.status = "Enabled"
    bucket.put_bucket_versioning(config)
    keys = [f"race/{i:03d}.log" for i in range(40)]
    for key in keys:  # tagged long ago by rules that had a `legacy` tag
        bucket.put_object(
            key,
            b"old",
            headers={"x-oss-tagging": sealed_header({"legacy": "1", "kind": "log"}, "kind", "legacy")},
        )
    fc = LocalFC(
        load_template(Path(__file__).parents[2] / "template.yml"),
        environment={"AUTOTAG_OSS_ENDPOINT": local_oss.endpoint, "AUTOTAG_FANOUT": "in-process"},
        dead_letters=DeadLetterStore(tmp_path / "dl.jsonl"),
        concurrency=6,
    )
    sweeps: list[bool] = []
    stop = threading.Event()

    def sweep_until_stopped() -> None:
        while not stop.is_set():
            sweeps.append(fc.invoke("tag-expiry", sweep_event()).ok)

    with fc:
        fc.wire_oss(local_oss)
        sweeper = threading.Thread(target=sweep_until_stopped)
        sweeper.start()
        newest: dict[str, str] = {}
        for round_ in range(3):
            for key in keys:
                newest[key] = bucket.put_object(
                    key, b"v%d" % round_, headers={"x-oss-tagging": "by=me"}
                ).versionid
        assert local_oss.notifier.drain(600) and fc.drain(600)
        stop.set()
        sweeper.join()
        assert fc.invoke("tag-expiry", sweep_event()).ok
    assert len(sweeps) >= 2 and all(sweeps)
    for key, version in newest.items():
        tags = dict(bucket.get_object_tagging(key, params={"versionId": version}).tag_set.tagging_rule)
        assert tags["by"] == "me" and tags["kind"] == "log" and "legacy" not in tags, (key, tags)
