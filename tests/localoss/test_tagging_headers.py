"""What OSS's tagging answers carry, as the local OSS gives them: only common headers, plus
`x-oss-version-id` on a bucket that has had versioning — no ETag and no Last-Modified (OSS API reference,
PutObjectTagging and GetObjectTagging examples). So on an unversioned bucket a tagging call cannot tell
which object it read or wrote; the functions confirm the object with the HEAD and the record instead."""

from __future__ import annotations

import oss2
from conftest import BucketFactory

IDENTITY = ("etag", "last-modified", "x-oss-version-id")


def tagging_headers(bucket: oss2.Bucket, key: str) -> tuple[set[str], set[str]]:
    rule = oss2.models.TaggingRule()
    rule.add("a", "1")
    put = bucket.put_object_tagging(key, oss2.models.Tagging(rule))
    got = bucket.get_object_tagging(key)
    return (
        {h.lower() for h in put.headers if h.lower() in IDENTITY},
        {h.lower() for h in got.headers if h.lower() in IDENTITY},
    )


def test_tagging_answers_name_no_object_on_an_unversioned_bucket(new_bucket: BucketFactory) -> None:
    bucket = new_bucket()
    bucket.put_object("k", b"x")
    assert tagging_headers(bucket, "k") == (set(), set())


def test_tagging_answers_name_the_version_on_a_versioned_bucket(new_bucket: BucketFactory) -> None:
    bucket = new_bucket(versioning="Enabled")
    version = bucket.put_object("k", b"x").versionid
    assert tagging_headers(bucket, "k") == ({"x-oss-version-id"}, {"x-oss-version-id"})
    assert bucket.get_object_tagging("k").headers["x-oss-version-id"] == version
