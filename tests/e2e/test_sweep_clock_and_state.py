"""The sweep's clock and its state, against typos and forgeries: absurd trigger times, clocks ahead of OSS's,
checkpoints that cannot be read or claim the future, leases written by someone else, and a separate
state bucket for buckets with writers the sweep must not trust. Time moves on the local OSS's own clock."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import oss2
import pytest
from conftest import BucketFactory, readable, sealed, sealed_header, tags_of
from test_tag_expiry import Sweeper

from autotag.rules import load_rules
from autotag.sweep.checkpoint import Checkpoint, Scope, encode_checkpoint
from autotag.sweep.gateway import SweepGateway
from autotag.sweep.request import SweepRequestError
from autotag.sweep.state import Lease, StateStore
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


def tagging(tags: dict[str, str]) -> oss2.models.Tagging:
    rule = oss2.models.TaggingRule()
    rule.tagging_rule.update(tags)
    return oss2.models.Tagging(rule)


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


def test_a_checkpoint_claiming_a_future_pass_never_suppresses_the_sweep(
    sweeper: Sweeper, bucket: oss2.Bucket, oss: LocalOSS
) -> None:
    """Sealed by the system (a version that accepted any clock), a completed pass in the future is still
    not obeyed."""
    temporary(bucket)
    store = StateStore(SweepGateway(bucket), ".autotag/", Scope(bucket.bucket_name))
    lease = store.acquire("old-version", lease_seconds=120, oss_now=oss.clock.now())
    assert isinstance(lease, Lease)
    fingerprint = load_rules(os.environ["AUTOTAG_RULES"]).fingerprint
    future = datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone.utc)
    store.save(Checkpoint(store.scope, future, fingerprint), lease)
    store.release(lease)
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
    aside = [k for k in state_keys(bucket) if "not-believed" in k]
    assert len(aside) == 1 and bucket.get_object(aside[0]).read() == body
    assert sweeper.run(oss.clock.now())["warnings"] == []  # the new checkpoint reads back


def test_a_lease_the_system_did_not_seal_blocks_nothing_and_is_reported(
    sweeper: Sweeper, bucket: oss2.Bucket, oss: LocalOSS
) -> None:
    temporary(bucket)
    oss.clock.advance(8 * DAY)
    # Written just now, so within a lease's life by its Last-Modified: a real lease would hold the scope.
    forge(bucket, "lease-000000001000", json.dumps({"owner": "forger", "released": False}).encode())
    report = sweeper.run(oss.clock.now())
    assert report["complete"] and report["tagsRemoved"] == 1, report["stopped"]
    (warning,) = report["warnings"]  # not obeyed, and not passed over in silence
    assert warning.startswith(".autotag/sweep/") and "lease-000000001000: not believed" in warning, warning
    assert "not sealed by this system" in warning and "forger" not in warning


def test_a_genuine_lease_written_back_later_blocks_nothing(
    sweeper: Sweeper, bucket: oss2.Bucket, oss: LocalOSS
) -> None:
    """A lease the system sealed, copied back over itself after its life ended (a replay): its seal holds,
    but OSS stamped it long after the time sealed in it, so it is not believed."""
    temporary(bucket)
    store = StateStore(SweepGateway(bucket), ".autotag/", Scope(bucket.bucket_name))
    held = store.acquire("crashed-run", lease_seconds=120, oss_now=oss.clock.now())
    assert isinstance(held, Lease)
    key = store.base + f"lease-{held.number:012d}"
    sealed_lease = bucket.get_object(key).read()
    oss.clock.advance(8 * DAY)
    bucket.put_object(key, sealed_lease)
    report = sweeper.run(oss.clock.now())
    assert report["complete"] and report["tagsRemoved"] == 1, report["stopped"]
    assert any(f"lease-{held.number:012d}: not believed" in w and "stamped" in w for w in report["warnings"])


def checkpoint_of(sweeper: Sweeper, bucket: oss2.Bucket, at: datetime, prefix: str = "") -> bytes:
    """The checkpoint a complete sweep of `prefix` at `at` leaves."""
    assert sweeper.run(at, prefix=prefix)["complete"]
    store = StateStore(SweepGateway(bucket), ".autotag/", Scope(bucket.bucket_name, prefix))
    return bytes(bucket.get_object(store.checkpoint_key).read())


def whole_bucket_checkpoint(bucket: oss2.Bucket) -> str:
    key: str = StateStore(SweepGateway(bucket), ".autotag/", Scope(bucket.bucket_name)).checkpoint_key
    return key


def moved_to(data: bytes, moment: datetime) -> bytes:
    document = json.loads(data)
    document["completed"]["clock"] = moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return json.dumps(document).encode()


@pytest.mark.parametrize("how", ["forged in its format", "another scope's, moved to now", "another scope's"])
def test_a_checkpoint_the_system_did_not_seal_here_is_never_believed(
    sweeper: Sweeper, bucket: oss2.Bucket, oss: LocalOSS, how: str
) -> None:
    """A completed pass claimed at "now" would make the sweep skip every tag whose TTL ran out before: a
    checkpoint written by someone else, or the system's own copied from another scope (as it is, or with
    its completion moved to now), is reported and a full pass starts."""
    temporary(bucket)
    first = oss.clock.now()
    oss.clock.advance(8 * DAY)
    now = oss.clock.now()
    if how == "forged in its format":
        forged = {
            "format": 1,
            "scope": {"bucket": bucket.bucket_name, "prefix": "", "startAt": "", "endBefore": None},
            "completed": {
                "clock": now.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                "fingerprint": load_rules(os.environ["AUTOTAG_RULES"]).fingerprint,
            },
            "current": None,
        }
        copied = json.dumps(forged).encode()
    elif how == "another scope's, moved to now":
        copied = moved_to(checkpoint_of(sweeper, bucket, first, prefix="other/"), now)
    else:
        copied = checkpoint_of(sweeper, bucket, now, prefix="other/")
    bucket.put_object(whole_bucket_checkpoint(bucket), copied)
    report = sweeper.run(now)
    assert report["complete"] and report["mode"] == "full" and report["tagsRemoved"] == 1, report
    assert tags_of(bucket, "tmp/a.txt") == {"team": "ops"}
    (warning,) = report["warnings"]
    assert "checkpoint.json: not believed" in warning and "a new full pass starts" in warning, warning


def test_a_checkpoint_sealed_for_another_state_bucket_is_not_believed(
    sweeper: Sweeper,
    bucket: oss2.Bucket,
    oss: LocalOSS,
    new_bucket: BucketFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same scope's genuine checkpoint, copied from one state bucket into another: the seal names the
    bucket it was written to."""
    first, second = new_bucket(), new_bucket()
    temporary(bucket)
    oss.clock.advance(8 * DAY)
    now = oss.clock.now()
    monkeypatch.setenv("AUTOTAG_STATE_BUCKET", first.bucket_name)
    assert sweeper.run(now)["tagsRemoved"] == 1
    key = whole_bucket_checkpoint(bucket)
    second.put_object(key, first.get_object(key).read())
    bucket.put_object_tagging("tmp/a.txt", tagging(sealed({"lifecycle": "temporary"}, "lifecycle")))
    monkeypatch.setenv("AUTOTAG_STATE_BUCKET", second.bucket_name)
    report = sweeper.run(now)
    assert report["complete"] and report["mode"] == "full" and report["tagsRemoved"] == 1, report
    assert any("checkpoint.json: not believed" in w for w in report["warnings"])


def test_an_old_checkpoint_of_the_same_scope_copied_back_costs_at_most_a_full_pass(
    sweeper: Sweeper, bucket: oss2.Bucket, oss: LocalOSS
) -> None:
    """A replay of the scope's own older checkpoint: OSS stamps the copy long after the time sealed in it,
    so it is not believed and a full pass starts; and believed, its older clock would only widen the next
    window. Either way no expired tag is skipped."""
    temporary(bucket)
    old = checkpoint_of(sweeper, bucket, oss.clock.now())
    oss.clock.advance(8 * DAY)
    assert sweeper.run(oss.clock.now())["tagsRemoved"] == 1
    oss.clock.advance(timedelta(hours=1))
    temporary(bucket, "tmp/later.txt")
    oss.clock.advance(8 * DAY)
    bucket.put_object(whole_bucket_checkpoint(bucket), old)  # copied back
    report = sweeper.run(oss.clock.now())
    assert report["complete"] and report["mode"] == "full" and report["tagsRemoved"] == 1, report
    assert any("checkpoint.json: not believed" in w and "stamped" in w for w in report["warnings"])


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
    at = oss.clock.now()  # both runs at one trigger time: a later second would start a new pass
    report = sweeper.run(at)
    assert report["complete"] and report["tagsRemoved"] == 1
    assert state_keys(bucket) == []
    assert any(k.endswith("checkpoint.json") for k in state_keys(state))
    assert sweeper.run(at)["stopped"] == "already swept up to this time with these rules"


def earlier_versions_checkpoint(bucket: oss2.Bucket, at: datetime) -> str:
    """The unsealed checkpoint a version before seals left in the swept bucket: a pass completed at `at`."""
    fingerprint = load_rules(os.environ["AUTOTAG_RULES"]).fingerprint
    key = whole_bucket_checkpoint(bucket)
    bucket.put_object(key, encode_checkpoint(Checkpoint(Scope(bucket.bucket_name), at, fingerprint)))
    return key


@pytest.mark.parametrize("moved", [True, False], ids=["to a state bucket", "left in the swept bucket"])
def test_the_first_run_of_this_version_reports_the_earlier_state_and_makes_a_full_pass(
    sweeper: Sweeper,
    bucket: oss2.Bucket,
    oss: LocalOSS,
    new_bucket: BucketFactory,
    monkeypatch: pytest.MonkeyPatch,
    moved: bool,
) -> None:
    """Upgrading: the earlier version's state (unsealed, in the swept bucket) is never believed. With the
    state moved to a state bucket, the first run says where the old state is and how to delete it."""
    temporary(bucket)
    oss.clock.advance(8 * DAY)
    now = oss.clock.now()
    old = earlier_versions_checkpoint(bucket, now)
    if moved:
        monkeypatch.setenv("AUTOTAG_SWEEP_STATE_BUCKET", new_bucket().bucket_name)
    report = sweeper.run(now)
    assert report["complete"] and report["mode"] == "full" and report["tagsRemoved"] == 1, report
    (warning,) = report["warnings"]
    if moved:
        assert f"oss://{bucket.bucket_name}/{old.rsplit('/', 1)[0]}/ holds this scope's state" in warning
        assert f"ossutil rm -r oss://{bucket.bucket_name}/.autotag/sweep/" in warning, warning
        assert sweeper.run(now)["warnings"] == []  # said once: the state bucket has a checkpoint now
    else:
        assert "checkpoint.json: not believed" in warning and "it carries no seal" in warning, warning


def test_a_state_bucket_that_does_not_exist_is_named(
    sweeper: Sweeper, bucket: oss2.Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    temporary(bucket)
    monkeypatch.setenv("AUTOTAG_SWEEP_STATE_BUCKET", "no-such-state-bucket")
    report = sweeper.run(datetime.now(timezone.utc))
    assert not report["complete"] and "the state bucket 'no-such-state-bucket'" in report["stopped"], report
    assert "404 NoSuchBucket" in report["stopped"] and "`autotag deploy` creates" in report["stopped"]


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
