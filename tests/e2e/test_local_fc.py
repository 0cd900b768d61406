"""The local FC runs template.yml's functions as FC would: OSS triggers, timer triggers, asynchronous
retries and the dead-letter store. Nothing here calls a handler directly."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import oss2
import pytest
from conftest import readable, tags_of

from localcloud.fc import (
    DeadLetterStore,
    LocalFC,
    ScheduleError,
    TemplateError,
    load_template,
    parse_schedule,
)
from localcloud.oss import FaultRule, LocalOSS

ROOT = Path(__file__).parents[2]


@pytest.fixture
def cloud(
    oss: LocalOSS, tmp_path: Path, template_bucket: oss2.Bucket
) -> Iterator[tuple[LocalFC, oss2.Bucket]]:
    """template.yml on the local FC, its OSS trigger wired to the session's local OSS."""
    template = load_template(ROOT / "template.yml")
    fc = LocalFC(
        template,
        environment={"AUTOTAG_OSS_ENDPOINT": oss.endpoint, "AUTOTAG_FANOUT": "in-process"},
        dead_letters=DeadLetterStore(tmp_path / "dead-letters.jsonl"),
        retry_base_seconds=0.01,
        clock=oss.clock,  # one clock for the local cloud, as `autotag local up` has
    )
    with fc:
        fc.wire_oss(oss)
        yield fc, template_bucket


def settle(oss: LocalOSS, fc: LocalFC) -> None:
    assert oss.notifier.drain(600)
    assert fc.drain(600)


def test_an_upload_is_tagged_through_the_oss_trigger(
    cloud: tuple[LocalFC, oss2.Bucket], oss: LocalOSS
) -> None:
    fc, bucket = cloud
    bucket.put_object("projects/x/a.jpg", b"x", headers={"x-oss-tagging": "team=t"})
    settle(oss, fc)
    assert readable(tags_of(bucket, "projects/x/a.jpg")) == {
        "team": "t",
        "kind": "image",
        "project": "x",
        "size": "small",
        "autotag": "kind project size",
    }
    # Exactly one invocation: PutObjectTagging causes no OSS event, so tagging never triggers it again.
    (result,) = [r for r in fc.results if r.function == "tag-on-upload"]
    assert result.ok and json.loads(result.payload or "")["results"][0]["outcome"] == "tagged"


def test_a_failing_invocation_is_retried_then_dead_lettered(
    cloud: tuple[LocalFC, oss2.Bucket], oss: LocalOSS
) -> None:
    fc, bucket = cloud
    oss.conditions.set_faults([FaultRule("error", 1.0, frozenset({"HeadObject", "GetObjectTagging"}))])
    bucket.put_object("broken.txt", b"x")
    settle(oss, fc)
    oss.conditions.set_faults([])
    (letter,) = fc.dead_letters.all()
    assert letter.attempts == 4  # the first attempt and MaxAsyncRetryAttempts: 3
    assert letter.function == "tag-on-upload" and letter.error_type == "UnhandledInvocationError"
    assert "RetryableFailure" in letter.error_message and "broken.txt" in letter.error_message
    assert json.loads(letter.payload)["events"][0]["oss"]["object"]["key"] == "broken.txt"
    assert readable(tags_of(bucket, "broken.txt")) == {}
    # The dead letter is the original event: invoking it again, now that OSS works, tags the object.
    result = fc.invoke(letter.function, letter.payload.encode())
    assert result.ok and tags_of(bucket, "broken.txt")["kind"] == "text"


def test_the_timer_trigger_fires_the_sweep(cloud: tuple[LocalFC, oss2.Bucket], oss: LocalOSS) -> None:
    fc, bucket = cloud
    bucket.put_object("tmp/scratch.csv", b"x")
    settle(oss, fc)
    assert tags_of(bucket, "tmp/scratch.csv")["lifecycle"] == "temporary"
    oss.clock.advance(timedelta(days=8))  # the local cloud, a week and a day later
    fc.fire_timer("tag-expiry")
    settle(oss, fc)
    # The schedule fires too once the clock has moved on (as FC would have during the week), so whether it
    # does before settle() returns depends on the machine's speed: every sweep that ran ends well, and the
    # expired tag is removed once.
    sweeps = [r for r in fc.results if r.function == "tag-expiry"]
    assert sweeps and all(sweep.ok for sweep in sweeps), [s.error_message for s in sweeps]
    assert removed_by(sweeps) == 1
    assert "lifecycle" not in tags_of(bucket, "tmp/scratch.csv")


def test_two_sweeps_fired_at_once_remove_an_expired_tag_once(
    cloud: tuple[LocalFC, oss2.Bucket], oss: LocalOSS
) -> None:
    """A timer fire beside a manual one (or a retry beside a late tick): the sweeps overlap and both end
    well; the lease keeps them from sweeping the same scope twice."""
    fc, bucket = cloud
    bucket.put_object("tmp/scratch.csv", b"x")
    settle(oss, fc)
    oss.clock.advance(timedelta(days=8))
    fc.fire_timer("tag-expiry")
    fc.fire_timer("tag-expiry")
    settle(oss, fc)
    sweeps = [r for r in fc.results if r.function == "tag-expiry"]
    assert len(sweeps) >= 2 and all(sweep.ok for sweep in sweeps), [s.error_message for s in sweeps]
    assert removed_by(sweeps) == 1
    assert "lifecycle" not in tags_of(bucket, "tmp/scratch.csv")


def removed_by(sweeps: list[Any]) -> int:
    """The tags the sweeps' answers say they removed, all scopes together."""
    answers = [json.loads(sweep.payload or "") for sweep in sweeps]
    return sum(scope.get("tagsRemoved", 0) for answer in answers for scope in answer.get("sweeps", []))


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("0 0 3 * * *", "2026-01-01T00:00:00+00:00", "2026-01-01T03:00:00+00:00"),
        ("CRON_TZ=Asia/Shanghai 0 0 3 * * *", "2026-01-01T00:00:00+00:00", "2026-01-01T19:00:00+00:00"),
        ("0 */15 * * * *", "2026-01-01T00:07:00+00:00", "2026-01-01T00:15:00+00:00"),
        ("@every 1h30m", "2026-01-01T00:00:00+00:00", "2026-01-01T01:30:00+00:00"),
    ],
)
def test_fc_schedules(expression: str, after: str, expected: str) -> None:
    moment = parse_schedule(expression).next_after(datetime.fromisoformat(after))
    assert moment == datetime.fromisoformat(expected)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("0 3 * * *", "FC cron has 6 fields"),
        ("CRON_TZ=Mars/Base 0 0 3 * * *", "unknown time zone 'Mars/Base'"),
        ("@every soon", "`@every` takes a duration"),
        ("@every 10s", "at most once a minute"),
        ("0 0 25 * * *", "not a valid cron expression"),
    ],
)
def test_bad_schedules_say_why(expression: str, message: str) -> None:
    with pytest.raises(ScheduleError, match=message):
        parse_schedule(expression)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.replace("Handler: tag_on_upload.handler", "Handler: 42"), "Handler: 42 is not a str"),
        (
            lambda t: t.replace("CodeUri: './functions'", "CodeUri: './nowhere'", 1),
            "CodeUri: .* is not a folder",
        ),
        (
            lambda t: t.replace("Type: Timer", "Type: Carrier-Pigeon"),
            "'Carrier-Pigeon' triggers are not supported",
        ),
        (lambda t: t.replace("Transform: 'Aliyun::Serverless-2018-04-03'", ""), "Transform must be"),
        (lambda t: t + "\n  : [", "not valid YAML"),
        # RAM policies the local cloud could not enforce exactly are refused, naming the statement
        (
            lambda t: t.replace("'oss:ListObjectVersions'", "'oss:ListObjectVersion'"),
            r"Resources.oss-autotag-expiry.Properties.Policies\[0\], statement 1.Action: "
            r"'oss:ListObjectVersion' matches no oss action",
        ),
        (
            lambda t: t.replace("      Policies:\n", "      Policies:\n        - AliyunOSSFullAccess\n", 1),
            r"Policies\[0\]: 'AliyunOSSFullAccess' names a system policy",
        ),
        (
            lambda t: t.replace(
                "          Statement:\n",
                "          Statement:\n            - Effect: Allow\n"
                "              Action: 'oss:GetObject'\n              Resource: '*'\n"
                "              Condition: {StringEqualsIfExists: {'oss:Prefix': 'a/'}}\n",
                1,
            ),
            r"statement 1.Condition: operator 'StringEqualsIfExists' is not one the local cloud evaluates",
        ),
        (
            lambda t: t.replace(
                "      Policies:\n", "      Role: 'acs:ram::1:role/elsewhere'\n      Nope:\n", 1
            ),
            r"Properties.Role: the local cloud cannot see what acs:ram::1:role/elsewhere grants",
        ),
        # every bucket a trigger, pattern or timer payload names is one its function acts on
        (
            lambda t: t.replace("BucketName: autotag-demo", "BucketName: my-photos"),
            r"tag-on-upload.Events.on-object-created.Properties.BucketName: 'my-photos' is not in the "
            r"function's AUTOTAG_BUCKETS \('autotag-demo'\)",
        ),
        (
            lambda t: t.replace('{"buckets": ["autotag-demo"]', '{"buckets": ["my-photos"]'),
            r"tag-expiry.Events.nightly-expiry.Properties.Payload: 'my-photos' is not in the function's "
            r"AUTOTAG_BUCKETS",
        ),
        (
            lambda t: t.replace(
                "- prefix: 'acs:oss:cn-hangzhou:1234567890123456:autotag-demo/'",
                "- prefix: 'acs:oss:cn-hangzhou:1234567890123456:my-photos/'",
            ),
            r"Resources.oss-events-to-queue.Properties.FilterPattern: 'my-photos' is not in the "
            r"AUTOTAG_BUCKETS of tag-on-upload, whose trigger oss-events-batched reads the queue",
        ),
        (
            lambda t: t.replace(
                "        subject:\n"
                "          - prefix: 'acs:oss:cn-hangzhou:1234567890123456:autotag-demo/'\n",
                "",
            ),
            r"Resources.oss-events-to-queue.Properties.FilterPattern: names no bucket",
        ),
        (
            lambda t: t.replace(
                '"oss:ObjectCreated:PutObject", "oss:ObjectCreated:PostObject"',
                '"oss:ObjectRemoved:DeleteObject", "oss:ObjectCreated:PostObject"',
            ),
            r"oss-events-via-eventbridge.Properties.EventRuleFilterPattern.type: 'oss:ObjectRemoved:"
            r"DeleteObject' creates no object",
        ),
        (
            lambda t: t.replace('queues/oss-autotag-events"]', 'queues/elsewhere"]'),
            r"oss-events-batched.Properties.EventRuleFilterPattern.subject: .*names another queue than "
            r"its own, oss-autotag-events",
        ),
    ],
)
def test_bad_templates_name_the_resource(tmp_path: Path, edit: object, message: str) -> None:
    text = (ROOT / "template.yml").read_text()
    (tmp_path / "functions").symlink_to(ROOT / "functions")
    path = tmp_path / "template.yml"
    path.write_text(edit(text))  # type: ignore[operator]
    with pytest.raises(TemplateError, match=message):
        load_template(path)


def test_timer_triggers_fire_on_their_schedule(
    oss: LocalOSS, tmp_path: Path, template_bucket: oss2.Bucket
) -> None:
    """The scheduler itself (not fire_timer): a every-second cron fires within a couple of seconds, with
    the trigger's payload and a triggerTime on the schedule."""
    text = (ROOT / "template.yml").read_text()
    text = text.replace(
        "CronExpression: 'CRON_TZ=Asia/Shanghai 0 0 3 * * *'", "CronExpression: '* * * * * *'"
    )
    (tmp_path / "functions").symlink_to(ROOT / "functions")
    (tmp_path / "template.yml").write_text(text)
    fc = LocalFC(load_template(tmp_path / "template.yml"), environment={"AUTOTAG_OSS_ENDPOINT": oss.endpoint})
    with fc:
        fc.wire_oss(oss)
        deadline = time.monotonic() + 300  # the schedule fires every second; the sweep's answer may be slow
        while time.monotonic() < deadline and not any(r.function == "tag-expiry" for r in fc.results):
            time.sleep(0.1)
    fired = [json.loads(r.payload or "{}") for r in fc.results if r.function == "tag-expiry" and r.ok]
    assert fired and fired[0]["sweeps"][0]["bucket"] == template_bucket.bucket_name
    assert fired[0]["sweeps"][0]["clock"].endswith(".000Z")  # on a whole second, as the schedule says
