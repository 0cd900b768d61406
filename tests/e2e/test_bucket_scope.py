"""Each function acts only on the buckets it is configured for (`AUTOTAG_BUCKETS`, set in template.yml
beside the trigger's bucket): an event naming any other bucket is `rejected` with a reason naming that
bucket, before any request is sent to it. Run as deployed: template.yml's three functions in the local FC,
under their roles, against the local OSS, with another bucket of the same account beside `autotag-demo`."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import oss2
import pytest
from conftest import REGION, ROOT, make_auth, purge, readable, tags_of

from localcloud.fc import DeadLetterStore, LocalFC, load_template
from localcloud.oss import LocalOSS

EXPECTED_TAGS = {"kind": "image", "size": "small", "autotag": "kind size"}


@pytest.fixture
def fc(oss: LocalOSS, template_bucket: oss2.Bucket) -> Iterator[LocalFC]:
    cloud = LocalFC(
        load_template(ROOT / "template.yml"),
        environment={"AUTOTAG_OSS_ENDPOINT": oss.endpoint, "AUTOTAG_FANOUT": "in-process"},
        dead_letters=DeadLetterStore(),
        retry_base_seconds=0.01,
    )
    cloud.wire_oss(oss)
    with cloud:
        yield cloud


@pytest.fixture
def other(oss: LocalOSS) -> Iterator[oss2.Bucket]:
    """A bucket of the same account that no function is configured for, holding an object (made directly:
    the `new_bucket` fixture would list it in AUTOTAG_BUCKETS)."""
    bucket = oss2.Bucket(make_auth("v1"), oss.endpoint, f"t-{uuid.uuid4().hex[:16]}", region=REGION)
    bucket.create_bucket()
    bucket.put_object("photos/theirs.jpg", b"x")
    yield bucket
    purge(bucket)


@pytest.fixture
def sent_to(oss: LocalOSS) -> list[str]:
    """The bucket of every request the local OSS receives from here on."""
    buckets: list[str] = []
    oss.conditions.hooks.append(lambda request: buckets.append(request.bucket))
    return buckets


def invoke(fc: LocalFC, function: str, event: dict[str, Any]) -> dict[str, Any]:
    result = fc.invoke(function, json.dumps(event).encode())
    assert result.ok, result.error_message
    return json.loads(result.payload or "{}")  # type: ignore[no-any-return]


def record(bucket: str, key: str) -> dict[str, Any]:
    return {
        "eventName": "ObjectCreated:PutObject",
        "eventSource": "acs:oss",
        "eventTime": "2026-01-01T00:00:00.000Z",
        "eventVersion": "1.0",
        "oss": {"bucket": {"name": bucket}, "object": {"key": key, "size": 1, "eTag": ""}},
        "region": "cn-hangzhou",
    }


def test_the_upload_function_rejects_a_record_for_another_bucket(
    fc: LocalFC, oss: LocalOSS, template_bucket: oss2.Bucket, other: oss2.Bucket, sent_to: list[str]
) -> None:
    template_bucket.put_object("photos/ours.jpg", b"x")
    assert oss.notifier.drain(600) and fc.drain(600)
    template_bucket.delete_object_tagging("photos/ours.jpg")
    sent_to.clear()
    event = {
        "events": [record(other.bucket_name, "photos/theirs.jpg"), record("autotag-demo", "photos/ours.jpg")]
    }
    theirs, ours = invoke(fc, "tag-on-upload", event)["results"]
    assert ours["outcome"] == "tagged"
    assert theirs["outcome"] == "rejected"
    assert repr(other.bucket_name) in theirs["reason"] and "AUTOTAG_BUCKETS" in theirs["reason"]
    assert other.bucket_name not in sent_to
    assert tags_of(other, "photos/theirs.jpg") == {}
    assert readable(tags_of(template_bucket, "photos/ours.jpg")) == EXPECTED_TAGS


def test_the_expiry_sweep_rejects_a_bucket_it_is_not_configured_for(
    fc: LocalFC, other: oss2.Bucket, template_bucket: oss2.Bucket, sent_to: list[str]
) -> None:
    payload = json.dumps({"buckets": [other.bucket_name, "autotag-demo"]})
    event = {"triggerTime": "2026-01-01T00:00:00Z", "triggerName": "console", "payload": payload}
    summary = invoke(fc, "tag-expiry", event)
    assert [s["bucket"] for s in summary["sweeps"]] == ["autotag-demo"]
    (rejected,) = summary["rejected"]
    assert rejected["bucket"] == other.bucket_name and rejected["outcome"] == "rejected"
    assert repr(other.bucket_name) in rejected["reason"]
    assert other.bucket_name not in sent_to


@pytest.mark.parametrize("named", ["item", "batch"])
def test_the_backfill_function_rejects_a_bucket_it_is_not_configured_for(
    named: str, fc: LocalFC, other: oss2.Bucket, sent_to: list[str]
) -> None:
    """A flow's batch naming another bucket, in an item or in BatchInput: each item is `rejected`, and the
    bucket is sent no request."""
    item: dict[str, Any] = {"Key": "a.txt"}
    extra: dict[str, Any] = {"Bucket": "autotag-demo"}
    if named == "item":
        item["Bucket"] = other.bucket_name
    else:
        extra["Bucket"] = other.bucket_name
    summary = invoke(fc, "tag-backfill", {"Items": [item], "BatchInput": extra})
    (result,) = summary["Results"]
    assert result["Outcome"] == "rejected" and summary["Counts"] == {"rejected": 1}
    assert result["Bucket"] == other.bucket_name and repr(other.bucket_name) in result["Reason"]
    assert other.bucket_name not in sent_to
