"""The backfill function as the backfill flow's processor: a batch of items as CloudFlow's distributed Map
passes it, run as deployed (template.yml's function in the local FC, under its role, against the local
OSS). Each object's facts come from a HEAD, never from the item; each untagged object costs one HEAD and
one PutObjectTagging; each item gets one outcome with its reason, and a bucket outside AUTOTAG_BUCKETS is
`rejected` unasked."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import oss2
import pytest
from conftest import ROOT, readable, tags_of

from localcloud.fc import DeadLetterStore, LocalFC, load_template
from localcloud.oss import LocalOSS

IMAGE_TAGS = {"kind": "image", "size": "small", "autotag": "kind size"}


@pytest.fixture
def fc(oss: LocalOSS, template_bucket: oss2.Bucket) -> Iterator[LocalFC]:
    """template.yml's functions, their roles accepted by the local OSS; no trigger is wired: the objects
    were there before, which is what a backfill is for."""
    cloud = LocalFC(
        load_template(ROOT / "template.yml"),
        environment={"AUTOTAG_OSS_ENDPOINT": oss.endpoint},
        dead_letters=DeadLetterStore(),
        retry_base_seconds=0.01,
    )
    oss.add_credentials(cloud.role_credentials())
    with cloud:
        yield cloud


@pytest.fixture
def requests_per_key(oss: LocalOSS) -> Counter[tuple[str, str]]:
    """(key, OSS API) of every object-level request the local OSS receives from here on."""
    seen: Counter[tuple[str, str]] = Counter()
    oss.conditions.hooks.append(
        lambda request: seen.update([(request.key, request.api)]) if request.key else None
    )
    return seen


def process(fc: LocalFC, batch: dict[str, Any]) -> list[dict[str, Any]]:
    result = fc.invoke("tag-backfill", json.dumps(batch).encode())
    assert result.ok, result.error_message
    return json.loads(result.payload or "{}")["Results"]  # type: ignore[no-any-return]


def test_a_batch_of_listed_objects_is_tagged_from_what_oss_answers_now(
    fc: LocalFC, template_bucket: oss2.Bucket, requests_per_key: Counter[tuple[str, str]]
) -> None:
    bucket = template_bucket.bucket_name
    template_bucket.put_object("photos/plain.jpg", b"x")
    template_bucket.put_object("photos/theirs.jpg", b"x", headers={"x-oss-tagging": "owner=me"})
    template_bucket.put_object("photos/grown.jpg", b"x")  # listed small, then overwritten large
    listed = {"Bucket": bucket, "Key": "photos/grown.jpg", "Size": 1, "ETag": '"STALE"', "LastModified": "x"}
    template_bucket.put_object("photos/grown.jpg", b"x" * (2 * 1024 * 1024))
    requests_per_key.clear()
    batch = {
        "Items": [
            {"Bucket": bucket, "Key": "photos/plain.jpg", "Size": 10**12},
            {"Bucket": bucket, "Key": "photos/theirs.jpg"},
            listed,
            {"Bucket": bucket, "Key": "photos/gone.jpg"},
            {"Bucket": "someone-elses", "Key": "photos/plain.jpg"},
            {"Bucket": bucket},
        ]
    }
    plain, theirs, grown, gone, elsewhere, unnamed = process(fc, batch)
    sent = {api: n for (key, api), n in requests_per_key.items() if key == "photos/plain.jpg"}
    assert sent == {"HeadObject": 1, "PutObjectTagging": 1}
    assert plain == {"Bucket": bucket, "Key": "photos/plain.jpg", "Outcome": "tagged"}
    assert theirs["Outcome"] == grown["Outcome"] == "tagged"
    assert gone["Outcome"] == "skipped" and "gone" in gone["Reason"]
    assert elsewhere["Outcome"] == "rejected" and "AUTOTAG_BUCKETS" in elsewhere["Reason"]
    assert unnamed == {"Bucket": bucket, "Key": "", "Outcome": "failed", "Reason": "Items[5] names no Key"}
    assert readable(tags_of(template_bucket, "photos/plain.jpg")) == IMAGE_TAGS
    assert readable(tags_of(template_bucket, "photos/theirs.jpg")) == {**IMAGE_TAGS, "owner": "me"}
    # the object as it is now, not as it was listed
    assert readable(tags_of(template_bucket, "photos/grown.jpg"))["size"] != "small"

    again = process(fc, {"Items": batch["Items"][:3]})
    assert [r["Outcome"] for r in again] == ["unchanged", "unchanged", "unchanged"]


def test_manifest_rows_name_objects_by_url_encoded_keys(fc: LocalFC, template_bucket: oss2.Bucket) -> None:
    template_bucket.put_object("photos/a b+c.jpg", b"x")
    batch = {
        "Items": [{"Bucket": template_bucket.bucket_name, "Key": "photos/a%20b+c.jpg", "VersionId": ""}],
        "BatchInput": {"KeyEncoding": "url"},
    }
    (result,) = process(fc, batch)
    assert result["Outcome"] == "tagged" and result["Key"] == "photos/a b+c.jpg"
    assert readable(tags_of(template_bucket, "photos/a b+c.jpg")) == IMAGE_TAGS


def test_a_payload_that_is_no_batch_fails_with_one_line(fc: LocalFC) -> None:
    result = fc.invoke("tag-backfill", json.dumps({"Items": [], "BatchInput": {"KeyEncoding": "?"}}).encode())
    assert not result.ok
    assert "BatchInput.KeyEncoding" in (result.error_message or "")
