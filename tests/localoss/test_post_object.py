"""PostObject: browser form uploads with a signed policy, as OSS accepts and refuses them."""

from __future__ import annotations

import json
import threading

import oss2
import pytest
import requests
from conftest import LONG_TERM, STS

from localcloud.oss import Credential, LocalOSS
from localcloud.oss.postform import signed_form


def _post(oss: LocalOSS, bucket: str, form: dict[str, str], body: bytes = b"form body") -> requests.Response:
    files = {"file": ("photo.jpg", body, "image/jpeg")}
    return requests.post(f"{oss.endpoint}/{bucket}/", data=form, files=files, timeout=10)


@pytest.mark.parametrize("credential", [LONG_TERM, STS], ids=["long-term", "sts"])
def test_form_upload_stores_the_object_and_publishes_post_object(
    oss: LocalOSS, bucket: oss2.Bucket, credential: Credential
) -> None:
    records: list[dict[str, object]] = []
    lock = threading.Lock()

    def collect(payload: bytes) -> None:
        with lock:
            records.extend(json.loads(payload)["events"])

    oss.subscribe(bucket.bucket_name, ["oss:ObjectCreated:*"], collect)
    form = signed_form(credential, "uploads/${filename}", fields={"x-oss-meta-source": "browser"})
    response = _post(oss, bucket.bucket_name, form)
    assert response.status_code == 204, response.content
    head = bucket.head_object("uploads/photo.jpg")
    assert (head.content_type, head.headers["x-oss-meta-source"]) == ("image/jpeg", "browser")
    assert bucket.get_object("uploads/photo.jpg").read() == b"form body"
    assert oss.notifier.drain(600)
    assert [r["eventName"] for r in records] == ["ObjectCreated:PostObject"]


def test_success_action_status(oss: LocalOSS, bucket: oss2.Bucket) -> None:
    form = signed_form(LONG_TERM, "k", fields={"success_action_status": "201"})
    assert _post(oss, bucket.bucket_name, form).status_code == 201


@pytest.mark.parametrize(
    ("conditions", "key", "size"),
    [
        ([["starts-with", "$key", "uploads/"]], "elsewhere/k", 3),
        ([["eq", "$key", "exact"]], "other", 3),
        ([["content-length-range", 0, 2]], "k", 3),
        ([{"bucket": "some-other-bucket"}], "k", 3),
    ],
)
def test_policy_conditions_are_enforced(
    oss: LocalOSS, bucket: oss2.Bucket, conditions: list[object], key: str, size: int
) -> None:
    response = _post(oss, bucket.bucket_name, signed_form(LONG_TERM, key, conditions=conditions), b"x" * size)
    assert response.status_code == 403
    assert b"Policy Condition failed" in response.content
    assert not bucket.object_exists(key)


def test_expired_policy_and_bad_signature_are_refused(oss: LocalOSS, bucket: oss2.Bucket) -> None:
    expired = _post(oss, bucket.bucket_name, signed_form(LONG_TERM, "k", expires_in=-5))
    assert expired.status_code == 403 and b"Policy expired" in expired.content
    forged = signed_form(Credential(LONG_TERM.access_key_id, "wrong-secret"), "k")
    assert b"SignatureDoesNotMatch" in _post(oss, bucket.bucket_name, forged).content
    no_token = signed_form(Credential(STS.access_key_id, STS.access_key_secret), "k")
    assert b"InvalidSecurityToken" in _post(oss, bucket.bucket_name, no_token).content
    assert not bucket.object_exists("k")


def test_form_without_file_is_a_clear_error(oss: LocalOSS, bucket: oss2.Bucket) -> None:
    response = requests.post(f"{oss.endpoint}/{bucket.bucket_name}/", files={"key": (None, "k")}, timeout=10)
    assert response.status_code == 400
    assert b"`file`" in response.content
