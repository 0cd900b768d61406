"""Object semantics the tagger relies on: odd keys, tag counts on HEAD, Last-Modified untouched by tagging,
DeleteObjectTagging, symlinks, versions and delete markers, append positions, listings, batch delete."""

from __future__ import annotations

import time

import oss2
import pytest
from conftest import BucketFactory, tags_of

ODD_KEYS = [
    "with space.txt",
    "plus+sign.txt",
    "percent%20literal.txt",
    "unicode/中文/ключ/🙂.txt",
    "control\x0cchar.txt",
    "k" * 1023,
    "é" * 511 + "k",  # 1023 bytes of UTF-8
]


@pytest.mark.parametrize("key", ODD_KEYS, ids=lambda k: f"{k[:20]!r}:{len(k.encode())}B")
def test_odd_keys_work_everywhere(bucket: oss2.Bucket, key: str) -> None:
    bucket.put_object(key, b"data", headers={"x-oss-tagging": "a=1"})
    head = bucket.head_object(key)
    assert head.headers["x-oss-tagging-count"] == "1"
    bucket.put_object_tagging(key, oss2.models.Tagging(oss2.models.TaggingRule()))
    assert tags_of(bucket, key) == {}
    assert [o.key for o in oss2.ObjectIteratorV2(bucket)] == [key]
    result = bucket.batch_delete_objects([key])
    assert result.deleted_keys == [key]


@pytest.mark.parametrize("key", ["k" * 1024, "é" * 512, "/leading-slash", "\\leading-backslash"])
def test_invalid_object_names_are_refused(bucket: oss2.Bucket, key: str) -> None:
    with pytest.raises(oss2.exceptions.ServerError) as caught:
        bucket.put_object(key, b"x")
    assert (caught.value.status, caught.value.code) == (400, "InvalidObjectName")


def test_tag_count_header_only_when_tagged(bucket: oss2.Bucket) -> None:
    bucket.put_object("plain", b"x")
    bucket.put_object("tagged", b"x", headers={"x-oss-tagging": "a=1&b=2"})
    assert "x-oss-tagging-count" not in bucket.head_object("plain").headers
    assert bucket.head_object("tagged").headers["x-oss-tagging-count"] == "2"
    assert bucket.get_object("tagged").headers["x-oss-tagging-count"] == "2"


def test_tagging_does_not_change_last_modified_or_etag(bucket: oss2.Bucket) -> None:
    bucket.put_object("k", b"x")
    before = bucket.head_object("k")
    time.sleep(1.1)
    rule = oss2.models.TaggingRule()
    rule.add("a", "1")
    bucket.put_object_tagging("k", oss2.models.Tagging(rule))
    after = bucket.head_object("k")
    assert (after.last_modified, after.etag) == (before.last_modified, before.etag)


def test_delete_object_tagging_is_204_and_idempotent(bucket: oss2.Bucket) -> None:
    bucket.put_object("k", b"x", headers={"x-oss-tagging": "a=1"})
    assert bucket.delete_object_tagging("k").status == 204
    assert bucket.delete_object_tagging("k").status == 204
    assert tags_of(bucket, "k") == {}
    with pytest.raises(oss2.exceptions.NoSuchKey):
        bucket.delete_object_tagging("missing")


def test_tagging_missing_object_is_no_such_key(bucket: oss2.Bucket) -> None:
    with pytest.raises(oss2.exceptions.NoSuchKey):
        bucket.get_object_tagging("missing")
    with pytest.raises(oss2.exceptions.NoSuchKey):
        bucket.head_object("missing")


def test_symlink_has_its_own_tags_and_head_describes_the_target(bucket: oss2.Bucket) -> None:
    bucket.put_object("target", b"hello", headers={"x-oss-tagging": "t=target"})
    bucket.put_symlink("target", "link", headers={"x-oss-tagging": "t=link", "x-oss-meta-m": "link-meta"})
    head = bucket.head_object("link")
    assert head.content_length == 5
    assert head.etag == "5D41402ABC4B2A76B9719D911017C592"
    assert head.headers["x-oss-meta-m"] == "link-meta"
    assert head.object_type == "Symlink"
    assert tags_of(bucket, "link") == {"t": "link"}
    assert tags_of(bucket, "target") == {"t": "target"}
    assert bucket.get_symlink("link").target_key == "target"


def test_versioned_tagging_targets_one_version(new_bucket: BucketFactory) -> None:
    bucket = new_bucket(versioning="Enabled")
    first = bucket.put_object("k", b"1", headers={"x-oss-tagging": "v=1"}).versionid
    second = bucket.put_object("k", b"2", headers={"x-oss-tagging": "v=2"}).versionid
    assert first != second
    rule = oss2.models.TaggingRule()
    rule.add("v", "one")
    bucket.put_object_tagging("k", oss2.models.Tagging(rule), params={"versionId": first})
    assert tags_of(bucket, "k", versionId=first) == {"v": "one"}
    assert tags_of(bucket, "k") == {"v": "2"}
    deleted = bucket.delete_object("k")
    assert deleted.delete_marker
    with pytest.raises(oss2.exceptions.NoSuchKey):
        bucket.get_object_tagging("k")
    assert tags_of(bucket, "k", versionId=second) == {"v": "2"}
    with pytest.raises(oss2.exceptions.ServerError) as caught:
        bucket.get_object_tagging("k", params={"versionId": "234"})
    assert caught.value.code == "InvalidArgument"


def test_suspended_versioning_replaces_the_null_version(new_bucket: BucketFactory) -> None:
    bucket = new_bucket(versioning="Enabled")
    bucket.put_object("k", b"kept")
    config = oss2.models.BucketVersioningConfig()
    config.status = "Suspended"
    bucket.put_bucket_versioning(config)
    bucket.put_object("k", b"null-1")
    bucket.put_object("k", b"null-2")
    versions = bucket.list_object_versions().versions
    assert sorted(v.versionid == "null" for v in versions) == [False, True]
    assert bucket.get_object("k").read() == b"null-2"


def test_append_positions_and_first_append_tags(bucket: oss2.Bucket) -> None:
    first = bucket.append_object("log", 0, b"abc", headers={"x-oss-tagging": "a=1"})
    assert first.next_position == 3
    bucket.append_object("log", 3, b"def", headers={"x-oss-tagging": "ignored=yes"})
    assert tags_of(bucket, "log") == {"a": "1"}
    with pytest.raises(oss2.exceptions.PositionNotEqualToLength) as caught:
        bucket.append_object("log", 1, b"x")
    assert caught.value.next_position == 6
    bucket.put_object("normal", b"x")
    with pytest.raises(oss2.exceptions.ObjectNotAppendable):
        bucket.append_object("normal", 1, b"x")


def test_copy_directives(bucket: oss2.Bucket) -> None:
    bucket.put_object("src", b"x", headers={"x-oss-tagging": "a=1", "x-oss-meta-m": "src"})
    bucket.copy_object(bucket.bucket_name, "src", "copy")
    assert tags_of(bucket, "copy") == {"a": "1"}
    assert bucket.head_object("copy").headers["x-oss-meta-m"] == "src"
    bucket.copy_object(
        bucket.bucket_name,
        "src",
        "replaced",
        headers={
            "x-oss-tagging-directive": "REPLACE",
            "x-oss-tagging": "b=2",
            "x-oss-metadata-directive": "REPLACE",
        },
    )
    assert tags_of(bucket, "replaced") == {"b": "2"}
    assert "x-oss-meta-m" not in bucket.head_object("replaced").headers


def test_resumable_upload_with_tags_and_many_parts(bucket: oss2.Bucket, tmp_path: object) -> None:
    path = f"{tmp_path}/big.bin"
    with open(path, "wb") as handle:
        handle.write(bytes(range(256)) * 1200)  # 300 KiB: three parts of 100 KiB
    oss2.resumable_upload(
        bucket,
        "big.bin",
        path,
        multipart_threshold=100 * 1024,
        part_size=100 * 1024,
        num_threads=2,
        store=oss2.ResumableStore(root=str(tmp_path)),
        headers={"x-oss-tagging": "kind=big"},
    )
    assert bucket.head_object("big.bin").object_type == "Multipart"
    assert tags_of(bucket, "big.bin") == {"kind": "big"}
    assert bucket.get_object("big.bin").read() == bytes(range(256)) * 1200


def test_listing_pages_with_delimiter(bucket: oss2.Bucket) -> None:
    keys = [f"a/{i}" for i in range(5)] + ["b", "c/x", "c/y", "d"]
    for key in keys:
        bucket.put_object(key, b"")
    listed = [o.key for o in oss2.ObjectIterator(bucket, delimiter="/", max_keys=2)]
    assert listed == ["a/", "b", "c/", "d"]
    listed_v2 = [o.key for o in oss2.ObjectIteratorV2(bucket, delimiter="/", max_keys=1)]
    assert listed_v2 == ["a/", "b", "c/", "d"]
    assert [o.key for o in oss2.ObjectIterator(bucket, prefix="a/", max_keys=2)] == [
        f"a/{i}" for i in range(5)
    ]


def test_batch_delete_limit_and_missing_keys(bucket: oss2.Bucket) -> None:
    for key in ("a", "b"):
        bucket.put_object(key, b"")
    with pytest.raises(oss2.exceptions.ServerError) as caught:
        bucket.batch_delete_objects([f"k{i}" for i in range(1001)])
    assert caught.value.status == 400
    result = bucket.batch_delete_objects(["a", "b", "missing"], headers={})
    assert sorted(result.deleted_keys) == ["a", "b", "missing"]
    assert list(oss2.ObjectIterator(bucket)) == []
