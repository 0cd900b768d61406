"""Hostile and unlucky input on the upload path: every record ends in an outcome of its own, never a
traceback, and no error text carries a credential."""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import Iterator
from typing import Any

import oss2
import pytest
from conftest import STS
from test_tag_on_upload import Trigger

from autotag.events import EventError
from autotag.handlers.upload import RetryableFailure
from localcloud.fc import fc_context
from localcloud.fc.context import Credentials, FCContext
from localcloud.oss import LocalOSS


@pytest.fixture
def trigger(oss: LocalOSS, bucket: oss2.Bucket, monkeypatch: pytest.MonkeyPatch) -> Iterator[Trigger]:
    monkeypatch.setenv("AUTOTAG_OSS_ENDPOINT", oss.endpoint)
    monkeypatch.delenv("AUTOTAG_RULES", raising=False)
    yield Trigger(oss, bucket)


def with_records(payload: bytes, *edits: dict[str, Any]) -> bytes:
    """The delivery's record repeated once per edit, each edited (`bucket`, `key`)."""
    document = json.loads(payload)
    (record,) = document["events"]
    records = []
    for edit in edits:
        copy = json.loads(json.dumps(record))
        if "bucket" in edit:
            copy["oss"]["bucket"]["name"] = edit["bucket"]
        if "key" in edit:
            copy["oss"]["object"]["key"] = edit["key"]
        records.append(copy)
    document["events"] = records
    return json.dumps(document).encode()


def test_a_record_for_a_missing_bucket_is_reported_and_the_others_are_tagged(
    trigger: Trigger, bucket: oss2.Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bucket the function is configured for but that OSS no longer has (one it is not configured for
    is refused before any request: tests/e2e/test_bucket_scope.py)."""
    monkeypatch.setenv("AUTOTAG_BUCKETS", f"{bucket.bucket_name},no-such-bucket-here")
    bucket.put_object("good.jpg", b"x")
    (payload,) = trigger.deliveries()
    event = with_records(payload, {"bucket": "no-such-bucket-here"}, {})
    (missing, good) = trigger.invoke(event)["results"]  # returns: nothing here is worth retrying
    assert (good["key"], good["outcome"]) == ("good.jpg", "tagged")
    assert missing["outcome"] == "rejected"
    assert "404 NoSuchBucket" in missing["reason"] and "HeadObject 'good.jpg'" in missing["reason"]


def test_a_key_that_is_not_unicode_text_is_reported_per_record(trigger: Trigger, bucket: oss2.Bucket) -> None:
    bucket.put_object("fine.jpg", b"x")
    (payload,) = trigger.deliveries()
    text = with_records(payload, {"key": "bad\udc80.jpg"}, {}).decode()  # a lone surrogate, JSON-escaped
    (bad, fine) = trigger.invoke(text.encode())["results"]
    assert fine["outcome"] == "tagged"
    assert bad["outcome"] == "rejected" and "not valid UTF-8" in bad["reason"]


@pytest.mark.parametrize("depth", [1_000, 60_000])
def test_deeply_nested_events_are_refused_with_a_clear_error(trigger: Trigger, depth: int) -> None:
    event = b'{"events": [], "x": ' + b"[" * depth + b"]" * depth + b"}"
    with pytest.raises(EventError, match="nests more than 32 levels"):
        trigger.invoke(event)


def test_a_signature_error_shows_neither_the_secret_nor_the_token(
    trigger: Trigger, bucket: oss2.Bucket, caplog: pytest.LogCaptureFixture
) -> None:
    """OSS answers SignatureDoesNotMatch with the string to sign, which under V1 STS signing holds the
    security token: none of it may reach the result, the logs or the error FC records."""
    bucket.put_object("sig.jpg", b"x")
    (payload,) = trigger.deliveries()
    token = STS.security_token or ""
    wrong = Credentials(STS.access_key_id, "not-the-secret-" + STS.access_key_secret[::-1], token)
    context: FCContext = fc_context()
    context = FCContext(**{**context.__dict__, "credentials": wrong})
    with caplog.at_level(logging.DEBUG), pytest.raises(RetryableFailure) as raised:
        trigger.handler(payload, context)
    shown = [r.getMessage() for r in caplog.records] + [str(raised.value)]
    shown += ["".join(traceback.format_exception(raised.value))]
    assert "SignatureDoesNotMatch" in str(raised.value)  # the operator still learns what is wrong
    for secret in (token, wrong.access_key_secret, STS.access_key_secret):
        assert not [text for text in shown if secret in text], secret
