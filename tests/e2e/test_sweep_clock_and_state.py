"""The sweep's clock and its state, against typos and forgeries: absurd trigger times, clocks ahead of OSS's,
checkpoints that cannot be read or claim the future, leases written by someone else, and a separate
state bucket for buckets with writers the sweep must not trust. Time moves on the local OSS's own clock."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import oss2
import pytest
from conftest import BucketFactory, readable, sealed_header, tags_of
from test_tag_expiry import Sweeper

from autotag.rules import load_rules
from autotag.sweep.checkpoint import Scope
from autotag.sweep.gateway import SweepGateway
from autotag.sweep.request import SweepRequestError
from autotag.sweep.state import StateStore
from localcloud.oss import LocalOSS

DAY = timedelta(days=1)
RULES = [{"name": "scratch", "when": {"prefix": "tmp/"}, "tags": {"lifecycle": "temporary"}, "ttl": "7d"}]


@pytest.fixture
def sweeper(oss: LocalOSS, bucket: oss2.Bucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Sweeper:
    monkeypatch.setenv("AUTOTAG_OSS_ENDPOINT", oss.endpoint)
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"version": 1, "rules": RULES}))
    monkeypatch.setenv("AUTOTAG_RULES", str(rules))
    return Sweeper(bucket)


def temporary(bucket: oss2.Bucket, key: str = "tmp/a.txt") -> None:
    """An object the upload path tagged: a 7-day TTL tag, and the uploader's own tag."""
    header = sealed_header({"lifecycle": "temporary", "team": "ops"}, "lifecycle")
    bucket.put_object(key, b"x", headers={"x-oss-tagging": header})


def raw_event(trigger_time: str, bucket: oss2.Bucket, **payload: Any) -> bytes:
    body = json.dumps({"buckets": [bucket.bucket_name], **payload})
    return json.dumps({"triggerTime": trigger_time, "triggerName": "t", "payload": body}).encode()


def state_keys(bucket: oss2.Bucket) -> list[str]:
    return [o.key for o in oss2.ObjectIterator(bucket, prefix=".autotag/")]


def test_moving_the_local_clock_expires_what_a_week_later_would(
    sweeper: Sweeper, bucket: oss2.Bucket, oss: LocalOSS
) -> None:
    temporary(bucket)
    assert sweeper.run(oss.clock.now())["tagsRemoved"] == 0
    oss.clock.advance(8 * DAY)
    report = sweeper.run(oss.clock.now())
    assert report["tagsRemoved"] == 1 and readable(tags_of(bucket, "tmp/a.txt")) == {"team": "ops"}


@pytest.mark.parametrize(
    ("trigger_time", "why"),
    [("0999-01-01T00:00:00Z", "is before 2000-01-01"), ("9999-12-31T23:59:59Z", "is after 2999-12-31")],
)
def test_absurd_trigger_times_are_refused_and_leave_everything_as_it_was(
    sweeper: Sweeper, bucket: oss2.Bucket, oss: LocalOSS, trigger_time: str, why: str
) -> None:
    temporary(bucket)
    with pytest.raises(SweepRequestError, match=f"event.triggerTime: '{trigger_time}' {why}"):
        sweeper.invoke(raw_event(trigger_time, bucket))
    assert state_keys(bucket) == [] and tags_of(bucket, "tmp/a.txt")["lifecycle"] == "temporary"
    oss.clock.advance(8 * DAY)  # expiry still works afterwards
    assert sweeper.run(oss.clock.now())["tagsRemoved"] == 1


def test_a_clock_ahead_of_oss_is_refused_except_in_a_dry_run(
    sweeper: Sweeper, bucket: oss2.Bucket, oss: LocalOSS
) -> None:
    temporary(bucket)
    ahead = oss.clock.now() + 8 * DAY
    refused = sweeper.run(ahead)
    assert not refused["complete"] and "ahead of OSS's clock" in refused["stopped"]
    assert "only a dry run may look ahead" in refused["stopped"]
    assert state_keys(bucket) == [] and tags_of(bucket, "tmp/a.txt")["lifecycle"] == "temporary"
    looked = sweeper.run(ahead, dryRun=True)
    assert looked["complete"] and looked["tagsRemoved"] == 1  # what a week later would remove
    assert tags_of(bucket, "tmp/a.txt")["lifecycle"] == "temporary"
    within = sweeper.run(oss.clock.now() + timedelta(minutes=4))  # skew within the tolerance is fine
    assert within["complete"]


def forge(bucket: oss2.Bucket, name: str, body: bytes) -> str:
    """Anyone who may PutObject in the bucket writes `name` under the scope's state folder."""
    store = StateStore(SweepGateway(bucket), ".autotag/", Scope(bucket.bucket_name))
    key = store.base + name
    bucket.put_object(key, body)
    return key


def test_a_forged_checkpoint_claiming_a_future_pass_never_suppresses_the_sweep(
    sweeper: Sweeper, bucket: oss2.Bucket, oss: LocalOSS
) -> None:
    temporary(bucket)
    forged = {
        "format": 1,
        "scope": {"bucket": bucket.bucket_name, "prefix": "", "startAt": "", "endBefore": None},
        "completed": {
            "clock": "9999-12-31T23:59:59.000Z",
            "fingerprint": load_rules(os.environ["AUTOTAG_RULES"]).fingerprint,
        },
        "current": None,
    }
    forge(bucket, "checkpoint.json", json.dumps(forged).encode())
    oss.clock.advance(8 * DAY)
    report = sweeper.run(oss.clock.now())
    assert report["complete"] and report["mode"] == "full" and report["tagsRemoved"] == 1
    assert any("completed pass" in w and "ahead of OSS's clock" in w for w in report["warnings"])


@pytest.mark.parametrize(
    "body", [b"\x00garbage", b'{"format": 1, "completed": {"clock": "999-01-01T00:00:00.000Z"']
)
def test_an_unreadable_checkpoint_is_kept_aside_and_a_full_pass_starts(
    sweeper: Sweeper, bucket: oss2.Bucket, oss: LocalOSS, body: bytes
) -> None:
    temporary(bucket)
    forge(bucket, "checkpoint.json", body)
    oss.clock.advance(8 * DAY)
    report = sweeper.run(oss.clock.now())
    assert report["complete"] and report["mode"] == "full" and report["tagsRemoved"] == 1
    (warning,) = report["warnings"]
    assert "kept aside as" in warning and "a new full pass starts" in warning
    aside = [k for k in state_keys(bucket) if "unreadable" in k]
    assert len(aside) == 1 and bucket.get_object(aside[0]).read() == body
    assert sweeper.run(oss.clock.now())["warnings"] == []  # the new checkpoint reads back


def test_a_forged_lease_blocks_no_longer_than_a_real_one(
    sweeper: Sweeper, bucket: oss2.Bucket, oss: LocalOSS
) -> None:
    temporary(bucket)
    forge(bucket, "lease-000000000099", json.dumps({"owner": "forger", "until": 9e15}).encode())
    oss.clock.advance(8 * DAY)  # the forged lease was written 8 days ago on OSS's clock: long dead
    report = sweeper.run(oss.clock.now())
    assert report["complete"] and report["tagsRemoved"] == 1
    (warning,) = report["warnings"]  # not obeyed, and not passed over in silence
    assert (
        warning.startswith(".autotag/sweep/")
        and "lease-000000000099: not a lease this system writes" in warning
    )
    assert "(unknown field 'until')" in warning, warning
    forge(bucket, "lease-000000001000", json.dumps({"owner": "forger", "until": 9e15}).encode())
    busy = sweeper.run(oss.clock.now(), full=True)
    assert "another sweep holds this scope (run forger)" in busy["stopped"]
    oss.clock.advance(timedelta(seconds=60 + 60 + 1))  # the function timeout (60 s here) and the margin
    assert sweeper.run(oss.clock.now(), full=True)["complete"]


def test_a_separate_state_bucket_keeps_every_state_object_out_of_the_swept_bucket(
    sweeper: Sweeper,
    bucket: oss2.Bucket,
    oss: LocalOSS,
    new_bucket: BucketFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    state = new_bucket()
    monkeypatch.setenv("AUTOTAG_STATE_BUCKET", state.bucket_name)
    temporary(bucket)
    oss.clock.advance(8 * DAY)
    at = oss.clock.now()  # both runs at one time (a second run a second later would start its next pass)
    report = sweeper.run(at)
    assert report["complete"] and report["tagsRemoved"] == 1
    assert state_keys(bucket) == []
    assert any(k.endswith("checkpoint.json") for k in state_keys(state))
    assert sweeper.run(at)["stopped"] == "already swept up to this time with these rules"


def test_a_forged_ownership_record_is_left_alone_and_reported(
    sweeper: Sweeper, bucket: oss2.Bucket, oss: LocalOSS
) -> None:
    """An uploader's `autotag=lifecycle` (unsealed): the sweep removes nothing, and its summary names the
    object and why, rather than counting it among the unchanged."""
    tagging = "lifecycle=temporary&autotag=lifecycle"
    bucket.put_object("tmp/forged.txt", b"x", headers={"x-oss-tagging": tagging})
    oss.clock.advance(8 * DAY)
    report = sweeper.run(oss.clock.now())
    assert report["complete"] and report["tagsRemoved"] == 0 and report["foreign"] == 1, report
    (reported,) = report["objects"]
    assert reported["key"] == "tmp/forged.txt" and "this system did not write" in reported["reason"], reported
    assert tags_of(bucket, "tmp/forged.txt")["lifecycle"] == "temporary"
