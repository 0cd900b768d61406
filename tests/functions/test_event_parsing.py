"""OSS trigger events parse into ObjectEvents; anything else is an EventError naming the field."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autotag.events import EventError, ObjectEvent, parse_oss_event
from cloudformats.oss_events import ObjectEvent as EmittedEvent
from cloudformats.oss_events import event_record


def oss_event(**object_fields: Any) -> dict[str, Any]:
    """A delivery exactly as the local OSS publishes it."""
    emitted = EmittedEvent(
        event_name="ObjectCreated:PutObject",
        bucket="photos",
        key="in/a b+c.jpg",
        size=5,
        delta_size=5,
        etag="5D41402ABC4B2A76B9719D911017C592",
        request_id="REQ1",
        source_ip="10.0.0.1",
        mime_type="image/jpeg",
        user_meta={"x-oss-meta-owner": "bob"},
    )
    record = event_record(emitted, region="cn-hangzhou", owner_id="1234", rule_id="r1")
    record["oss"]["object"].update(object_fields)
    return {"events": [record]}


def test_parses_a_delivery() -> None:
    (event,) = parse_oss_event(json.dumps(oss_event()).encode())
    assert event == ObjectEvent(
        event_name="ObjectCreated:PutObject",
        bucket="photos",
        key="in/a b+c.jpg",
        region="cn-hangzhou",
        event_time=event.event_time,
        size=5,
        etag="5D41402ABC4B2A76B9719D911017C592",
        request_id="REQ1",
        mime_type="image/jpeg",
        user_meta={"x-oss-meta-owner": "bob"},
    )
    assert (event.family, event.operation, event.creates_object) == ("ObjectCreated", "PutObject", True)


def test_version_id_and_missing_object_meta() -> None:
    document = oss_event(versionId="CAEQ123")
    del document["events"][0]["oss"]["object"]["objectMeta"]
    (event,) = parse_oss_event(document)
    assert (event.version_id, event.mime_type, event.user_meta) == ("CAEQ123", None, None)


@pytest.mark.parametrize(
    ("operation", "creates"),
    [
        ("PutObject", True),
        ("CompleteMultipartUpload", True),
        ("InitiateMultipartUpload", False),
        ("UploadPart", False),
        ("UploadPartCopy", False),
    ],
)
def test_which_events_leave_an_object(operation: str, creates: bool) -> None:
    document = oss_event()
    document["events"][0]["eventName"] = f"ObjectCreated:{operation}"
    assert parse_oss_event(document)[0].creates_object is creates


def _broken(path: str, value: Any) -> dict[str, Any]:
    document = copy.deepcopy(oss_event())
    target: Any = document
    *parents, last = path.split(".")
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    if value is KeyError:
        del target[last]
    else:
        target[last] = value
    return document


BAD_EVENTS: dict[str, tuple[Any, str]] = {
    "not json": (b"{not json", "not JSON"),
    "invalid utf-8": (b'{"events": "\xff\xfe"}', "not UTF-8"),
    "an empty batch": (b"[]", "the event is an empty batch"),
    "no events": (b"{}", 'an OSS trigger event ({"events": [...]})'),
    "empty events": (b'{"events": []}', "events"),
    "timer event": (b'{"triggerTime": "2026-01-01T00:00:00Z", "triggerName": "t", "payload": ""}', "events"),
    "wrong source": (_broken("events.0.eventSource", "acs:mns"), "events[0].eventSource"),
    "unknown event name": (_broken("events.0.eventName", "Put"), "events[0].eventName"),
    "no key": (_broken("events.0.oss.object.key", KeyError), "events[0].oss.object"),
    "empty key": (_broken("events.0.oss.object.key", ""), "events[0].oss.object.key"),
    "key too long": (_broken("events.0.oss.object.key", "k" * 1024), "events[0].oss.object.key"),
    "key not a string": (_broken("events.0.oss.object.key", 7), "events[0].oss.object.key"),
    "size a string": (_broken("events.0.oss.object.size", "5"), "events[0].oss.object.size"),
    "negative size": (_broken("events.0.oss.object.size", -1), "events[0].oss.object.size"),
    "bad bucket": (_broken("events.0.oss.bucket.name", "Bad_Bucket"), "events[0].oss.bucket.name"),
    "user meta not strings": (_broken("events.0.oss.object.objectMeta", {"userMeta": {"a": 1}}), "userMeta"),
    "huge": (b'{"events": [' + b"1," * 70000 + b"1]}", "at most 131072"),
    "too many records": ({"events": oss_event()["events"] * 101}, "events"),
}


@pytest.mark.parametrize("case", BAD_EVENTS)
def test_malformed_events_name_the_field(case: str) -> None:
    payload, fragment = BAD_EVENTS[case]
    if isinstance(payload, dict):
        payload = json.dumps(payload).encode()
    with pytest.raises(EventError) as caught:
        parse_oss_event(payload)
    assert fragment in str(caught.value)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=30,
)


@given(json_values)
def test_any_json_is_an_event_list_or_an_event_error(document: Any) -> None:
    try:
        events = parse_oss_event(json.dumps(document).encode())
    except EventError as error:
        assert str(error)
    else:
        assert all(isinstance(e, ObjectEvent) for e in events)


@given(st.binary(max_size=200))
def test_any_bytes_are_an_event_list_or_an_event_error(payload: bytes) -> None:
    try:
        events = parse_oss_event(payload)
    except EventError as error:
        assert str(error)
    else:
        assert isinstance(events, list)
