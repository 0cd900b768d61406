"""OSS events reach the upload function natively or through EventBridge — one CloudEvent per invocation,
or batches from a queue — with template.yml's own alternatives switched on as docs/tag-on-upload.md says
(the native trigger deleted, the EventBridge trigger and rule enabled), run by the local FC under the
function's role against the local OSS. Each way tags the same objects the same way; a batch isolates an
object's permanent failure, and a batch redelivered after a transient one does nothing twice."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import oss2
import pytest
import yaml
from conftest import readable, tags_of, template_variant

from autotag.events import parse_delivery
from localcloud.fc import DeadLetterStore, LocalFC, load_template
from localcloud.fc.api import LocalFcApi
from localcloud.fc.eventbridge import cloud_event
from localcloud.oss import FaultRule, LocalOSS
from localcloud.oss.errors import OssError

ROOT = Path(__file__).parents[2]
DELIVERIES = ("native", "eventbridge", "batched")
EXPECTED_TAGS = {"kind": "image", "size": "small", "autotag": "kind size"}
ACCOUNT = "1234567890123456"  # the local cloud's account


def start_fc(oss: LocalOSS, template: Path, store: Path | None = None) -> LocalFC:
    """The local FC running `template`, with its FC API (where a batch's failing elements are re-driven)."""
    fc = LocalFC(
        load_template(template),
        environment={"AUTOTAG_OSS_ENDPOINT": oss.endpoint},
        dead_letters=DeadLetterStore(store),
        retry_base_seconds=0.01,
    )
    api = LocalFcApi(fc).start()
    APIS[fc] = api
    fc.environment["AUTOTAG_FC_ENDPOINT"] = api.endpoint
    fc.start()
    fc.wire_oss(oss)
    return fc


APIS: dict[LocalFC, LocalFcApi] = {}


@pytest.fixture
def running(oss: LocalOSS, template_bucket: oss2.Bucket, tmp_path: Path) -> Iterator[list[LocalFC]]:
    started: list[LocalFC] = []
    yield started
    for fc in started:
        fc.stop()
        api = APIS.pop(fc, None)
        if api is not None:
            api.stop()


def settle(oss: LocalOSS, fc: LocalFC) -> list[dict[str, Any]]:
    """Every invocation's summary, once every event was delivered and handled."""
    assert oss.notifier.drain(600) and fc.drain(600)
    return [json.loads(r.payload or "{}") for r in fc.results if r.function == "tag-on-upload" and r.ok]


@pytest.mark.parametrize("delivery", DELIVERIES)
def test_each_delivery_tags_every_upload_alike(
    delivery: str,
    oss: LocalOSS,
    template_bucket: oss2.Bucket,
    running: list[LocalFC],
    tmp_path: Path,
) -> None:
    # 25 objects in batches of 5; the window never closes a batch first (15 s), so the count is exact.
    fc = start_fc(oss, template_variant(tmp_path, delivery, count=5, seconds=15))
    running.append(fc)
    keys = [f"photos/{number:02d}.jpg" for number in range(25)]
    oss.conditions.reset_counters()
    for key in keys:
        template_bucket.put_object(
            key, b"x", headers={"x-oss-tagging": "owner=ann"} if key.endswith("7.jpg") else {}
        )
    summaries = settle(oss, fc)
    assert all(r.ok for r in fc.results), [r.error_message for r in fc.results if not r.ok]

    shapes = {s["delivery"] for s in summaries}
    assert shapes == {
        "oss-trigger"
        if delivery == "native"
        else "eventbridge-batch"
        if delivery == "batched"
        else "eventbridge"
    }
    results = [r for s in summaries for r in s["results"]]
    assert sorted(r["key"] for r in results) == keys  # each object once
    assert {r["outcome"] for r in results} == {"tagged"}
    for key in keys:
        expected = {**EXPECTED_TAGS, **({"owner": "ann"} if key.endswith("7.jpg") else {})}
        assert readable(tags_of(template_bucket, key)) == expected, key
    invocations = len(summaries)
    if delivery == "batched":
        assert [len(s["results"]) for s in summaries] == [5] * 5
    else:
        assert invocations == len(keys)
    untagged = [r["ossRequests"] for r in results if not r["key"].endswith("7.jpg")]
    assert max(untagged) <= 2


def test_a_permanent_failure_mid_batch_fails_nothing_else(
    oss: LocalOSS, template_bucket: oss2.Bucket, running: list[LocalFC], tmp_path: Path
) -> None:
    """One object whose tags OSS refuses for good, and a message on the queue that is no OSS event, in the
    middle of one batch: each reported on its own, the rest tagged, nothing retried or dead-lettered."""
    fc = start_fc(oss, template_variant(tmp_path, "batched", count=6, seconds=10))
    running.append(fc)

    def refuse_tags_of_bad(request: Any) -> None:
        if request.api == "PutObjectTagging" and request.key == "batch/2-bad.jpg":
            raise OssError(400, "InvalidTag", "The tag set is refused.")

    oss.conditions.hooks.append(refuse_tags_of_bad)
    for name in ("0", "1"):
        template_bucket.put_object(f"batch/{name}.jpg", b"x")
    assert oss.notifier.drain(600)
    fc.eventbridge.send_to_queue("oss-autotag-events", '{"hello": "not an OSS event"}')
    for name in ("2-bad", "3", "4"):  # one at a time: the elements' order is the test's, not the notifier's
        template_bucket.put_object(f"batch/{name}.jpg", b"x")
        assert oss.notifier.drain(600)
    (summary,) = settle(oss, fc)

    assert [r.attempts for r in fc.results] == [1] and not fc.dead_letters.all()
    outcomes = {r["key"]: r["outcome"] for r in summary["results"]}
    assert outcomes == {
        "batch/0.jpg": "tagged",
        "batch/1.jpg": "tagged",
        "batch/2-bad.jpg": "rejected",
        "batch/3.jpg": "tagged",
        "batch/4.jpg": "tagged",
    }
    (bad,) = (r for r in summary["results"] if r["outcome"] == "rejected")
    assert "InvalidTag" in bad["reason"] and bad["element"] == 3
    (refused,) = summary["refused"]
    assert refused["element"] == 2 and "hello" not in refused["reason"]
    assert refused["reason"].startswith("[2].data.messageBody")
    assert readable(tags_of(template_bucket, "batch/4.jpg")) == EXPECTED_TAGS
    assert tags_of(template_bucket, "batch/2-bad.jpg") == {}


def test_an_element_failing_for_a_while_is_retried_alone(
    oss: LocalOSS, template_bucket: oss2.Bucket, running: list[LocalFC], tmp_path: Path
) -> None:
    """OSS keeps failing one object's write past the gateway's retries: the batch is done at its first
    push, and the failing element alone is re-driven as an asynchronous invocation, which tags it; nothing
    else of the batch is read or written twice."""
    fc = start_fc(oss, template_variant(tmp_path, "batched", count=4, seconds=10))
    running.append(fc)
    failures = {"left": 4}  # the gateway's attempts for one write
    lock = threading.Lock()

    def fail_slow_for_a_while(request: Any) -> None:
        if request.api == "PutObjectTagging" and request.key == "again/slow.jpg":
            with lock:
                if failures["left"] > 0:
                    failures["left"] -= 1
                    raise OssError(503, "ServiceUnavailable", "Please reduce your request rate.")

    oss.conditions.hooks.append(fail_slow_for_a_while)
    keys = ["again/a.jpg", "again/slow.jpg", "again/c.jpg", "again/d.jpg"]
    # counted from before the uploads (PutObject, counted apart): the batch may start as soon as its fourth
    # event is delivered, before anything after the drain runs
    oss.conditions.reset_counters()
    for key in keys:
        template_bucket.put_object(
            key, b"x", headers={"x-oss-tagging": "owner=bob"} if key == "again/c.jpg" else {}
        )
    assert oss.notifier.drain(600)
    summaries = settle(oss, fc)
    (batch,) = [s for s in summaries if "redriven" in s]
    (alone,) = [s for s in summaries if "redriven" not in s]

    assert all(r.ok and r.attempts == 1 for r in fc.results), [(r.ok, r.attempts) for r in fc.results]
    outcomes = {r["key"]: r["outcome"] for r in batch["results"]}
    assert outcomes == {
        "again/a.jpg": "tagged",
        "again/slow.jpg": "failed",
        "again/c.jpg": "tagged",
        "again/d.jpg": "tagged",
    }
    # the uploads' events reach the batch in the order OSS delivered them: a loaded machine may reorder
    slow = [r["element"] for r in batch["results"] if r["key"] == "again/slow.jpg"]
    assert [d["element"] for d in batch["redriven"]] == slow and len(slow) == 1
    assert [(r["key"], r["outcome"]) for r in alone["results"]] == [("again/slow.jpg", "tagged")]
    assert oss.conditions.requests["PutObjectTagging"] == 3 + 4 + 1  # the batch: 3 done + 4 tries; then 1
    assert oss.conditions.requests["HeadObject"] == 4 + 1  # nothing of the batch read twice
    assert readable(tags_of(template_bucket, "again/c.jpg")) == {**EXPECTED_TAGS, "owner": "bob"}
    for key in keys:
        assert readable(tags_of(template_bucket, key))["autotag"] == "kind size"
    assert not fc.dead_letters.all()


def test_an_asynchronous_push_over_128_kb_never_reaches_the_function(
    oss: LocalOSS, template_bucket: oss2.Bucket, running: list[LocalFC], tmp_path: Path
) -> None:
    """FC takes at most 128 KB in an asynchronous invocation: a batch trigger set to push asynchronously
    has its big batches refused; each goes to the trigger's dead-letter queue (error EntityTooLarge) rather
    than being lost, which is why template.yml's batched trigger pushes synchronously."""
    path = template_variant(tmp_path, "batched", count=120, seconds=15)
    document = yaml.safe_load(path.read_text())
    document["Resources"]["oss-autotag"]["tag-on-upload"]["Events"]["oss-events-batched"]["Properties"][
        "AsyncInvocationType"
    ] = True
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    fc = start_fc(oss, path)
    running.append(fc)
    for number in range(120):
        template_bucket.put_object(f"big/{number:03d}-{'k' * 200}.jpg", b"x")
    settle(oss, fc)
    assert not fc.results
    (letter,) = fc.dead_letters.all()
    assert (letter.error_type, letter.attempts) == ("EntityTooLarge", 0)
    assert "at most 131072" in letter.error_message and len(json.loads(letter.payload)) == 120


def test_dead_lettered_elements_are_replayed_with_provenance(
    oss: LocalOSS, template_bucket: oss2.Bucket, running: list[LocalFC], tmp_path: Path
) -> None:
    """Every element of a batch keeps failing (OSS throttles every HEAD): each goes, alone, through FC's
    retries to the dead-letter queue, a letter each; `autotag replay` re-drives them through the same
    function, each CloudEvent marked with its failed request id."""
    pytest.importorskip(
        "alibabacloud_credentials", reason="the CLI is not part of the deployed code (FC-runtime test runs)"
    )
    from click.testing import CliRunner

    from autotag_cli.main import cli
    from autotag_cli.replay import with_provenance

    store = tmp_path / "dead-letters.jsonl"
    fc = start_fc(oss, template_variant(tmp_path, "batched", count=3, seconds=10), store)
    running.append(fc)
    oss.conditions.set_faults([FaultRule("throttle", 1.0, frozenset({"HeadObject"}))])
    for name in ("x", "y", "z"):
        template_bucket.put_object(f"dlq/{name}.jpg", b"x")
    settle(oss, fc)
    oss.conditions.set_faults([])
    letters = DeadLetterStore(store).all()
    assert [r.attempts for r in fc.results if r.ok] == [1]  # the batch itself: done at its first push
    assert sorted(e.key for letter in letters for e in parse_delivery(letter.payload).events) == [
        "dlq/x.jpg",
        "dlq/y.jpg",
        "dlq/z.jpg",
    ]
    assert all(letter.attempts == 4 for letter in letters)  # each its own invocation and FC's 3 retries

    environment = {"AUTOTAG_OSS_ENDPOINT": oss.endpoint, "COLUMNS": "220", "ALIBABA_CLOUD_ACCESS_KEY_ID": ""}
    replay = ["replay", "--store", str(store), "--template", str(ROOT / "template.yml")]
    result = CliRunner().invoke(cli, replay, env=environment)
    assert result.exit_code == 0 and "3 dead letters, 3 replayed, 0 failed" in result.output, result.output
    for name in ("x", "y", "z"):
        assert f"dlq/{name}.jpg" in result.output
        assert readable(tags_of(template_bucket, f"dlq/{name}.jpg")) == EXPECTED_TAGS
    for letter in letters:
        (event,) = parse_delivery(with_provenance(letter)).events
        assert event.replay_of == letter.request_id


def make_refusal(key: str) -> Any:
    """A hook refusing every PutObjectTagging of `key`, as OSS refuses a role that may not tag it."""

    def refuse(request: Any) -> None:
        if request.api == "PutObjectTagging" and request.key == key:
            raise OssError(403, "AccessDenied", "You have no right to access this object.")

    return refuse


def test_an_element_oss_keeps_refusing_is_dead_lettered_alone(
    oss: LocalOSS, template_bucket: oss2.Bucket, running: list[LocalFC], tmp_path: Path
) -> None:
    """One object of a batch the role may not tag (OSS answers AccessDenied every time): the rest of the
    batch is done at the first push; the failing element alone goes through FC's retries to the
    dead-letter queue, as a letter of its own that `autotag replay` re-drives once the cause is fixed."""
    pytest.importorskip(
        "alibabacloud_credentials", reason="the CLI is not part of the deployed code (FC-runtime test runs)"
    )
    from click.testing import CliRunner

    from autotag_cli.main import cli

    store = tmp_path / "dead-letters.jsonl"
    oss.conditions.hooks.append(refuse_b := make_refusal("poison/b.jpg"))
    fc = start_fc(oss, template_variant(tmp_path, "batched", count=3, seconds=10), store)
    running.append(fc)

    for name in ("a", "b", "c"):
        template_bucket.put_object(f"poison/{name}.jpg", b"x")
    assert oss.notifier.drain(600) and fc.drain(600)
    (push,) = [r for r in fc.results if r.ok]  # the batch, done at its first push
    assert push.attempts == 1, [(r.ok, r.attempts, r.error_message[:200]) for r in fc.results]
    assert [d["element"] for d in json.loads(push.payload or "{}")["redriven"]] == [1]
    (letter,) = DeadLetterStore(store).all()
    assert letter.attempts == 4  # the element's own invocation, and FC's 3 retries
    assert [e.key for e in parse_delivery(letter.payload).events] == ["poison/b.jpg"]
    for name in ("a", "c"):
        assert readable(tags_of(template_bucket, f"poison/{name}.jpg")) == EXPECTED_TAGS
    assert tags_of(template_bucket, "poison/b.jpg") == {}
    oss.conditions.hooks.remove(refuse_b)  # the cause fixed

    environment = {
        "AUTOTAG_OSS_ENDPOINT": oss.endpoint,
        "COLUMNS": "220",
        "ALIBABA_CLOUD_ACCESS_KEY_ID": "",
    }
    replay = ["replay", "--store", str(store), "--template", str(ROOT / "template.yml")]
    result = CliRunner().invoke(cli, replay, env=environment)
    assert result.exit_code == 0 and "1 dead letters, 1 replayed, 0 failed" in result.output, result.output
    assert readable(tags_of(template_bucket, "poison/b.jpg")) == EXPECTED_TAGS


@pytest.mark.parametrize("delivery", ["eventbridge", "batched"])
@pytest.mark.parametrize(
    "event_name", ["ObjectReplication:ObjectCreated", "ObjectReplication:ObjectModified"]
)
def test_objects_written_by_cross_region_replication_are_tagged(
    delivery: str,
    event_name: str,
    oss: LocalOSS,
    template_bucket: oss2.Bucket,
    running: list[LocalFC],
    tmp_path: Path,
) -> None:
    """EventBridge publishes oss:ObjectReplication:ObjectCreated / ObjectModified for objects CRR wrote
    (help.aliyun.com/document_detail/205739.html); template.yml subscribes to both, and they are tagged."""
    from autotag_cli.events import oss_event_document

    fc = start_fc(oss, template_variant(tmp_path, delivery, count=1, seconds=1))
    running.append(fc)
    template_bucket.put_object("photos/replica.jpg", b"x")
    settle(oss, fc)
    template_bucket.delete_object_tagging("photos/replica.jpg")  # as CRR leaves it: untagged by this system
    fc.results.clear()
    record = oss_event_document("autotag-demo", "photos/replica.jpg", event_name=event_name, size=1)
    fc.eventbridge.on_oss_notification(json.dumps(record).encode())
    (summary,) = settle(oss, fc)
    (result,) = summary["results"]
    assert result["outcome"] == "tagged", result
    assert readable(tags_of(template_bucket, "photos/replica.jpg")) == EXPECTED_TAGS


def forged_record(bucket: oss2.Bucket, key: str, version_id: str) -> dict[str, Any]:
    """An OSS event record naming a real version, with made-up facts: a size and metadata the object does
    not have. Anyone may write such a record: a producer on the queue, a caller with fc:InvokeFunction."""
    head = bucket.head_object(key, params={"versionId": version_id})
    return {
        "eventName": "ObjectCreated:PutObject",
        "eventSource": "acs:oss",
        "eventTime": "2026-01-01T00:00:00.000Z",
        "eventVersion": "1.0",
        "oss": {
            "bucket": {
                "name": bucket.bucket_name,
                "arn": f"acs:oss:cn-hangzhou:{ACCOUNT}:{bucket.bucket_name}",
            },
            "object": {
                "key": key,
                "eTag": head.etag,
                "versionId": version_id,
                "size": 5 * 1024**4,  # 5 TiB
                "deltaSize": 5 * 1024**4,
                "objectMeta": {"mimeType": "image/jpeg", "userMeta": {"x-oss-meta-owner": "mallory"}},
            },
            "ossSchemaVersion": "1.0",
        },
        "region": "cn-hangzhou",
        "responseElements": {"requestId": "5F0000000000000000000000"},
    }


def deliver_forged(fc: LocalFC, delivery: str, record: dict[str, Any]) -> None:
    """The forged record as each kind of sender can put it in front of the function: a message on the
    queue the batched trigger reads (as any producer with mns:SendMessage sends it), or an invocation by
    anyone allowed fc:InvokeFunction (console test events and replays included), shaped as the native
    trigger's event or as one CloudEvent."""
    if delivery == "batched":
        fc.eventbridge.send_to_queue("oss-autotag-events", json.dumps(cloud_event(record, ACCOUNT)))
    elif delivery == "native":
        fc.invoke_async("tag-on-upload", json.dumps({"events": [record]}).encode())
    else:
        fc.invoke_async("tag-on-upload", json.dumps(cloud_event(record, ACCOUNT)).encode())


@pytest.mark.parametrize("delivery", ["batched", "native", "eventbridge"])
def test_forged_facts_never_decide_tags(
    delivery: str, oss: LocalOSS, template_bucket: oss2.Bucket, running: list[LocalFC], tmp_path: Path
) -> None:
    """A 1-byte object without metadata, and an event naming its real version with a 5 TiB size and
    `owner: mallory` in its metadata: the tags come from what OSS answers for that version (size small, no
    owner), never from what the event claims; the ownership record seals only those."""
    versioning = oss2.models.BucketVersioningConfig()
    versioning.status = "Enabled"
    template_bucket.put_bucket_versioning(versioning)
    version = template_bucket.put_object("photos/tiny.jpg", b"x").versionid  # before any trigger is wired
    assert oss.notifier.drain(600)
    fc = start_fc(oss, template_variant(tmp_path, delivery, count=1))
    running.append(fc)

    deliver_forged(fc, delivery, forged_record(template_bucket, "photos/tiny.jpg", version))
    (summary,) = settle(oss, fc)

    (result,) = summary["results"]
    assert result["outcome"] == "tagged", result
    assert readable(tags_of(template_bucket, "photos/tiny.jpg", versionId=version)) == EXPECTED_TAGS


def test_the_batched_triggers_pattern_is_applied_to_each_queue_message(tmp_path: Path) -> None:
    """template.yml's batched trigger passes its queue's messages (type mns:Queue:SendMessage, subject the
    queue's ARN) and nothing else: the local EventBridge matches each message against it before batching."""
    from localcloud.fc.eventbridge import TriggerDelivery, queue_event

    spec = load_template(template_variant(tmp_path, "batched", count=1)).function("tag-on-upload")
    (trigger,) = (t for t in spec.triggers if t.name == "oss-events-batched")
    pushed: list[bytes] = []
    delivery = TriggerDelivery(trigger.eventbridge, pushed.append)
    own = queue_event("{}", "oss-autotag-events", ACCOUNT, "cn-hangzhou")
    delivery.enqueue({**own, "subject": f"acs:mns:cn-hangzhou:{ACCOUNT}:queues/another"})
    delivery.enqueue({**own, "type": "mns:Topic:Publish"})
    assert not pushed
    delivery.enqueue(own)
    assert [json.loads(batch)[0]["id"] for batch in pushed] == [own["id"]]
