"""One object's reconcile after a rules change, against the local OSS: the upload path's tag_object with the
new rules, and the change's `reaches` check on the facts the HEAD read — an object no changed rule matches
costs that HEAD alone."""

from __future__ import annotations

import oss2

from autotag.events import ObjectEvent
from autotag.gateway import OssGateway
from autotag.rules import parse_rules
from autotag.rules.changes import diff_rules
from autotag.rules.reach import affected_objects
from autotag.tagger import TAGGED, UNCHANGED, tag_object
from localcloud.oss import LocalOSS
from tests.conftest import tags_of

KIND = {"name": "kind", "tags": {"kind": "{extension}"}}
STEWARD = {
    "name": "steward",
    "key_regex": "^in/",
    "when": {"meta": {"owner": "ann"}},
    "tags": {"steward": "yes"},
}
BEFORE = parse_rules({"version": 1, "rules": [KIND, STEWARD]})
AFTER = parse_rules({"version": 1, "rules": [KIND, {**STEWARD, "when": {"meta": {"owner": "bob"}}}]})


def _event(bucket: oss2.Bucket, key: str) -> ObjectEvent:
    return ObjectEvent("ObjectCreated:PutObject", bucket.bucket_name, key, "cn-hangzhou", request_id="test")


def test_an_object_the_change_cannot_reach_costs_its_head_alone(oss: LocalOSS, bucket: oss2.Bucket) -> None:
    for owner in ("ann", "bob", "eve"):
        bucket.put_object(f"in/{owner}.txt", b"x", headers={"x-oss-meta-owner": owner})
        assert tag_object(_event(bucket, f"in/{owner}.txt"), BEFORE, OssGateway(bucket)).outcome == TAGGED
    uploader = oss2.models.TaggingRule()
    for key, value in {**tags_of(bucket, "in/bob.txt"), "mine": "1"}.items():
        uploader.add(key, value)
    bucket.put_object_tagging("in/bob.txt", oss2.models.Tagging(uploader))  # an uploader's tag beside ours
    eve_before = tags_of(bucket, "in/eve.txt")
    affected = affected_objects(diff_rules(BEFORE, AFTER))
    assert affected.head_needed and affected.prefixes == ("in/",)

    results = {}
    for owner in ("ann", "bob", "eve"):
        gateway = OssGateway(bucket)
        results[owner] = tag_object(
            _event(bucket, f"in/{owner}.txt"), AFTER, gateway, reaches=affected.reaches
        )

    assert results["eve"].outcome == UNCHANGED and results["eve"].requests == 1  # HEAD, then nothing
    assert "does not reach it" in results["eve"].reason
    assert tags_of(bucket, "in/eve.txt") == eve_before
    assert results["ann"].outcome == TAGGED and "steward" not in tags_of(bucket, "in/ann.txt")
    bob = tags_of(bucket, "in/bob.txt")
    assert results["bob"].outcome == TAGGED and bob["steward"] == "yes" and bob["mine"] == "1"
    assert results["ann"].requests == results["bob"].requests == 3  # HEAD, GetObjectTagging, PutObjectTagging
