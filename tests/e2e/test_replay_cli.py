"""One CLI for live and replay: console-identical events, in-process invocations, re-driving dead letters,
and `autotag local up` running the whole local cloud in its own process."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import oss2
import pytest
from click.testing import CliRunner
from conftest import STS, LocalCloudProcess, readable, sealed_header, tags_of, wait_for_tag

from autotag.events import parse_oss_event
from autotag.sweep.request import parse_timer_event
from autotag_cli.main import cli
from autotag_cli.replay import with_provenance
from localcloud.fc import DeadLetterStore, LocalFC, load_template
from localcloud.oss import FaultRule, LocalOSS

ROOT = Path(__file__).parents[2]
TEMPLATE = str(ROOT / "template.yml")


def run(oss: LocalOSS, *args: str, stdin: str | None = None, width: int = 220) -> tuple[int, str]:
    env = {"AUTOTAG_OSS_ENDPOINT": oss.endpoint, "COLUMNS": str(width), "ALIBABA_CLOUD_ACCESS_KEY_ID": ""}
    result = CliRunner().invoke(cli, list(args), env=env, input=stdin, terminal_width=width)
    return result.exit_code, result.output


def error_line(output: str) -> str:
    """The command's one `Error:` line."""
    (line,) = [line for line in output.splitlines() if line.startswith("Error:")]
    return line


def test_event_then_invoke_tags_the_object(oss: LocalOSS, template_bucket: oss2.Bucket) -> None:
    bucket = template_bucket
    bucket.put_object("projects/p/a.mp4", b"x" * 10)
    code, event = run(
        oss, "event", "oss", "--bucket", bucket.bucket_name, "--key", "projects/p/a.mp4", "--size", "10"
    )
    assert code == 0, event
    (record,) = parse_oss_event(event)  # the printed event passes the function's own schema
    assert (record.bucket, record.key, record.size) == (bucket.bucket_name, "projects/p/a.mp4", 10)
    code, output = run(oss, "invoke", "tag-on-upload", "--event", "-", "--template", TEMPLATE, stdin=event)
    assert code == 0, output
    assert json.loads(output)["results"][0]["outcome"] == "tagged"
    assert tags_of(bucket, "projects/p/a.mp4")["project"] == "p"


def test_timer_event_then_invoke_runs_the_sweep(oss: LocalOSS, template_bucket: oss2.Bucket) -> None:
    bucket = template_bucket
    bucket.put_object(
        "tmp/x", b"x", headers={"x-oss-tagging": sealed_header({"lifecycle": "temporary"}, "lifecycle")}
    )
    oss.clock.advance(timedelta(days=8))  # a week and a day later, on the local cloud's clock
    later = oss.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")
    payload = json.dumps({"buckets": [bucket.bucket_name]})
    code, event = run(oss, "event", "timer", "--trigger-time", later, "--payload", payload)
    assert code == 0 and json.loads(event)["triggerTime"] == later
    code, output = run(oss, "invoke", "tag-expiry", "--event", "-", "--template", TEMPLATE, stdin=event)
    assert code == 0, output
    assert json.loads(output)["sweeps"][0]["tagsRemoved"] == 1 and readable(tags_of(bucket, "tmp/x")) == {}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["event", "oss", "--bucket", "bkt", "--key", "k", "--event-name", "Bogus"],
            "is not an OSS event name",
        ),
        (["event", "timer", "--trigger-time", "soon"], "'soon' is not an ISO-8601 time"),
        (["event", "timer", "--payload", "{bad"], "--payload: payload is not JSON: Expecting property name"),
        (["event", "timer", "--payload", '{"bucket": "b"}'], "payload: 'buckets' is a required property"),
        (["invoke", "nope", "--event", "-", "--template", TEMPLATE], "no function 'nope'"),
        (
            ["invoke", "tag-on-upload", "--event", "-", "--template", "/nowhere.yml"],
            "no template at /nowhere.yml",
        ),
    ],
)
def test_bad_input_is_a_clear_error(oss: LocalOSS, args: list[str], message: str) -> None:
    code, output = run(oss, *args, stdin="{}")
    assert code != 0 and message in output, output


@pytest.mark.parametrize("moment", ["2000-01-01T00:00:00Z", "2999-12-31T23:59:59Z"])
def test_a_timer_event_is_one_the_function_takes(oss: LocalOSS, moment: str) -> None:
    code, event = run(oss, "event", "timer", "--trigger-time", moment)
    assert code == 0, event
    assert json.loads(event)["triggerTime"] == moment
    assert parse_timer_event(event).trigger_time == datetime.fromisoformat(moment.replace("Z", "+00:00"))


@pytest.mark.parametrize(
    ("moment", "why"),
    [
        ("0999", "'0999' is not an ISO-8601 time"),
        ("0999-01-01", "0999-01-01T00:00:00Z is before 2000-01-01"),
        ("9999-12-31T23:59:59", "9999-12-31T23:59:59Z is after 2999-12-31"),
    ],
)
def test_a_timer_event_at_a_time_no_timer_fires_is_refused(oss: LocalOSS, moment: str, why: str) -> None:
    """Named as ISO-8601 writes it (four-digit years), on one line naming the option."""
    code, output = run(oss, "event", "timer", "--trigger-time", moment)
    assert code == 2, output
    (line,) = [line for line in output.splitlines() if line.startswith("Error:")]
    assert "--trigger-time" in line and why in line, output


def test_invoking_a_malformed_event_names_the_field(oss: LocalOSS) -> None:
    code, output = run(
        oss, "invoke", "tag-on-upload", "--event", "-", "--template", TEMPLATE, stdin='{"events": 3}'
    )
    assert code == 1 and "events: 3 is not of type 'array'" in output


def test_dead_letters_are_replayed_with_provenance(
    oss: LocalOSS, template_bucket: oss2.Bucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = template_bucket
    store = tmp_path / "dead-letters.jsonl"
    fc = LocalFC(
        load_template(TEMPLATE),
        environment={"AUTOTAG_OSS_ENDPOINT": oss.endpoint},
        dead_letters=DeadLetterStore(store),
        retry_base_seconds=0.01,
    )
    with fc:
        oss.subscribe(
            bucket.bucket_name, ["oss:ObjectCreated:*"], lambda p: fc.invoke_async("tag-on-upload", p)
        )
        oss.conditions.set_faults([FaultRule("throttle", 1.0, frozenset({"HeadObject", "GetObjectTagging"}))])
        bucket.put_object("late.jpg", b"x")
        assert oss.notifier.drain(600) and fc.drain(600)
        oss.conditions.set_faults([])
    (letter,) = DeadLetterStore(store).all()
    assert letter.attempts == 4 and readable(tags_of(bucket, "late.jpg")) == {}
    (replayed,) = parse_oss_event(with_provenance(letter))
    assert replayed.replay_of == letter.request_id  # echoed as `replayOf` in the summary and the log

    code, output = run(oss, "replay", "--store", str(store), "--dry-run", "--template", TEMPLATE)
    assert code == 0 and "would replay" in output and "late.jpg" in output
    assert readable(tags_of(bucket, "late.jpg")) == {}

    export = tmp_path / "mns-export.jsonl"
    export.write_text(store.read_text())
    code, output = run(oss, "replay", "--store", str(store), "--template", TEMPLATE)
    assert code == 0, output
    assert "1 dead letters, 1 replayed, 0 failed" in output
    assert tags_of(bucket, "late.jpg")["kind"] == "image"
    assert DeadLetterStore(store).all() == []  # replayed letters leave the store

    # Replaying the same event again (here from an MNS export) is idempotent: nothing changes.
    before = tags_of(bucket, "late.jpg")
    code, output = run(oss, "replay", "--file", str(export), "--template", TEMPLATE)
    assert code == 0 and "1 replayed" in output and tags_of(bucket, "late.jpg") == before


def test_replay_of_a_bad_export_says_which_line(oss: LocalOSS, tmp_path: Path) -> None:
    export = tmp_path / "export.jsonl"
    export.write_text('{"requestContext": {}}\n')
    code, output = run(oss, "replay", "--file", str(export), "--template", TEMPLATE)
    assert code == 2 and "export.jsonl:1: not an FC destination message" in output


def test_a_letter_whose_earlier_reasons_are_malformed_is_a_clear_error(oss: LocalOSS, tmp_path: Path) -> None:
    letter = {
        "requestContext": {"requestId": "r", "functionArn": "f", "approximateInvokeCount": 1},
        "requestPayload": "{}",
        "autotagEarlierErrors": [{"errorType": "E"}],
    }
    export = tmp_path / "export.jsonl"
    export.write_text(json.dumps(letter) + "\n")
    code, output = run(oss, "replay", "--file", str(export), "--template", TEMPLATE)
    assert code == 2 and "export.jsonl:1: not an FC destination message" in error_line(output), output
    assert "Traceback" not in output


def test_a_dead_letter_of_a_same_named_function_elsewhere_is_not_replayed_into_the_template_one(
    oss: LocalOSS, template_bucket: oss2.Bucket, tmp_path: Path
) -> None:
    # FC names a function by service and name: a letter of `elsewhere/tag-on-upload` is not oss-autotag's.
    template_bucket.put_object("in/a.txt", b"x")
    code, event = run(oss, "event", "oss", "--bucket", "autotag-demo", "--key", "in/a.txt", "--size", "1")
    assert code == 0, event
    letter = {
        "requestContext": {
            "requestId": "r-elsewhere",
            "functionArn": "acs:fc:cn-hangzhou:1234567890123456:services/elsewhere/functions/tag-on-upload",
            "approximateInvokeCount": 1,
        },
        "requestPayload": event,
        "responsePayload": json.dumps({"errorType": "E", "errorMessage": "m"}),
    }
    export = tmp_path / "export.jsonl"
    export.write_text(json.dumps(letter) + "\n")
    code, output = run(oss, "replay", "--file", str(export), "--template", TEMPLATE)
    assert code == 1 and "no function 'tag-on-upload' in service 'elsewhere'" in " ".join(output.split())
    assert "no function 'tag-on-upload' in service 'elsewhere'" in error_line(output), output
    assert readable(tags_of(template_bucket, "in/a.txt")) == {}


def test_local_up_runs_the_whole_pipeline_in_its_own_process(local_up: LocalCloudProcess) -> None:
    assert "tag-on-upload, tag-expiry" in local_up.banner[1]
    auth = oss2.StsAuth(STS.access_key_id, STS.access_key_secret, STS.security_token)
    bucket = oss2.Bucket(auth, local_up.oss_endpoint, "autotag-demo")
    bucket.put_object("projects/z/doc.pdf", b"%PDF")
    assert wait_for_tag(bucket, "projects/z/doc.pdf", "kind")["kind"] == "document"


def test_a_replay_that_oss_refuses_keeps_its_letter_and_fails(oss: LocalOSS, tmp_path: Path) -> None:
    """The function answers, but its result says OSS refused the object (the bucket is gone): the replay
    is not done. The command names the bucket and OSS's code, exits 1, and the letter stays in the store
    with its new reason; nothing is lost."""
    from autotag_cli.events import oss_event_document

    store = tmp_path / "dead-letters.jsonl"
    letter = DeadLetterStore(store).put(
        "acs:fc:cn-hangzhou:1234567890123456:services/oss-autotag/functions/tag-on-upload",
        "req-gone",
        json.dumps(oss_event_document("autotag-demo", "late.jpg", size=1)).encode(),
        "UnhandledInvocationError",
        "RetryableFailure: 1 of 1 object failed (OSS kept failing)",
        4,
    )
    code, output = run(oss, "replay", "--store", str(store), "--template", TEMPLATE)
    assert code == 1, output
    assert "1 dead letters, 0 replayed, 1 failed" in output, output
    assert "autotag-demo" in error_line(output) and "NoSuchBucket" in error_line(output), output
    (kept,) = DeadLetterStore(store).all()
    assert kept.id == letter.id and kept.payload == letter.payload
    assert "NoSuchBucket" in kept.error_message and "autotag-demo" in kept.error_message
    first = ("UnhandledInvocationError", "RetryableFailure: 1 of 1 object failed (OSS kept failing)")
    assert kept.first_error == first  # why FC dead-lettered it, kept beside the latest reason

    # Replayed again, and again not done: the letter still says why it was dead-lettered at first.
    code, output = run(oss, "replay", "--store", str(store), "--template", TEMPLATE, "--json")
    assert code == 1 and "NoSuchBucket" in error_line(output), output
    (kept,) = DeadLetterStore(store).all()
    assert kept.first_error == first and "NoSuchBucket" in kept.error_message
    (row,) = json.loads(output.splitlines()[0])["letters"]
    assert row["firstError"] == first[1] and "NoSuchBucket" in row["error"]


def test_a_replay_that_fails_again_names_its_letter_whole_at_80_columns(
    oss: LocalOSS, tmp_path: Path
) -> None:
    """At 80 columns what an operator copies into the next command (the store's path, the request id,
    the object, OSS's code) is on one line each, never folded by the table."""
    from autotag_cli.events import oss_event_document

    folder = tmp_path / "a-folder-whose-name-is-long-enough-to-be-folded" / "at-eighty-columns"
    store = folder / "dead-letters.jsonl"
    key = "projects/a-long-project-name/renders/final/frame-000123.exr"
    letter = DeadLetterStore(store).put(
        "acs:fc:cn-hangzhou:1234567890123456:services/oss-autotag/functions/tag-on-upload",
        "1f0e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
        json.dumps(oss_event_document("autotag-demo", key, size=1)).encode(),  # no such bucket here
        "UnhandledInvocationError",
        "RetryableFailure: 1 of 1 object failed (OSS kept failing)",
        4,
    )
    code, output = run(oss, "replay", "--store", str(store), "--template", TEMPLATE, width=80)
    assert code == 1, output
    lines = output.splitlines()
    for whole in (str(store), letter.request_id, letter.id, f"autotag-demo/{key}"):
        assert any(whole in line for line in lines), (whole, output)
    assert any(f"autotag-demo/{key}" in line and "NoSuchBucket" in line for line in lines), output
    assert "NoSuchBucket" in error_line(output) and f"autotag-demo/{key}" in error_line(output)
