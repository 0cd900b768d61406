"""The adversarial pass over the trust boundaries (docs/reliability.md, "Trust boundaries"), against the
enforcing local cloud running template.yml's functions under their roles. The attackers: an uploader (a
RAM role allowed PutObject and PutObjectTagging on the tagged bucket only), a producer who may send to the
queues or invoke the functions, and whoever may write where the rules are kept. Each test says what the
attacker tried; each proves that nothing OSS's answers and the system's seals do not back was believed."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import oss2
import pytest
from conftest import LONG_TERM, readable, sealed
from test_least_privilege import BUCKET, STATE_BUCKET, TEMPLATE, tags, timer_at, uploader

from autotag.oss_tags import encode_tagging_header
from autotag_cli.events import oss_event_document
from localcloud.fc import DeadLetterStore, LocalFC
from localcloud.fc.api import LocalFcApi
from localcloud.fc.eventbridge import cloud_event, queue_event
from localcloud.oss import LocalOSS
from localcloud.oss.errors import OssError

ROOT = Path(__file__).parents[2]
ACCOUNT = "1234567890123456"  # the local cloud's
DEFAULT_RULES = (ROOT / "functions/autotag/rules/default.json").read_bytes()
# Rules that derive none of the system's tags: under them a sweep removes every tag the system set.
NO_RULES = b'{"version": 1, "rules": [{"name": "nothing", "key_regex": "^nothing/", "tags": {"x": "y"}}]}'
RULES_KEY = "rules.json"  # where docs/rules.md keeps the rules: the state bucket, which no uploader may write
SYSTEM_TAGS = sealed({"kind": "image", "size": "small"}, "kind", "size")  # what the rules derive for a.jpg
DERIVED = {"kind": "image", "size": "small", "autotag": "kind size"}  # the same, as `readable` shows it


@contextmanager
def template_cloud(**environment: str) -> Iterator[tuple[LocalOSS, LocalFC, oss2.Bucket]]:
    """A local OSS, and the local FC running template.yml's functions under their roles (the sweep's
    shards in-process, a backfill's through the FC API), with `environment` over theirs; an admin client
    of the tagged bucket."""
    with LocalOSS() as oss:
        admin = oss2.Bucket(
            oss2.Auth(LONG_TERM.access_key_id, LONG_TERM.access_key_secret), oss.endpoint, BUCKET
        )
        admin.create_bucket()
        fc = LocalFC(
            TEMPLATE,
            environment={"AUTOTAG_OSS_ENDPOINT": oss.endpoint, "AUTOTAG_FANOUT": "in-process", **environment},
            dead_letters=DeadLetterStore(),
            retry_base_seconds=0.01,
        )
        api = LocalFcApi(fc)
        fc.environment["AUTOTAG_FC_ENDPOINT"] = api.endpoint
        with fc, api:
            fc.wire_oss(oss)
            yield oss, fc, admin


def set_tags(bucket: oss2.Bucket, key: str, tag_set: dict[str, str]) -> None:
    rule = oss2.models.TaggingRule()
    rule.tagging_rule.update(tag_set)
    bucket.put_object_tagging(key, oss2.models.Tagging(rule))


def sweep(oss: LocalOSS, fc: LocalFC, payload: dict[str, object]) -> dict[str, object]:
    """A synchronous invocation of the sweep: its summary, or {"error": ...} when it raised."""
    result = fc.invoke("tag-expiry", timer_at(oss, payload))
    return json.loads(result.payload or "{}") if result.ok else {"error": result.error_message}


# -- rules kept in OSS ---------------------------------------------------------------------------------------


def test_rules_kept_in_a_bucket_uploaders_write_are_refused() -> None:
    """An uploader overwrites rules kept in the tagged bucket (`<bucket>/.autotag/rules.json`, the place
    the docs once recommended) with rules deriving nothing: a sweep would then strip every tag the system
    set, bucket-wide. The functions refuse such a location with one line naming AUTOTAG_RULES and the fix,
    and nothing is removed."""
    location = f"oss://{BUCKET}/.autotag/rules.json"
    with template_cloud(AUTOTAG_RULES=location, AUTOTAG_RULES_MAX_AGE="0") as (oss, fc, admin):
        admin.put_object(".autotag/rules.json", DEFAULT_RULES)
        admin.put_object("a.jpg", b"x")
        assert oss.notifier.drain(600) and fc.drain(600)
        set_tags(admin, "a.jpg", SYSTEM_TAGS)  # as the system tagged it
        uploader(oss).put_object(".autotag/rules.json", NO_RULES)
        summary = sweep(oss, fc, {"buckets": [BUCKET], "full": True})
        assert tags(admin, "a.jpg") == SYSTEM_TAGS, summary
        error = str(summary.get("error", ""))
        assert f"AUTOTAG_RULES {location}" in error and "uploaders" in error, summary
        assert "oss://<state bucket>/rules.json, docs/rules.md" in error, summary
        uploaded = [r for r in fc.results if r.function == "tag-on-upload"]
        assert uploaded and all(not r.ok and f"AUTOTAG_RULES {location}" in r.error_message for r in uploaded)


def test_rules_kept_in_the_state_bucket_are_read_by_every_function_and_written_by_no_uploader() -> None:
    """The rules where docs/rules.md keeps them: the state bucket's rules.json. Every function reads them
    under its template role (tag on upload, the sweep, the backfill's processor); an uploader's write there
    is refused by RAM, and its rules in the tagged bucket's .autotag/ are never read."""
    rules = f"oss://{STATE_BUCKET}/{RULES_KEY}"
    with template_cloud(AUTOTAG_RULES=rules, AUTOTAG_RULES_MAX_AGE="0") as (oss, fc, admin):
        state = oss2.Bucket(admin.auth, oss.endpoint, STATE_BUCKET)
        state.put_object(RULES_KEY, DEFAULT_RULES)
        admin.put_object("a.jpg", b"x")
        admin.put_object("old/b.jpg", b"x")
        assert oss.notifier.drain(600) and fc.drain(600)
        failed = [r.error_message[:300] for r in fc.results if not r.ok]
        assert readable(tags(admin, "a.jpg")) == DERIVED, failed
        admin.delete_object_tagging("old/b.jpg")  # as if it predated the trigger: the backfill's to tag

        forger = uploader(oss)
        with pytest.raises(oss2.exceptions.ServerError) as denied:
            oss2.Bucket(forger.auth, oss.endpoint, STATE_BUCKET).put_object(RULES_KEY, NO_RULES)
        assert (denied.value.status, denied.value.code) == (403, "AccessDenied")
        forger.put_object(".autotag/rules.json", NO_RULES)

        oss.clock.advance(timedelta(days=1))
        summary = sweep(oss, fc, {"buckets": [BUCKET], "full": True})
        (report,) = summary["sweeps"]  # type: ignore[index]
        assert report["complete"] and report["tagsRemoved"] == 0, report
        assert readable(tags(admin, "a.jpg")) == DERIVED
        batch = {"Items": [{"Key": "old/b.jpg"}], "BatchInput": {"Bucket": BUCKET}}  # a flow's Map batch
        processed = fc.invoke("tag-backfill", json.dumps(batch).encode())
        assert processed.ok, processed.error_message[:300]
        assert json.loads(processed.payload or "{}")["Counts"] == {"tagged": 1}, processed.payload
        assert readable(tags(admin, "old/b.jpg")) == DERIVED


# -- dead letters --------------------------------------------------------------------------------------------


def letter(number: int, function: str, payload: dict[str, object]) -> str:
    """A message as FC's on-failure destination writes it, as anyone allowed mns:SendMessage on the
    dead-letter queue can write it too."""
    service = TEMPLATE.function(function).service
    return json.dumps(
        {
            "id": f"forged-{number}",
            "timestamp": "2026-01-01T00:00:00Z",
            "requestContext": {
                "requestId": f"forged-{number}",
                "functionArn": f"acs:fc:cn-hangzhou:1234567890123456:services/{service}/functions/{function}",
                "condition": "RetriesExhausted",
                "approximateInvokeCount": 4,
            },
            "requestPayload": json.dumps(payload),
            "responseContext": {"statusCode": 200, "functionError": "Unhandled"},
            # what the terminal must show escaped: clear the screen, forge a line
            "responsePayload": json.dumps({"errorType": "Unhandled", "errorMessage": "x\x1b[2J\rok"}),
        }
    )


def test_a_forged_dead_letter_replays_only_what_the_functions_own_failures_leave(
    oss: LocalOSS, template_bucket: oss2.Bucket, tmp_path: Path
) -> None:
    """A producer who may send to the dead-letter queue writes letters for the sweep (a full pass of its
    own choosing, at 10,000 requests a second) and for the backfill (a batch of objects of its choosing).
    `autotag replay --file` of the queue's export runs with the operator's credentials: it re-drives only
    what those functions' own failures dead-letter — the template timer's payload or one shard of it; the
    backfill function, invoked only synchronously by its flows, leaves none — and refuses the rest, naming
    why, leaving it in the export."""
    pytest.importorskip(
        "alibabacloud_credentials", reason="the CLI is not part of the deployed code (FC-runtime test runs)"
    )
    from click.testing import CliRunner

    from autotag.sweep.checkpoint import Scope
    from autotag.sweep.fanout import shard_events
    from autotag.sweep.request import ShardRange, parse_timer_event
    from autotag_cli.main import cli

    template_bucket.put_object("a.jpg", b"x")
    moment = oss.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")
    (timer,) = TEMPLATE.function("tag-expiry").triggers
    forged_sweep = {"buckets": [BUCKET], "prefix": "a", "full": True, "qps": 10000, "workers": 64}
    forged = {"triggerTime": moment, "triggerName": "x", "payload": json.dumps(forged_sweep)}
    genuine = {"triggerTime": moment, "triggerName": timer.name, "payload": timer.payload}
    (shard,) = shard_events(parse_timer_event(json.dumps(genuine)), BUCKET, [ShardRange(1, 2, "m", None)])
    letters = [
        letter(1, "tag-expiry", forged),
        letter(2, "tag-backfill", {"Items": [{"Key": "a.jpg"}], "BatchInput": {"Bucket": BUCKET}}),
        letter(3, "tag-expiry", genuine),
        letter(4, "tag-expiry", json.loads(shard)),  # a shard the fan-out made of the timer's payload
    ]
    export = tmp_path / "export.jsonl"
    export.write_text("\n".join(letters) + "\n")
    environment = {"AUTOTAG_OSS_ENDPOINT": oss.endpoint, "COLUMNS": "250", "ALIBABA_CLOUD_ACCESS_KEY_ID": ""}
    command = ["replay", "--file", str(export), "--template", str(ROOT / "template.yml")]
    result = CliRunner().invoke(cli, command, env=environment)

    assert result.exit_code == 1 and "4 dead letters, 2 replayed, 2 failed" in result.output, result.output
    assert result.output.count("  replay: refused:") == 2, result.output
    (error,) = [line for line in result.output.splitlines() if line.startswith("Error: 2 of 4 dead letters")]
    assert error.count("refused:") == 2, result.output  # each named in the one error line too
    assert "\x1b" not in result.output and "x\\x1b[2J\\rok" in result.output, result.output
    state = oss2.Bucket(template_bucket.auth, oss.endpoint, STATE_BUCKET)
    swept = {o.key.split("/")[2] for o in oss2.ObjectIterator(state, prefix=".autotag/sweep/")}
    # the template timer's scope and its shard's, not the forged prefix's
    assert swept == {Scope(BUCKET).id, Scope(BUCKET, "", "m", None).id}, swept
    assert "the backfill function is invoked only synchronously" in result.output, result.output


# -- the sweep's inventory -----------------------------------------------------------------------------------


def manifest(source: str, destination: str, *data_files: tuple[str, int]) -> bytes:
    """A manifest.json in OSS's inventory format, naming `data_files` (key, size) in `destination`."""
    files = [{"key": key, "size": size, "MD5checksum": ""} for key, size in data_files]
    return json.dumps(
        {
            "sourceBucket": source,
            "destinationBucket": f"acs:oss:::{destination}",
            "fileFormat": "CSV",
            "fileSchema": "Key",
            "files": files,
            "creationTimestamp": "1700000000",
        }
    ).encode()


def test_an_inventory_in_a_bucket_uploaders_write_is_never_read() -> None:
    """An uploader who may also invoke the sweep (but not read the bucket) writes a manifest.json naming
    someone else's gzip CSV as its data file, and asks for a sweep planned from it: the first column of that
    file would come back as the shards' boundaries. The sweep reads an inventory only outside the buckets it
    sweeps, where uploaders write, and a manifest's data files only from the bucket holding it."""
    import gzip

    private = gzip.compress(b"".join(f"customer-{n:03d}\n".encode() for n in range(50)))
    with template_cloud() as (oss, fc, admin):
        admin.put_object("private/customers.csv.gz", private)
        forger = uploader(oss)
        forger.put_object(
            "evil/manifest.json", manifest(BUCKET, BUCKET, ("private/customers.csv.gz", len(private)))
        )
        assert oss.notifier.drain(600) and fc.drain(600)
        location = f"oss://{BUCKET}/evil/manifest.json"
        summary = sweep(oss, fc, {"buckets": [BUCKET], "shards": 8, "full": True, "inventory": location})
        shown = json.dumps(summary)
        assert "customer-" not in shown, summary
        (dispatched,) = summary["dispatched"]  # type: ignore[index]
        assert location in dispatched["error"] and "uploaders" in dispatched["error"], dispatched

        # The same manifest in the inventory bucket, pointing at the tagged bucket for its data file.
        inventory = oss2.Bucket(admin.auth, oss.endpoint, "autotag-demo-inventory")
        inventory.create_bucket()
        inventory.put_object(
            "x/manifest.json", manifest(BUCKET, BUCKET, ("private/customers.csv.gz", len(private)))
        )
        location = "oss://autotag-demo-inventory/x/manifest.json"
        summary = sweep(oss, fc, {"buckets": [BUCKET], "shards": 8, "full": True, "inventory": location})
        assert "customer-" not in json.dumps(summary), summary
        (dispatched,) = summary["dispatched"]  # type: ignore[index]
        assert "autotag-demo-inventory" in dispatched["error"] and BUCKET in dispatched["error"], dispatched


# -- forged events -------------------------------------------------------------------------------------------


def shapes(record: dict[str, object]) -> dict[str, object]:
    """`record` in every shape the upload function takes: what anyone allowed fc:InvokeFunction can send,
    and (the batches) what a producer allowed mns:SendMessage on the events queue gets delivered."""
    event = cloud_event(record, ACCOUNT)
    body = json.dumps(event)
    return {
        "native trigger": {"events": [record]},
        "CloudEvent": event,
        "RawData record": record,
        "batch of CloudEvents": [event, event],
        "batch of queue messages, base64": [
            queue_event(
                base64.b64encode(body.encode()).decode(), "oss-autotag-events", ACCOUNT, "cn-hangzhou"
            )
        ]
        * 2,
        "batch of queue messages carrying OSS notifications": [
            queue_event(
                json.dumps({"events": [record, record]}), "oss-autotag-events", ACCOUNT, "cn-hangzhou"
            )
        ],
    }


def upload_event(bucket: str, key: str, **fields: object) -> dict[str, object]:
    (record,) = oss_event_document(bucket, key, **fields)["events"]  # type: ignore[arg-type]
    return record  # type: ignore[no-any-return]


def test_a_forged_event_of_any_shape_is_refused_for_any_bucket_but_the_tagged_one() -> None:
    """Events naming the state bucket (the rules object the upload role may read) or a bucket of the
    console's test event, in every shape: each is `rejected` and no request reaches that bucket; the state
    bucket's objects keep no tag."""
    with template_cloud() as (oss, fc, admin):
        state = oss2.Bucket(admin.auth, oss.endpoint, STATE_BUCKET)
        state.put_object(RULES_KEY, DEFAULT_RULES)
        reached: list[str] = []
        oss.conditions.hooks.append(lambda request: reached.append(request.bucket))
        for bucket in (STATE_BUCKET, "oss-bucket"):
            for shape, payload in shapes(upload_event(bucket, RULES_KEY)).items():
                result = fc.invoke("tag-on-upload", json.dumps(payload).encode())
                assert result.ok, (shape, result.error_message)
                summary = json.loads(result.payload or "{}")
                outcomes = [r["outcome"] for r in summary["results"]]
                assert outcomes and set(outcomes) == {"rejected"}, (shape, summary)
        assert STATE_BUCKET not in reached and "oss-bucket" not in reached, reached
        assert not state.get_object_tagging(RULES_KEY).tag_set.tagging_rule


def test_a_forged_event_naming_another_objects_version_or_a_link_elsewhere_tags_by_oss_answers() -> None:
    """On a versioned bucket, an event for a.jpg carrying b.txt's version id: OSS answers that a.jpg has no
    such version, and nothing is written (b.txt's version keeps no tag). A symlink an uploader points at
    someone else's object: the link is tagged from what OSS answers for it (its target's content), the
    target itself is not written."""
    with template_cloud() as (oss, fc, admin):
        admin.put_bucket_versioning(oss2.models.BucketVersioningConfig("Enabled"))
        other = admin.put_object("b.txt", b"y" * 2_000_000).versionid
        assert oss.notifier.drain(600) and fc.drain(600)
        admin.delete_object_tagging("b.txt", params={"versionId": other})
        admin.put_object("a.jpg", b"x")
        assert oss.notifier.drain(600) and fc.drain(600)
        forged = {"events": [upload_event(BUCKET, "a.jpg", version_id=other, size=1)]}
        (result,) = json.loads(fc.invoke("tag-on-upload", json.dumps(forged).encode()).payload or "{}")[
            "results"
        ]
        assert result["outcome"] == "skipped" and "gone" in result["reason"], result
        assert tags(admin, "b.txt", other) == {}

        uploader(oss).put_symlink("b.txt", "c/link.jpg")
        assert oss.notifier.drain(600) and fc.drain(600)
        (link,) = [v for v in admin.list_object_versions(prefix="c/").versions]
        assert readable(tags(admin, "c/link.jpg", link.versionid)) == {
            "kind": "image",
            "size": "medium",  # the target's 2 MB, as OSS answers a HEAD of the link
            "autotag": "kind size",
        }
        assert tags(admin, "b.txt", other) == {}


def test_a_forged_batch_redrives_each_failing_element_once_alone_and_nothing_further() -> None:
    """A producer sends a batch of five copies of one element whose object OSS keeps refusing (the
    re-drive's trigger), plus one naming another function's bucket. Each failing copy is re-driven once,
    alone, to this function only (AUTOTAG_REDRIVE_FUNCTION: the template's, never the event's); a
    re-driven element is a batch of one and is never re-driven again, so five elements cost five
    invocations (and FC's retries of each), then five letters: no loop, no amplification."""
    with template_cloud() as (oss, fc, admin):
        admin.put_object("stuck.jpg", b"x")
        assert oss.notifier.drain(600) and fc.drain(600)
        fc.results.clear()

        def refuse(request: object) -> None:
            if getattr(request, "key", "") == "stuck.jpg" and getattr(request, "api", "") == "HeadObject":
                raise OssError(503, "ServiceUnavailable", "Please reduce your request rate.")

        oss.conditions.hooks.append(refuse)
        before = fc.invocations
        element = cloud_event(upload_event(BUCKET, "stuck.jpg"), ACCOUNT)
        batch = [element] * 5 + [cloud_event(upload_event(STATE_BUCKET, RULES_KEY), ACCOUNT)]
        pushed = fc.invoke("tag-on-upload", json.dumps(batch).encode())
        assert pushed.ok, pushed.error_message
        assert [d["element"] for d in json.loads(pushed.payload or "{}")["redriven"]] == [0, 1, 2, 3, 4]
        assert fc.drain(600)
        redriven = [r for r in fc.results if r is not pushed and r.function == "tag-on-upload"]
        assert {r.service for r in fc.results} == {"oss-autotag"}
        assert len(redriven) == 5 and all(not r.ok and r.attempts == 4 for r in redriven)  # FC's 3 retries
        assert fc.invocations - before == 1 + 5 * 4
        letters = fc.dead_letters.all()
        assert len(letters) == 5 and all(len(json.loads(letter.payload)) == 1 for letter in letters)


# -- the ownership record ------------------------------------------------------------------------------------


def test_a_record_an_uploader_copies_or_replays_gives_the_system_only_what_the_rules_derive() -> None:
    """An uploader copies a tagged object's tags, record included, onto a new upload of another key and
    onto a new upload of the same key, and replays an older version's onto a newer version: a record whose
    seal holds makes the system own exactly the values it sealed (as CopyObject's copied tags do), and it
    then writes what the rules derive from OSS's answers for that object: the copied `project` goes, the
    size is the new object's. A tag of the uploader's own, without a record, is never taken or removed,
    by the upload function or by a full sweep."""
    with template_cloud() as (oss, fc, admin):
        forger = uploader(oss)
        admin.put_object("projects/alpha/a.jpg", b"x")
        assert oss.notifier.drain(600) and fc.drain(600)
        original = tags(admin, "projects/alpha/a.jpg")
        assert readable(original) == {**DERIVED, "project": "alpha", "autotag": "kind project size"}
        copied = {"x-oss-tagging": encode_tagging_header({**original, "team": "mine"})}
        big = b"y" * 2_000_000  # "medium"
        forger.put_object("b.jpg", big, headers=copied)
        forger.put_object("projects/alpha/a.jpg", big, headers=copied)
        assert oss.notifier.drain(600) and fc.drain(600)
        expected = {"kind": "image", "size": "medium", "team": "mine", "autotag": "kind size"}
        assert readable(tags(admin, "b.jpg")) == expected
        assert readable(tags(admin, "projects/alpha/a.jpg")) == {**expected, "project": "alpha"} | {
            "autotag": "kind project size"
        }

        admin.put_bucket_versioning(oss2.models.BucketVersioningConfig("Enabled"))
        first = admin.put_object("v.jpg", b"x").versionid
        assert oss.notifier.drain(600) and fc.drain(600)
        older = {"x-oss-tagging": encode_tagging_header(tags(admin, "v.jpg", first))}
        newer = forger.put_object("v.jpg", big, headers=older).versionid
        assert oss.notifier.drain(600) and fc.drain(600)
        assert readable(tags(admin, "v.jpg", newer)) == {
            "kind": "image",
            "size": "medium",
            "autotag": "kind size",
        }

        oss.clock.advance(timedelta(days=1))
        summary = sweep(oss, fc, {"buckets": [BUCKET], "full": True})
        (report,) = summary["sweeps"]  # type: ignore[index]
        assert report["complete"] and report["tagsRemoved"] == 0, report
        assert tags(admin, "b.jpg")["team"] == "mine"


# -- forged timer invocations --------------------------------------------------------------------------------


def test_forged_timer_payloads_never_stop_the_timers_sweep_from_removing_an_expired_tag() -> None:
    """Whoever may invoke the sweep sends payloads of their own after a pass: a dry run, another prefix, a
    shard range, a clock long past, a bucket the function does not sweep, 10,000 requests a second. Each
    is its own scope (own checkpoint) or changes nothing; none marks the timer's scope swept, so its next
    run still removes the tag whose TTL passed."""
    with template_cloud() as (oss, fc, admin):
        admin.put_object("tmp/scratch.csv", b"x")
        assert oss.notifier.drain(600) and fc.drain(600)
        assert tags(admin, "tmp/scratch.csv")["lifecycle"] == "temporary"
        (first,) = sweep(oss, fc, {"buckets": [BUCKET]})["sweeps"]  # type: ignore[index]
        assert first["complete"], first

        oss.clock.advance(timedelta(days=8))
        shard = {"index": 0, "count": 2, "startAt": "", "endBefore": "tmp/"}
        for payload in (
            {"buckets": [BUCKET], "dryRun": True, "full": True},
            {"buckets": [BUCKET], "prefix": "tmp/q", "qps": 10000, "workers": 64},
            {"buckets": [BUCKET], "shard": shard},
            {"buckets": [STATE_BUCKET, "autotag-demo-inventory"]},
        ):
            summary = sweep(oss, fc, payload)
            assert "error" not in summary, (payload, summary)
        stale = json.loads(timer_at(oss, {"buckets": [BUCKET]}))
        stale["triggerTime"] = "2001-01-01T00:00:00Z"
        result = fc.invoke("tag-expiry", json.dumps(stale).encode())
        (old,) = json.loads(result.payload or "{}")["sweeps"]
        assert old["stopped"] == "already swept up to this time with these rules", old
        assert tags(admin, "tmp/scratch.csv")["lifecycle"] == "temporary"  # the dry run wrote nothing

        (report,) = sweep(oss, fc, {"buckets": [BUCKET]})["sweeps"]  # type: ignore[index]
        assert report["complete"] and report["tagsRemoved"] == 1, report
        assert "lifecycle" not in tags(admin, "tmp/scratch.csv")
