"""Every shape an OSS event reaches the upload function in parses to the same ObjectEvents: the native
trigger's `{"events": [...]}`, one EventBridge CloudEvent, its RawData `data`, and event-streaming batches
of queue messages (CloudEvents or RawData, bodies plain or base64). Shapes and sources:
docs/tag-on-upload.md. A batch element that carries no OSS event is refused on its own, naming the field."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from autotag.events import EventError, parse_delivery
from cloudformats.oss_events import ObjectEvent as EmittedEvent
from cloudformats.oss_events import event_record
from localcloud.fc.eventbridge import cloud_event, queue_event

ACCOUNT = "1234567890123456"


def record(key: str = "in/a b+c.jpg") -> dict[str, Any]:
    emitted = EmittedEvent(
        event_name="ObjectCreated:PutObject",
        bucket="photos",
        key=key,
        size=5,
        delta_size=5,
        etag="5D41402ABC4B2A76B9719D911017C592",
        request_id=f"REQ-{key}",
        source_ip="10.0.0.1",
        mime_type="image/jpeg",
        user_meta={"x-oss-meta-owner": "bob"},
    )
    return event_record(emitted, region="cn-hangzhou", owner_id=ACCOUNT, rule_id="r1")


def queued(inner: dict[str, Any], encode: bool = False) -> dict[str, Any]:
    body = json.dumps(inner)
    if encode:
        body = base64.b64encode(body.encode()).decode()
    return queue_event(body, "oss-autotag-events", ACCOUNT, "cn-hangzhou")


def keys(payload: Any) -> list[str]:
    delivery = parse_delivery(json.dumps(payload).encode())
    assert not delivery.refused, delivery.refused
    return [event.key for event in delivery.events]


def test_a_cloud_event_carries_the_same_record_as_the_native_trigger() -> None:
    published = record()
    native = parse_delivery(json.dumps({"events": [published]}).encode())
    through_eventbridge = parse_delivery(json.dumps(cloud_event(published, ACCOUNT)).encode())
    assert (native.shape, through_eventbridge.shape) == ("oss-trigger", "eventbridge")
    assert through_eventbridge.events == native.events


def test_the_cloud_event_has_the_documented_envelope() -> None:
    event = cloud_event(record("x/y.txt"), ACCOUNT)
    assert event["source"] == "acs.oss" and event["type"] == "oss:ObjectCreated:PutObject"
    assert event["subject"] == f"acs:oss:cn-hangzhou:{ACCOUNT}:photos/x/y.txt"
    assert event["data"]["eventName"] == "ObjectCreated:PutObject"  # no `oss:` prefix inside
    assert "ruleId" not in event["data"]["oss"]  # a notification rule's, absent on the bus


SHAPES: dict[str, Any] = {
    "RawData, one event": record("a"),
    "CloudEvents batch": [cloud_event(record("a"), ACCOUNT), cloud_event(record("b"), ACCOUNT)],
    "RawData batch": [record("a"), record("b")],
    "queue CloudEvents, plain bodies": [queued(cloud_event(record(k), ACCOUNT)) for k in "ab"],
    "queue CloudEvents, base64 bodies": [queued(cloud_event(record(k), ACCOUNT), encode=True) for k in "ab"],
    "queue RawData": [queued(cloud_event(record(k), ACCOUNT))["data"] for k in "ab"],
    "queue of OSS notifications": [queued({"events": [record("a")]}), queued({"events": [record("b")]})],
}


@pytest.mark.parametrize("shape", SHAPES)
def test_every_delivery_shape_yields_its_objects(shape: str) -> None:
    expected = ["a"] if shape == "RawData, one event" else ["a", "b"]
    assert keys(SHAPES[shape]) == expected


def test_a_batch_element_without_an_oss_event_is_refused_alone() -> None:
    broken = cloud_event(record("b"), ACCOUNT)
    del broken["data"]["oss"]["object"]["key"]
    foreign = queue_event("hello", "oss-autotag-events", ACCOUNT, "cn-hangzhou")
    batch = [cloud_event(record("a"), ACCOUNT), broken, foreign, 7, cloud_event(record("c"), ACCOUNT)]
    delivery = parse_delivery(json.dumps(batch).encode())
    assert [e.key for e in delivery.events] == ["a", "c"]
    assert [e.element for e in delivery.events] == [0, 4]
    reasons = {r.element: r.reason for r in delivery.refused}
    assert set(reasons) == {1, 2, 3}
    assert reasons[1].startswith("[1].data.oss.object") and "key" in reasons[1]
    assert reasons[2].startswith("[2].data.messageBody") and "base64" in reasons[2]
    assert reasons[3] == "[3]: an object, not int"


def test_a_queue_message_carries_as_many_records_as_oss_puts_in_an_event() -> None:
    """OSS puts one record in an event's `events` (docs/tag-on-upload.md): a queue message whose body holds
    more is not OSS's. Its first record is tagged; each one beyond is refused, named by its place, so 50
    messages can never become 5,000 objects."""
    stuffed = queued({"events": [record(f"k{n}") for n in range(100)]})
    batch = [queued({"events": [record("a")]}), stuffed, queued({"events": [record("z")]})]
    delivery = parse_delivery(json.dumps(batch).encode())
    assert [e.key for e in delivery.events] == ["a", "k0", "z"]
    assert [e.element for e in delivery.events] == [0, 1, 2]
    assert len(delivery.refused) == 99 and {r.element for r in delivery.refused} == {1}
    first = delivery.refused[0].reason
    assert first.startswith("[1].data.messageBody.events[1]: ") and "1 record" in first, first
    assert delivery.refused[-1].reason.startswith("[1].data.messageBody.events[99]: ")
    broken_extra = queued({"events": [record("b"), {"eventName": 5}]})
    delivery = parse_delivery(json.dumps([broken_extra]).encode())
    assert [e.key for e in delivery.events] == ["b"] and len(delivery.refused) == 1


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ({**cloud_event(record(), ACCOUNT), "source": 5}, "source"),
        ({**cloud_event(record(), ACCOUNT), "data": "x"}, "data"),
        ([cloud_event(record(), ACCOUNT)] * 10_001, "at most 10000"),
        ({"specversion": "1.0"}, "(the event)"),
    ],
)
def test_an_unusable_single_delivery_names_what_is_wrong(payload: Any, fragment: str) -> None:
    with pytest.raises(EventError) as caught:
        parse_delivery(json.dumps(payload).encode())
    assert fragment in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_queue_message_cannot_nest_another_queue_message() -> None:
    inner = queued(cloud_event(record("a"), ACCOUNT))
    delivery = parse_delivery(json.dumps([queued(inner)]).encode())
    assert not delivery.events and "not acs.oss" in delivery.refused[0].reason


def test_a_cloud_event_from_another_service_is_refused_for_its_source() -> None:
    """An event another Alibaba service put on the bus (acs.ecs here) carries no OSS record: the error
    says its source is not acs.oss, not what a queue message would lack."""
    foreign = {**cloud_event(record(), ACCOUNT), "source": "acs.ecs", "type": "ecs:Instance:StateChange"}
    with pytest.raises(EventError) as caught:
        parse_delivery(json.dumps(foreign).encode())
    assert str(caught.value).startswith(".source: 'acs.ecs' is not acs.oss"), caught.value
    delivery = parse_delivery(json.dumps([cloud_event(record("a"), ACCOUNT), foreign]).encode())
    assert [e.key for e in delivery.events] == ["a"]
    assert delivery.refused[0].reason.startswith("[1].source: 'acs.ecs' is not acs.oss")
    lacking = {**queued(cloud_event(record(), ACCOUNT)), "data": {"messageId": "m"}}
    assert "messageBody" in parse_delivery(json.dumps([lacking]).encode()).refused[0].reason


def test_an_object_of_no_known_shape_is_told_the_shapes() -> None:
    with pytest.raises(EventError) as caught:
        parse_delivery(b"{}")
    message = str(caught.value)
    assert all(shape in message for shape in ('{"events": [...]}', "CloudEvent", "OSS event record", "array"))


LONG = "x" * 5000


def _hostile(path: str, value: Any, envelope: bool = False) -> dict[str, Any]:
    """A CloudEvent with one field (of the envelope, or of the OSS record under data) set to `value`."""
    event = cloud_event(record(), ACCOUNT)
    target: Any = event if envelope else event["data"]
    *parents, last = path.split(".")
    for part in parents:
        target = target[part]
    target[last] = value
    return event


HOSTILE: dict[str, dict[str, Any]] = {
    "long key": _hostile("oss.object.key", LONG),
    "long source": _hostile("source", "acs." + LONG, envelope=True),
    "long type": _hostile("type", LONG, envelope=True),
    "long event name": _hostile("eventName", "ObjectRemoved:" + "X" * 5000),
    "long region": _hostile("region", LONG),
    "long bucket": _hostile("oss.bucket.name", LONG),
    "long user meta name": _hostile("oss.object.objectMeta.userMeta", {"x-oss-meta-" + LONG: 5}),
    "long queue source": queued({**cloud_event(record(), ACCOUNT), "source": "MNS-" + LONG}),
}


@pytest.mark.parametrize("case", HOSTILE)
def test_no_error_repeats_a_long_value(case: str) -> None:
    """jsonschema's messages (and a path through a user's metadata names) would repeat a value whole: a
    5,000-character one is cut short, alone and in a batch's refused reasons."""
    event = HOSTILE[case]
    with pytest.raises(EventError) as caught:
        parse_delivery(json.dumps(event).encode())
    delivery = parse_delivery(json.dumps([cloud_event(record("a"), ACCOUNT), event]).encode())
    (refused,) = delivery.refused
    for message in (str(caught.value), refused.reason):
        assert "x" * 100 not in message and "X" * 100 not in message and len(message) < 300, message
