"""User metadata as OSS bounds it: the `x-oss-meta-*` names and values of one object total at most 8 KB, on
every API that writes them; more is 400 with EC 0011-00000002, and nothing is stored or announced."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable

import oss2
import pytest
import requests
from conftest import LONG_TERM

from localcloud.oss import LocalOSS
from localcloud.oss.postform import signed_form

LIMIT = 8 * 1024


def metadata(total: int) -> dict[str, str]:
    """`x-oss-meta-*` headers whose names and values add up to `total` bytes, in values of at most 4 KB."""
    headers: dict[str, str] = {}
    left = total
    while left:
        name = f"x-oss-meta-m{len(headers)}"
        value = "v" * min(4096, left - len(name))
        headers[name] = value
        left -= len(name) + len(value)
    assert sum(len(k) + len(v) for k, v in headers.items()) == total
    return headers


def _writes(bucket: oss2.Bucket) -> dict[str, Callable[[dict[str, str]], object]]:
    bucket.put_object("source", b"s")
    return {
        "PutObject": lambda h: bucket.put_object("k", b"x", headers=h),
        "AppendObject": lambda h: bucket.append_object("k", 0, b"x", headers=h),
        "InitiateMultipartUpload": lambda h: bucket.init_multipart_upload("k", headers=h),
        "CopyObject": lambda h: bucket.copy_object(
            bucket.bucket_name, "source", "k", headers={**h, "x-oss-metadata-directive": "REPLACE"}
        ),
        "PutSymlink": lambda h: bucket.put_symlink("source", "k", headers=h),
    }


@pytest.mark.parametrize(
    "api", ["PutObject", "AppendObject", "InitiateMultipartUpload", "CopyObject", "PutSymlink"]
)
def test_metadata_over_8_kb_is_refused_on_every_write(oss: LocalOSS, bucket: oss2.Bucket, api: str) -> None:
    records: list[object] = []
    lock = threading.Lock()

    def collect(payload: bytes) -> None:
        with lock:
            records.extend(json.loads(payload)["events"])

    write = _writes(bucket)[api]
    oss.subscribe(bucket.bucket_name, ["oss:ObjectCreated:*"], collect, prefix="k")
    with pytest.raises(oss2.exceptions.OssError) as refused:
        write(metadata(LIMIT + 1))
    assert (refused.value.status, refused.value.code) == (400, "InvalidArgument")
    assert refused.value.ec == "0011-00000002"
    assert not bucket.object_exists("k")
    assert not list(oss2.ObjectUploadIterator(bucket, "k"))
    write(metadata(LIMIT))  # 8 KB exactly is allowed
    assert oss.notifier.drain(600)
    assert len(records) == 1


def test_a_form_upload_with_metadata_over_8_kb_is_refused(oss: LocalOSS, bucket: oss2.Bucket) -> None:
    fields = {k: v for k, v in metadata(LIMIT + 1).items()}
    form = signed_form(LONG_TERM, "form-upload", fields=fields)
    files = {"file": ("f.txt", b"x", "text/plain")}
    response = requests.post(f"{oss.endpoint}/{bucket.bucket_name}/", data=form, files=files, timeout=10)
    assert response.status_code == 400, response.content
    assert b"<EC>0011-00000002</EC>" in response.content
    assert not bucket.object_exists("form-upload")
