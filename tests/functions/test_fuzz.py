"""Hostile input: every parser of the deployed code ends in a result or its own clear error (naming what is
wrong), never an uncaught exception — for arbitrary bytes, arbitrary JSON, and real-shaped bad events."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autotag.events import EventError, parse_oss_event
from autotag.oss_tags import TaggingHeaderError, decode_tagging_header, encode_tagging_header, tag_violations
from autotag.rules import RulesError, parse_rules
from autotag.sweep.request import SweepRequestError, parse_sweep_payload, parse_timer_event

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
FUZZ = settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)


def oss_record(**overrides: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "eventName": "ObjectCreated:PutObject",
        "eventSource": "acs:oss",
        "eventTime": "2026-11-21T00:00:00.000Z",
        "eventVersion": "1.0",
        "region": "cn-hangzhou",
        "oss": {"bucket": {"name": "bkt"}, "object": {"key": "k", "size": 1}},
    }
    record.update(overrides)
    return record


@FUZZ
@given(st.binary(max_size=300))
def test_oss_events_from_arbitrary_bytes(data: bytes) -> None:
    try:
        parse_oss_event(data)
    except EventError as error:
        assert str(error)


@FUZZ
@given(json_values)
def test_oss_events_from_arbitrary_json(document: Any) -> None:
    try:
        parse_oss_event(json.dumps(document).encode())
    except EventError as error:
        assert str(error)


@FUZZ
@given(st.dictionaries(st.sampled_from(["eventName", "region", "oss", "eventSource", "x"]), json_values))
def test_oss_records_with_fields_replaced_by_anything(overrides: dict[str, Any]) -> None:
    try:
        parse_oss_event({"events": [oss_record(**overrides)]})
    except EventError as error:
        assert str(error)


# A corpus of real-shaped bad events, each with the field its error must name.
BAD_EVENTS = [
    (b"", "not JSON"),
    (b'{"events": "\xc3\x28"}', "not UTF-8"),
    (b"[]", "the event is an empty batch"),
    (b'{"events": []}', "events: [] should be non-empty"),
    (b'{"events": "all"}', "events: 'all' is not of type 'array'"),
    (json.dumps({"events": [oss_record(eventSource="acs:mns")]}).encode(), "eventSource"),
    (json.dumps({"events": [oss_record(eventName=7)]}).encode(), "eventName: 7 is not of type 'string'"),
    (
        json.dumps({"events": [oss_record(oss={"bucket": {"name": "bkt"}})]}).encode(),
        "'object' is a required",
    ),
    (json.dumps({"events": [oss_record(oss={"bucket": {}, "object": {"key": "k"}})]}).encode(), "'name'"),
    (json.dumps({"events": [oss_record()] * 101}).encode(), "events: 101 entries; at most 100"),
    (
        json.dumps(
            {"events": [oss_record(oss={"bucket": {"name": "bkt"}, "object": {"key": "k\x00\x01"}})]}
        ).encode(),
        None,
    ),  # control characters are legal in OSS keys: accepted, the key kept as is
    (b'{"events": [' + b"1," * 70_000 + b"1]}", "bytes; FC delivers at most"),
]


@pytest.mark.parametrize(("payload", "names"), BAD_EVENTS)
def test_bad_event_corpus(payload: bytes, names: str | None) -> None:
    if names is None:
        (record,) = parse_oss_event(payload)
        assert record.key == "k\x00\x01"
        return
    with pytest.raises(EventError) as raised:
        parse_oss_event(payload)
    assert names in str(raised.value)
    assert len(str(raised.value)) < 200, str(raised.value)  # the field and what is wrong, not the event


@FUZZ
@given(st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()))
def test_timer_events_from_anything(data: bytes) -> None:
    try:
        parse_timer_event(data)
    except SweepRequestError as error:
        assert str(error)


@FUZZ
@given(json_values | st.text(max_size=50))
def test_timer_payloads_from_anything(payload: Any) -> None:
    try:
        parse_sweep_payload(payload if isinstance(payload, str) else json.dumps(payload))
    except SweepRequestError as error:
        assert str(error)


rule_like = st.fixed_dictionaries(
    {"name": st.text(max_size=8), "tags": json_values},
    optional={
        "key_regex": st.text(max_size=30),
        "when": json_values,
        "ttl": json_values,
        "priority": json_values,
    },
)


@FUZZ
@given(st.fixed_dictionaries({"version": st.just(1) | json_values, "rules": st.lists(rule_like, max_size=3)}))
def test_rules_from_anything(document: dict[str, Any]) -> None:
    try:
        parse_rules(document)
    except RulesError as error:
        assert str(error)


@FUZZ
@given(st.text(max_size=200))
def test_tagging_headers_from_anything(header: str) -> None:
    try:
        tags = decode_tagging_header(header)
    except TaggingHeaderError as error:
        assert "x-oss-tagging" in str(error)
        return
    tag_violations(tags)  # a list of problems, never an exception
    assert decode_tagging_header(encode_tagging_header(tags)) == tags
