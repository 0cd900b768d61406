"""Many clients at once: every request answered, and tag writes to one object never interleave."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import oss2
from conftest import tags_of


def test_concurrent_tag_writes_leave_one_whole_tag_set(bucket: oss2.Bucket) -> None:
    bucket.put_object("shared", b"x")

    def write(writer: int) -> None:
        rule = oss2.models.TaggingRule()
        for i in range(5):
            rule.add(f"k{i}", f"writer-{writer}")
        bucket.put_object_tagging("shared", oss2.models.Tagging(rule))

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(write, range(64)))
    final = tags_of(bucket, "shared")
    assert len(set(final.values())) == 1  # all five tags from the same writer
    assert sorted(final) == [f"k{i}" for i in range(5)]


def test_concurrent_uploads_are_all_stored_and_listed(bucket: oss2.Bucket) -> None:
    keys = [f"dir/{i:04d}" for i in range(300)]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda k: bucket.put_object(k, k.encode(), headers={"x-oss-tagging": "n=1"}), keys))
    assert [o.key for o in oss2.ObjectIterator(bucket, max_keys=37)] == keys
    assert bucket.get_object("dir/0123").read() == b"dir/0123"


def test_concurrent_appends_keep_positions_consistent(bucket: oss2.Bucket) -> None:
    bucket.append_object("log", 0, b"")

    def append(_: int) -> bool:
        for _attempt in range(200):
            position = bucket.head_object("log").content_length
            try:
                bucket.append_object("log", position, b"x")
                return True
            except oss2.exceptions.PositionNotEqualToLength:
                continue
        return False

    with ThreadPoolExecutor(8) as pool:
        assert all(pool.map(append, range(40)))
    assert bucket.get_object("log").read() == b"x" * 40
