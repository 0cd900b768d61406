"""What FC refuses to deliver is never lost silently: an event over FC's payload limit (128 KB for an
asynchronous invocation, 32 MB for a synchronous one) never reaches the function; it becomes a dead letter
where the path that carried it sends its failures (the function's on-failure destination for an OSS trigger,
the trigger's dead-letter queue for EventBridge), or, where that path has none, is reported as undelivered.

The local OSS itself cannot publish such an event any more (user metadata is capped at 8 KB), so the events
here are handed to the local OSS's notifier and the local EventBridge as another producer would."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import oss2
import pytest
from conftest import template_variant

from cloudformats.oss_events import ObjectEvent
from localcloud.fc import DeadLetterStore, LocalFC, load_template
from localcloud.fc.runtime import (
    DEAD_LETTER,
    MAX_ASYNC_PAYLOAD,
    MAX_SYNC_PAYLOAD,
    UNDELIVERED,
    InvocationRecord,
)
from localcloud.oss import LocalOSS

ROOT = Path(__file__).parents[2]


@pytest.fixture
def start(oss: LocalOSS, template_bucket: oss2.Bucket) -> Iterator[list[LocalFC]]:
    started: list[LocalFC] = []
    yield started
    for fc in started:
        fc.stop()


def running(oss: LocalOSS, template: Path, started: list[LocalFC]) -> tuple[LocalFC, list[InvocationRecord]]:
    fc = LocalFC(
        load_template(template),
        environment={"AUTOTAG_OSS_ENDPOINT": oss.endpoint},
        dead_letters=DeadLetterStore(),
        retry_base_seconds=0.01,
    ).start()
    fc.wire_oss(oss)
    started.append(fc)
    records: list[InvocationRecord] = []
    fc.observers.append(records.append)
    return fc, records


def oversized_upload(size: int) -> ObjectEvent:
    """An upload event whose userMeta alone is `size` bytes."""
    return ObjectEvent(
        event_name="ObjectCreated:PutObject",
        bucket="autotag-demo",
        key="in/big-meta.txt",
        size=1,
        delta_size=1,
        etag="00",
        request_id="r-big",
        source_ip="127.0.0.1",
        mime_type="text/plain",
        user_meta={"x-oss-meta-big": "v" * size},
    )


def test_an_oss_trigger_event_over_128_kb_is_dead_lettered(oss: LocalOSS, start: list[LocalFC]) -> None:
    fc, records = running(oss, ROOT / "template.yml", start)
    assert oss.notifier.publish(oversized_upload(MAX_ASYNC_PAYLOAD)) == 1
    assert oss.notifier.drain(600) and fc.drain(600)
    assert fc.invocations == 0  # FC refused it: the function never ran
    (letter,) = fc.dead_letters.all()
    assert (letter.function, letter.error_type, letter.attempts) == ("tag-on-upload", "EntityTooLarge", 0)
    assert len(letter.payload) > MAX_ASYNC_PAYLOAD
    assert json.loads(letter.payload)["events"][0]["oss"]["object"]["key"] == "in/big-meta.txt"
    assert [r.kind for r in records] == [DEAD_LETTER]


def test_a_batch_over_32_mb_goes_to_the_trigger_dead_letter_queue(
    oss: LocalOSS, start: list[LocalFC], tmp_path: Path
) -> None:
    fc, records = running(oss, template_variant(tmp_path, "batched", count=1, seconds=0), start)
    fc.eventbridge.send_to_queue("oss-autotag-events", "x" * MAX_SYNC_PAYLOAD)  # another producer's message
    assert fc.drain(600)
    assert fc.invocations == 0
    (letter,) = fc.dead_letters.all()
    assert (letter.error_type, letter.attempts) == ("EntityTooLarge", 0)
    assert len(letter.payload) > MAX_SYNC_PAYLOAD
    assert [(r.kind, "oss-autotag-dlq" in r.note) for r in records] == [(DEAD_LETTER, True)]


def test_an_eventbridge_event_over_128_kb_without_a_dead_letter_queue_is_reported(
    oss: LocalOSS, start: list[LocalFC], tmp_path: Path
) -> None:
    # EventBridge drops what fails a trigger without a dead-letter queue: the local cloud says so out loud.
    fc, records = running(oss, template_variant(tmp_path, "eventbridge"), start)
    assert oss.notifier.publish(oversized_upload(MAX_ASYNC_PAYLOAD)) >= 1
    assert oss.notifier.drain(600) and fc.drain(600)
    assert fc.invocations == 0 and fc.dead_letters.all() == []
    assert [r.kind for r in records] == [UNDELIVERED]
    assert records[0].note.startswith("FC refused it (the payload is")
    assert len(fc.undelivered) == 1 and "no dead-letter queue" in fc.undelivered[0]
