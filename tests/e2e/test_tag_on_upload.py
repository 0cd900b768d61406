"""Tag on upload, end to end: uploads through oss2 to the local OSS publish real events, which go to the
handler loaded from its CodeUri with an FC-shaped STS context; the results are read back over HTTP."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import oss2
import pytest
import requests
from conftest import STS, BucketFactory, readable, tags_of

from autotag.events import EventError
from autotag.gateway import ObjectGone, OssGateway, TagsRejected
from autotag.settings import ConfigurationError
from localcloud.fc import fc_context, load_handler
from localcloud.oss import FaultRule, LocalOSS
from localcloud.oss.postform import signed_form

CODE_URI = Path(__file__).parents[2] / "functions"
CREATED = ["oss:ObjectCreated:*"]


class Trigger:
    """Collects the events an OSS trigger would deliver, and invokes the handler with them."""

    def __init__(self, oss: LocalOSS, bucket: oss2.Bucket) -> None:
        self.oss, self.bucket = oss, bucket
        self.payloads: list[bytes] = []
        self._lock = threading.Lock()
        self.handler = load_handler(CODE_URI, "tag_on_upload.handler")
        oss.subscribe(bucket.bucket_name, CREATED, self._collect)

    def _collect(self, payload: bytes) -> None:
        with self._lock:
            self.payloads.append(payload)

    def deliveries(self) -> list[bytes]:
        assert self.oss.notifier.drain(600)
        with self._lock:
            taken, self.payloads = self.payloads, []
        return taken

    def invoke(self, payload: bytes, **context: Any) -> dict[str, Any]:
        return json.loads(self.handler(payload, fc_context(**context)))  # type: ignore[no-any-return]

    def run(self) -> list[dict[str, Any]]:
        """Deliver every pending event, as FC would (one invocation per event); the results, in order."""
        return [result for payload in self.deliveries() for result in self.invoke(payload)["results"]]


@pytest.fixture
def trigger(oss: LocalOSS, bucket: oss2.Bucket, monkeypatch: pytest.MonkeyPatch) -> Iterator[Trigger]:
    monkeypatch.setenv("AUTOTAG_OSS_ENDPOINT", oss.endpoint)
    monkeypatch.delenv("AUTOTAG_RULES", raising=False)
    yield Trigger(oss, bucket)


def outcomes(results: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(r["eventName"].split(":")[1], r["outcome"]) for r in results]


def test_put_object_is_tagged_and_uploader_tags_are_kept(trigger: Trigger, bucket: oss2.Bucket) -> None:
    bucket.put_object(
        "projects/apollo/photo.jpg",
        b"x" * 10,
        headers={"x-oss-tagging": "team=media&kind=photo", "x-oss-meta-owner": "ann"},
    )
    (result,) = trigger.run()
    assert result["outcome"] == "tagged"
    assert readable(tags_of(bucket, "projects/apollo/photo.jpg")) == {
        "team": "media",
        "kind": "photo",
        "project": "apollo",
        "owner": "ann",
        "size": "small",
        "autotag": "owner project size",  # the ownership record: which of these tags the system set
    }
    assert result["kept"] == {"team": "media", "kind": "photo"}
    assert result["dropped"] == [
        {
            "key": "kind",
            "value": "image",
            "rule": "file-kind",
            "reason": "kept the existing value 'photo' (conflict policy keep-existing)",
        }
    ]


def test_every_upload_path(trigger: Trigger, bucket: oss2.Bucket, tmp_path: Path) -> None:
    bucket.put_object("put.jpg", b"1", headers={"x-oss-tagging": "via=put"})
    form = signed_form(STS, "post/${filename}")
    requests.post(
        f"{trigger.oss.endpoint}/{bucket.bucket_name}/",
        data=form,
        files={"file": ("form.png", b"png", "image/png")},
        timeout=10,
    ).raise_for_status()
    bucket.copy_object(bucket.bucket_name, "put.jpg", "copy-keeps.jpg")
    bucket.copy_object(
        bucket.bucket_name,
        "put.jpg",
        "copy-replaces.mp4",
        headers={"x-oss-tagging-directive": "REPLACE", "x-oss-tagging": "via=copy"},
    )
    bucket.append_object("app.log", 0, b"a", headers={"x-oss-tagging": "via=append"})
    bucket.append_object("app.log", 1, b"b")
    upload = bucket.init_multipart_upload("multi.zip", headers={"x-oss-tagging": "via=multipart"})
    part = bucket.upload_part("multi.zip", upload.upload_id, 1, b"z" * 100)
    bucket.complete_multipart_upload("multi.zip", upload.upload_id, [oss2.models.PartInfo(1, part.etag)])
    big = tmp_path / "big.csv"
    big.write_bytes(b"c" * 250 * 1024)
    oss2.resumable_upload(
        bucket,
        "resumable.csv",
        str(big),
        multipart_threshold=100 * 1024,
        part_size=100 * 1024,
        store=oss2.ResumableStore(root=str(tmp_path)),
    )
    bucket.put_symlink("put.jpg", "link.txt", headers={"x-oss-tagging": "via=symlink"})

    results = trigger.run()
    by_key = {}
    for result in results:
        by_key.setdefault(result["key"], []).append(result["outcome"])
    assert sorted(by_key["multi.zip"]) == ["ignored", "ignored", "tagged"]  # initiate, part, complete
    assert by_key["resumable.csv"].count("tagged") == 1 and set(by_key["resumable.csv"]) == {
        "ignored",
        "tagged",
    }
    assert by_key["app.log"] == ["skipped", "tagged"]  # the first append's event finds it appended since
    expected = {
        "put.jpg": {"via": "put", "kind": "image"},
        "post/form.png": {"kind": "image"},
        "copy-keeps.jpg": {"via": "put", "kind": "image"},
        "copy-replaces.mp4": {"via": "copy", "kind": "video"},
        "app.log": {"via": "append", "kind": "log"},
        "multi.zip": {"via": "multipart", "kind": "archive"},
        "resumable.csv": {"kind": "data"},
        "link.txt": {"via": "symlink", "kind": "text"},  # the link itself, not its target
    }
    for key, wanted in expected.items():
        assert {k: v for k, v in tags_of(bucket, key).items() if k in ("via", "kind")} == wanted, key
    assert tags_of(bucket, "put.jpg")["size"] == "small"


def test_versioned_bucket_tags_the_version_in_the_event(
    oss: LocalOSS, new_bucket: BucketFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTOTAG_OSS_ENDPOINT", oss.endpoint)
    bucket = new_bucket(versioning="Enabled")
    trigger = Trigger(oss, bucket)
    first = bucket.put_object("doc.pdf", b"v1").versionid
    first_event = trigger.deliveries()
    second = bucket.put_object("doc.pdf", b"v2", headers={"x-oss-tagging": "draft=yes"}).versionid
    second_event = trigger.deliveries()
    for payload in first_event + second_event:  # delivered late, after the newer version exists
        trigger.invoke(payload)
    assert readable(tags_of(bucket, "doc.pdf", versionId=first)) == {
        "kind": "document",
        "size": "small",
        "autotag": "kind size",
    }
    assert readable(tags_of(bucket, "doc.pdf", versionId=second)) == {
        "draft": "yes",
        "kind": "document",
        "size": "small",
        "autotag": "kind size",
    }


def test_replay_and_duplicate_delivery_write_nothing(
    trigger: Trigger, oss: LocalOSS, bucket: oss2.Bucket
) -> None:
    bucket.put_object("a.jpg", b"x")
    (payload,) = trigger.deliveries()
    assert trigger.invoke(payload)["results"][0]["outcome"] == "tagged"
    oss.conditions.reset_counters()
    again = trigger.invoke(payload)["results"][0]
    assert again["outcome"] == "unchanged"
    assert dict(oss.conditions.requests) == {"HeadObject": 1, "GetObjectTagging": 1}  # read, nothing written


def test_requests_per_object(trigger: Trigger, oss: LocalOSS, bucket: oss2.Bucket) -> None:
    """Unversioned keys: HEAD for the current facts (events may be stale), tags read only when the HEAD
    counts some, one write."""
    bucket.put_object("plain.jpg", b"x")
    bucket.put_object("tagged.jpg", b"x", headers={"x-oss-tagging": "a=1"})
    oss.conditions.reset_counters()
    results = sorted(trigger.run(), key=lambda r: r["key"])
    assert [(r["key"], r["ossRequests"]) for r in results] == [("plain.jpg", 2), ("tagged.jpg", 3)]
    assert dict(oss.conditions.requests) == {"HeadObject": 2, "GetObjectTagging": 1, "PutObjectTagging": 2}


def test_versioned_events_read_their_facts_from_oss_at_no_extra_cost(
    trigger: Trigger, oss: LocalOSS, new_bucket: BucketFactory
) -> None:
    """An event naming a version still carries facts anyone could have written: the HEAD of that version
    reads them, and its tag count spares the tag read, so a new untagged version costs 2 requests as an
    unversioned object does."""
    bucket = new_bucket(versioning="Enabled")
    versioned = Trigger(oss, bucket)
    bucket.put_object("v.jpg", b"x")
    oss.conditions.reset_counters()
    (result,) = versioned.run()
    assert result["outcome"] == "tagged" and result["ossRequests"] == 2
    assert dict(oss.conditions.requests) == {"HeadObject": 1, "PutObjectTagging": 1}


def test_event_without_object_meta_reads_head_and_skips_empty_tag_reads(
    trigger: Trigger, oss: LocalOSS, bucket: oss2.Bucket
) -> None:
    bucket.put_object("old-style.jpg", b"x", headers={"x-oss-meta-owner": "bob"})
    (payload,) = trigger.deliveries()
    document = json.loads(payload)
    del document["events"][0]["oss"]["object"]["objectMeta"]  # older deliveries have no objectMeta
    oss.conditions.reset_counters()
    result = trigger.invoke(json.dumps(document).encode())["results"][0]
    assert result["outcome"] == "tagged"
    assert dict(oss.conditions.requests) == {"HeadObject": 1, "PutObjectTagging": 1}  # tag count was 0
    assert tags_of(bucket, "old-style.jpg")["owner"] == "bob"


def test_object_gone_before_tagging_is_skipped(trigger: Trigger, bucket: oss2.Bucket) -> None:
    bucket.put_object("short-lived.jpg", b"x")
    bucket.delete_object("short-lived.jpg")
    (result,) = trigger.run()
    assert (result["outcome"], "gone" in result["reason"]) == ("skipped", True)


@pytest.mark.parametrize(
    "key", ["with space.jpg", "plus+sign.jpg", "percent%41.jpg", "中文/ключ/🙂.jpg", "k" * 1019 + ".jpg"]
)
def test_odd_keys(trigger: Trigger, bucket: oss2.Bucket, key: str) -> None:
    bucket.put_object(key, b"x")
    (result,) = trigger.run()
    assert result["outcome"] == "tagged"
    assert tags_of(bucket, key)["kind"] == "image"


def test_ten_tag_limit_keeps_uploader_tags_and_reports_the_rest(
    trigger: Trigger, bucket: oss2.Bucket
) -> None:
    uploader = "&".join(f"u{i}=v" for i in range(8))
    bucket.put_object("full.jpg", b"x", headers={"x-oss-tagging": uploader})
    (result,) = trigger.run()
    tags = tags_of(bucket, "full.jpg")
    assert len(tags) == 10 and all(f"u{i}" in tags for i in range(8))
    # the highest priority of what fits, and the ownership record
    assert tags.keys() - {f"u{i}" for i in range(8)} == {"kind", "autotag"}
    assert {d["key"] for d in result["dropped"]} == {"size"}


def test_transient_faults_are_retried(trigger: Trigger, oss: LocalOSS, bucket: oss2.Bucket) -> None:
    bucket.put_object("flaky.jpg", b"x")
    (payload,) = trigger.deliveries()
    oss.conditions.set_faults(
        [
            FaultRule("throttle", 0.5, frozenset({"PutObjectTagging"})),
            FaultRule("reset", 0.3, frozenset({"GetObjectTagging"})),
        ],
        seed=3,
    )
    assert trigger.invoke(payload)["results"][0]["outcome"] == "tagged"
    oss.conditions.set_faults([])
    assert tags_of(bucket, "flaky.jpg")["kind"] == "image"


def test_persistent_failure_raises_for_fc_to_retry(
    trigger: Trigger, oss: LocalOSS, bucket: oss2.Bucket
) -> None:
    bucket.put_object("down.jpg", b"x")
    (payload,) = trigger.deliveries()
    oss.conditions.set_faults([FaultRule("error", 1.0, frozenset({"PutObjectTagging"}))])
    oss.conditions.reset_counters()
    with pytest.raises(
        RuntimeError,
        match=r"1 of 1 object failed \(OSS kept failing\): .*PutObjectTagging 'down.jpg' failed 4 times",
    ):
        trigger.invoke(payload)
    assert oss.conditions.requests["PutObjectTagging"] == 4
    oss.conditions.set_faults([])
    assert trigger.invoke(payload)["results"][0]["outcome"] == "tagged"  # FC's retry then succeeds


def test_malformed_event_names_the_field(trigger: Trigger) -> None:
    with pytest.raises(EventError, match=r"events\[0\]\.oss\.object\.key"):
        trigger.invoke(
            b'{"events": [{"eventName": "ObjectCreated:PutObject", "eventSource": "acs:oss", '
            b'"region": "cn-hangzhou", "oss": {"bucket": {"name": "abc"}, "object": {"key": ""}}}]}'
        )


def test_no_credentials_is_a_configuration_error(
    trigger: Trigger, bucket: oss2.Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket.put_object("k.jpg", b"x")
    (payload,) = trigger.deliveries()
    monkeypatch.delenv("ALIBABA_CLOUD_ACCESS_KEY_ID", raising=False)
    with pytest.raises(ConfigurationError, match="ALIBABA_CLOUD_ACCESS_KEY_ID"):
        trigger.invoke(payload, with_credentials=False)


def test_fc3_environment_credentials(
    trigger: Trigger, bucket: oss2.Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", STS.access_key_id)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", STS.access_key_secret)
    monkeypatch.setenv("ALIBABA_CLOUD_SECURITY_TOKEN", STS.security_token or "")
    bucket.put_object("env.jpg", b"x")
    (payload,) = trigger.deliveries()
    assert trigger.invoke(payload, with_credentials=False)["results"][0]["outcome"] == "tagged"


def test_custom_rules_file(
    trigger: Trigger, bucket: oss2.Bucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rules = tmp_path / "rules.json"
    rules.write_text(
        json.dumps(
            {
                "version": 1,
                "rules": [{"name": "month", "tags": {"month": {"from": "modified", "part": "month"}}}],
            }
        )
    )
    monkeypatch.setenv("AUTOTAG_RULES", str(rules))
    bucket.put_object("any", b"x")
    (result,) = trigger.run()
    assert result["outcome"] == "tagged" and set(tags_of(bucket, "any")) == {"month", "autotag"}


def test_one_json_log_line_per_object_with_the_request_id(
    trigger: Trigger, bucket: oss2.Bucket, caplog: pytest.LogCaptureFixture
) -> None:
    bucket.put_object("a.jpg", b"x")
    bucket.put_object("b.jpg", b"x")
    payloads = trigger.deliveries()
    context = fc_context()
    with caplog.at_level("INFO", logger="autotag.upload"):
        for payload in payloads:
            trigger.handler(payload, context)
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "autotag.upload"]
    assert sorted(line["key"] for line in lines) == ["a.jpg", "b.jpg"]
    assert {line["requestId"] for line in lines} == {context.request_id}
    assert all(line["outcome"] == "tagged" for line in lines)
    assert not any(context.credentials.access_key_secret in r.getMessage() for r in caplog.records)


def test_gateway_reports_refused_tags_without_retrying(oss: LocalOSS, bucket: oss2.Bucket) -> None:
    bucket.put_object("k", b"x")
    gateway = OssGateway(bucket)
    oss.conditions.reset_counters()
    with pytest.raises(TagsRejected, match="InvalidTag"):
        gateway.put_tags("k", {"bad@key": "v"})
    assert oss.conditions.requests["PutObjectTagging"] == 1
    with pytest.raises(ObjectGone):
        gateway.get_tags("missing")


def test_a_metadata_change_updates_the_systems_own_tags_only(trigger: Trigger, bucket: oss2.Bucket) -> None:
    bucket.put_object(
        "projects/a/x.txt", b"x", headers={"x-oss-meta-owner": "ann", "x-oss-tagging": "reviewer=bo"}
    )
    trigger.run()
    assert tags_of(bucket, "projects/a/x.txt")["owner"] == "ann"
    # CopyObject onto itself with new metadata (REPLACE) is a new object version: its event re-derives.
    bucket.copy_object(
        bucket.bucket_name,
        "projects/a/x.txt",
        "projects/a/x.txt",
        headers={"x-oss-metadata-directive": "REPLACE", "x-oss-meta-owner": "cy"},
    )
    (result,) = trigger.run()
    assert result["changed"] == {"owner": {"from": "ann", "to": "cy"}}  # ours: keep-existing does not apply
    assert readable(tags_of(bucket, "projects/a/x.txt")) == {
        "reviewer": "bo",
        "owner": "cy",
        "project": "a",
        "kind": "text",
        "size": "small",
        "autotag": "kind owner project size",
    }
    bucket.copy_object(
        bucket.bucket_name,
        "projects/a/x.txt",
        "projects/a/x.txt",
        headers={"x-oss-metadata-directive": "REPLACE"},
    )
    (result,) = trigger.run()
    assert [(r["key"], r["reason"]) for r in result["removed"]] == [
        ("owner", "no current rule derives it for this object")
    ]
    assert "owner" not in tags_of(bucket, "projects/a/x.txt")


def test_a_replayed_event_does_not_add_a_tag_whose_ttl_already_passed(
    trigger: Trigger, bucket: oss2.Bucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rules = tmp_path / "rules.json"  # key-only rules with a TTL: it runs from the Last-Modified OSS answers
    rules.write_text(
        json.dumps(
            {
                "version": 1,
                "rules": [
                    {"name": "t", "when": {"prefix": "tmp/"}, "tags": {"lifecycle": "temporary"}, "ttl": "7d"}
                ],
            }
        )
    )
    monkeypatch.setenv("AUTOTAG_RULES", str(rules))
    trigger.oss.clock.offset = timedelta(days=-8)  # created 8 days ago, by OSS's clock
    bucket.put_object("tmp/old.txt", b"x")
    trigger.oss.clock.offset = timedelta(0)
    (payload,) = trigger.deliveries()
    event = json.loads(payload)
    event["events"][0]["eventTime"] = "2030-01-01T00:00:00.000Z"  # what the event claims decides nothing
    (result,) = trigger.invoke(json.dumps(event).encode())["results"]
    assert [(d["key"], d["reason"]) for d in result["dropped"]] == [
        ("lifecycle", "its TTL has already passed")
    ]
    assert "lifecycle" not in tags_of(bucket, "tmp/old.txt")


def test_a_rate_limited_tag_write_follows_its_read_at_once(oss: LocalOSS, bucket: oss2.Bucket) -> None:
    """Under a QPS cap the write is never held back after the read it was planned from (an uploader's
    change landing in that pause would be overwritten): at 0.001 requests/s with a deadline, the HEAD takes
    the one token, and a paced PutObjectTagging would wait ~1000 s (OutOfTime) instead of being sent."""
    from autotag.events import parse_delivery
    from autotag.gateway import RateLimiter
    from autotag.rules.loader import load_rules
    from autotag.tagger import tag_object

    bucket.put_object("paced/a.jpg", b"x")
    record = {
        "eventName": "ObjectCreated:PutObject",
        "eventSource": "acs:oss",
        "eventTime": "2026-11-22T00:00:00.000Z",
        "eventVersion": "1.0",
        "region": "cn-hangzhou",
        "oss": {"bucket": {"name": bucket.bucket_name}, "object": {"key": "paced/a.jpg", "size": 1}},
    }
    (event,) = parse_delivery({"events": [record]}).events
    gateway = OssGateway(bucket)
    gateway.limiter = RateLimiter(0.001, deadline=time.monotonic() + 30)
    rules = load_rules(Path(__file__).parents[2] / "functions/autotag/rules/default.json")
    result = tag_object(event, rules, gateway)
    assert (result.outcome, gateway.requests) == ("tagged", 2), result.reason
    assert readable(tags_of(bucket, "paced/a.jpg"))["kind"] == "image"
