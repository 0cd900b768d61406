"""Duplicate and reordered deliveries: OSS promises neither exactly-once nor ordered events. Whatever
order and however often the events of one object's life (an upload with uploader tags, two appends, a
CopyObject onto itself with new metadata) reach the function, the final tags are the same."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import oss2
from conftest import make_auth
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from localcloud.fc import fc_context, load_handler
from localcloud.oss import LocalOSS

CODE_URI = Path(__file__).parents[2] / "functions"
INTERLEAVINGS = 60


def test_every_interleaving_of_duplicates_and_reorders_ends_the_same(
    local_oss: LocalOSS, monkeypatch: object
) -> None:
    import os

    os.environ["AUTOTAG_OSS_ENDPOINT"] = local_oss.endpoint
    handler = load_handler(CODE_URI, "tag_on_upload.handler")
    bucket = oss2.Bucket(make_auth("sts-v1"), local_oss.endpoint, f"t-{uuid.uuid4().hex[:16]}")
    bucket.create_bucket()
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
    assert local_oss.notifier.drain(10)
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
    assert expected == {
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
