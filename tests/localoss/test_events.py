"""Event notifications: one OSS trigger event per notifying operation, in the exact shape FC receives."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import oss2
import pytest
from conftest import BucketFactory

from localcloud.oss import LocalOSS
from localcloud.oss.events import Subscription


class Inbox:
    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.payloads: list[bytes] = []
        self._lock = threading.Lock()

    def __call__(self, payload: bytes) -> None:
        with self._lock:
            self.payloads.append(payload)
            self.records.extend(json.loads(payload)["events"])

    def names(self) -> list[str]:
        return [r["eventName"] for r in self.records]


@pytest.fixture
def inbox() -> Inbox:
    return Inbox()


def _all_events(oss: LocalOSS, bucket: oss2.Bucket, inbox: Inbox) -> None:
    oss.subscribe(bucket.bucket_name, ["oss:ObjectCreated:*", "oss:ObjectRemoved:*"], inbox)


def test_every_notifying_operation_publishes_its_event(
    oss: LocalOSS, bucket: oss2.Bucket, inbox: Inbox
) -> None:
    _all_events(oss, bucket, inbox)
    bucket.put_object("put", b"12345", headers={"x-oss-meta-owner": "bob", "Content-Type": "text/plain"})
    bucket.copy_object(bucket.bucket_name, "put", "copy")
    bucket.append_object("append", 0, b"ab")
    bucket.append_object("append", 2, b"cd")
    upload = bucket.init_multipart_upload("multi")
    part = bucket.upload_part("multi", upload.upload_id, 1, b"x" * 10)
    bucket.complete_multipart_upload("multi", upload.upload_id, [oss2.models.PartInfo(1, part.etag)])
    bucket.put_symlink("put", "link")
    rule = oss2.models.TaggingRule()
    rule.add("a", "1")
    bucket.put_object_tagging("put", oss2.models.Tagging(rule))  # publishes nothing, as in OSS
    bucket.delete_object("copy")
    bucket.batch_delete_objects(["append", "link"])
    assert oss.notifier.drain(600)
    # Delivery is asynchronous on several workers: like OSS, no order is promised.
    assert sorted(inbox.names()) == sorted(
        [
            "ObjectCreated:PutObject",
            "ObjectCreated:CopyObject",
            "ObjectCreated:AppendObject",
            "ObjectCreated:AppendObject",
            "ObjectCreated:InitiateMultipartUpload",
            "ObjectCreated:UploadPart",
            "ObjectCreated:CompleteMultipartUpload",
            "ObjectCreated:PutSymlink",
            "ObjectRemoved:DeleteObject",
            "ObjectRemoved:DeleteObjects",
            "ObjectRemoved:DeleteObjects",
        ]
    )
    appends = [r["oss"]["object"] for r in inbox.records if r["eventName"].endswith("AppendObject")]
    assert sorted((a["position"], a["size"], a["deltaSize"]) for a in appends) == [(0, 2, 2), (2, 4, 2)]


def test_event_has_the_oss_trigger_shape(oss: LocalOSS, bucket: oss2.Bucket, inbox: Inbox) -> None:
    _all_events(oss, bucket, inbox)
    result = bucket.put_object("dir/中文 a+b.txt", b"hello", headers={"x-oss-meta-owner": "bob"})
    assert oss.notifier.drain(600)
    (payload,) = inbox.payloads
    (record,) = json.loads(payload)["events"]
    assert set(json.loads(payload)) == {"events"}
    assert record["eventName"] == "ObjectCreated:PutObject"
    assert record["eventSource"] == "acs:oss"
    assert record["eventVersion"] == "1.0"
    assert record["region"] == "cn-hangzhou"
    assert record["eventTime"].endswith("Z") and len(record["eventTime"]) == 24
    assert record["responseElements"]["requestId"] == result.request_id
    assert record["oss"]["bucket"]["name"] == bucket.bucket_name
    assert (
        record["oss"]["bucket"]["arn"] == f"acs:oss:cn-hangzhou:{oss.context.owner_id}:{bucket.bucket_name}"
    )
    obj = record["oss"]["object"]
    assert obj["key"] == "dir/中文 a+b.txt"  # raw, not URL-encoded
    assert obj["eTag"] == "5D41402ABC4B2A76B9719D911017C592"  # no quotes
    assert (obj["size"], obj["deltaSize"]) == (5, 5)
    assert obj["objectMeta"]["userMeta"] == {"x-oss-meta-owner": "bob"}
    assert "versionId" not in obj


def test_overwrite_reports_negative_delta_and_versions(
    new_bucket: BucketFactory, oss: LocalOSS, inbox: Inbox
) -> None:
    bucket = new_bucket(versioning="Enabled")
    _all_events(oss, bucket, inbox)
    first = bucket.put_object("k", b"123456")
    second = bucket.put_object("k", b"12")
    assert oss.notifier.drain(600)
    delta_by_version = {
        r["oss"]["object"]["versionId"]: r["oss"]["object"]["deltaSize"] for r in inbox.records
    }
    assert delta_by_version == {first.versionid: 6, second.versionid: -4}


@pytest.mark.parametrize(
    ("events", "prefix", "suffix", "expected"),
    [
        (["oss:ObjectCreated:PutObject"], "", "", ["in/a.jpg", "in/b.txt", "out/c.jpg"]),
        (["ObjectCreated:*"], "in/", "", ["in/a.jpg", "in/b.txt"]),
        (["oss:ObjectCreated:*"], "", ".jpg", ["in/a.jpg", "out/c.jpg"]),
        (["oss:ObjectCreated:CopyObject"], "", "", []),
        (["oss:ObjectRemoved:*"], "", "", []),
    ],
)
def test_subscription_filters(
    oss: LocalOSS,
    bucket: oss2.Bucket,
    inbox: Inbox,
    events: list[str],
    prefix: str,
    suffix: str,
    expected: list[str],
) -> None:
    oss.subscribe(bucket.bucket_name, events, inbox, prefix=prefix, suffix=suffix)
    for key in ("in/a.jpg", "in/b.txt", "out/c.jpg"):
        bucket.put_object(key, b"x")
    assert oss.notifier.drain(600)
    assert sorted(r["oss"]["object"]["key"] for r in inbox.records) == expected


def test_subscription_only_sees_its_bucket() -> None:
    subscription = Subscription("r", "b1", ("oss:ObjectCreated:*",), lambda _payload: None)
    assert subscription.matches("b1", "ObjectCreated:PutObject", "k")
    assert not subscription.matches("b2", "ObjectCreated:PutObject", "k")
    assert not subscription.matches("b1", "ObjectRemoved:DeleteObject", "k")


class _Collector(BaseHTTPRequestHandler):
    received: ClassVar[list[bytes]]

    def do_POST(self) -> None:
        self.received.append(self.rfile.read(int(self.headers["Content-Length"])))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_endpoint() -> Iterator[tuple[str, list[bytes]]]:
    received: list[bytes] = []
    handler = type("Collector", (_Collector,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/events", received
    server.shutdown()
    server.server_close()


def test_delivery_to_an_http_endpoint_via_admin_api(
    oss: LocalOSS, bucket: oss2.Bucket, http_endpoint: tuple[str, list[bytes]]
) -> None:
    import requests

    url, received = http_endpoint
    answer = requests.post(
        f"{oss.endpoint}/_admin/subscriptions",
        json={"bucket": bucket.bucket_name, "events": ["oss:ObjectCreated:*"], "url": url},
        headers={"Authorization": f"Bearer {oss.admin_token}"},
        timeout=10,
    )
    assert answer.status_code == 201
    bucket.put_object("k", b"x")
    token = {"Authorization": f"Bearer {oss.admin_token}"}
    drained = requests.post(f"{oss.endpoint}/_admin/drain", json={}, headers=token, timeout=30)
    assert drained.json() == {"drained": True}
    assert [json.loads(p)["events"][0]["oss"]["object"]["key"] for p in received] == ["k"]


def test_slow_subscriber_never_blocks_uploads(oss: LocalOSS, bucket: oss2.Bucket) -> None:
    release, delivered = threading.Event(), []

    def held(payload: bytes) -> None:
        release.wait(600)  # a bound only so that a failed test never leaves the thread behind
        delivered.append(payload)

    oss.subscribe(bucket.bucket_name, ["oss:ObjectCreated:*"], held)
    for i in range(10):
        bucket.put_object(f"k{i}", b"x")
    # Every upload was answered while the subscriber was held: none waited for its event's delivery.
    assert delivered == []
    release.set()
    assert oss.notifier.drain(600)
    assert len(delivered) == 10


def test_failing_subscriber_does_not_stop_others(oss: LocalOSS, bucket: oss2.Bucket, inbox: Inbox) -> None:
    def broken(_payload: bytes) -> None:
        raise RuntimeError("subscriber failure")

    failed_before = oss.notifier.failed
    oss.subscribe(bucket.bucket_name, ["oss:ObjectCreated:*"], broken)
    oss.subscribe(bucket.bucket_name, ["oss:ObjectCreated:*"], inbox)
    bucket.put_object("k", b"x")
    assert oss.notifier.drain(600)
    assert inbox.names() == ["ObjectCreated:PutObject"]
    assert oss.notifier.failed == failed_before + 1
