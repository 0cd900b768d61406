"""Hostile and unlucky input on the expiry path, and the function timeout the local FC enforces as FC
does: every bucket ends in a report of its own, and no run outlives its deadline."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import oss2
import pytest
from conftest import readable, sealed_header, tags_of
from test_tag_expiry import Sweeper

from autotag.sweep.request import SweepRequestError
from localcloud.fc import DeadLetterStore, LocalFC, load_template
from localcloud.oss import LocalOSS

ROOT = Path(__file__).parents[2]


@pytest.fixture
def sweeper(oss: LocalOSS, bucket: oss2.Bucket, monkeypatch: pytest.MonkeyPatch) -> Sweeper:
    monkeypatch.setenv("AUTOTAG_OSS_ENDPOINT", oss.endpoint)
    monkeypatch.delenv("AUTOTAG_RULES", raising=False)
    return Sweeper(bucket)


def timer_event(payload: str) -> bytes:
    return json.dumps(
        {"triggerTime": "2026-01-01T00:00:00Z", "triggerName": "t", "payload": payload}
    ).encode()


def test_a_deeply_nested_payload_is_refused_with_a_clear_error(sweeper: Sweeper) -> None:
    payload = '{"buckets": ["bkt"], "x": ' + "[" * 5_000 + "]" * 5_000 + "}"
    with pytest.raises(SweepRequestError, match="payload nests more than 32 levels"):
        sweeper.invoke(timer_event(payload))


def test_a_missing_bucket_is_reported_and_the_next_bucket_is_still_swept(
    sweeper: Sweeper, bucket: oss2.Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bucket the sweep is configured for but that OSS no longer has (one it is not configured for is
    rejected before any request: tests/e2e/test_bucket_scope.py)."""
    monkeypatch.setenv("AUTOTAG_BUCKETS", f"no-such-bucket-here,{bucket.bucket_name}")
    bucket.put_object("x.txt", b"x", headers={"x-oss-tagging": sealed_header({"stale": "1"}, "stale")})
    payload = json.dumps({"buckets": ["no-such-bucket-here", bucket.bucket_name]})
    missing, swept = sweeper.invoke(timer_event(payload))["sweeps"]
    assert missing["bucket"] == "no-such-bucket-here" and not missing["complete"]
    assert "404 NoSuchBucket" in missing["stopped"]
    assert swept["complete"] and swept["tagsRemoved"] == 1  # no rule derives `stale`
    assert readable(tags_of(bucket, "x.txt")) == {}


def test_a_tiny_qps_stops_before_the_deadline_instead_of_sleeping_past_it(
    sweeper: Sweeper, bucket: oss2.Bucket
) -> None:
    bucket.put_object("y.txt", b"x")
    event = timer_event(json.dumps({"buckets": [bucket.bucket_name], "qps": 1e-6}))
    finished: list[dict[str, Any]] = []
    run = threading.Thread(target=lambda: finished.append(sweeper.invoke(event, timeout=6)), daemon=True)
    run.start()
    run.join(300)  # at 1e-6 requests a second, a sweep that slept past its deadline would take 11 days
    assert finished, "the sweep was still waiting for its rate limiter 300 s later (its timeout is 6 s)"
    (report,) = finished[0]["sweeps"]
    assert not report["complete"] and "before the function timeout" in report["stopped"]


# Far longer than the function's Timeout (1 s): an answer other than the time-out error means the local FC
# waited for the handler, whatever the machine's speed.
SLOW = "import time\n\ndef handler(event, context):\n    time.sleep(30)\n    return 'done'\n"


def test_the_local_fc_ends_an_invocation_at_its_timeout_and_retries_it(oss: LocalOSS, tmp_path: Path) -> None:
    code = tmp_path / "slow"
    code.mkdir()
    (code / "slow.py").write_text(SLOW)
    text = (ROOT / "template.yml").read_text()
    text = text.replace("Handler: tag_on_upload.handler", "Handler: slow.handler")
    text = text.replace("        Initializer: tag_on_upload.initialize\n", "")
    text = text.replace("CodeUri: './functions'", f"CodeUri: '{code}'", 1)
    text = text.replace("Timeout: 60", "Timeout: 1")
    (tmp_path / "functions").symlink_to(ROOT / "functions")
    (tmp_path / "template.yml").write_text(text)
    fc = LocalFC(
        load_template(tmp_path / "template.yml"),
        environment={"AUTOTAG_OSS_ENDPOINT": oss.endpoint},
        dead_letters=DeadLetterStore(tmp_path / "dl.jsonl"),
        retry_base_seconds=0.01,
    )
    with fc:
        result = fc.invoke("tag-on-upload", b"{}")
        assert not result.ok and result.error_message == "Function time out after 1 seconds"
        fc.invoke_async("tag-on-upload", b"{}")
        assert fc.drain(600)
    (letter,) = fc.dead_letters.all()
    assert letter.attempts == 4 and "time out" in letter.error_message  # retried like any other failure


def test_a_record_whose_seal_is_not_ascii_is_someone_elses_not_a_crash(
    sweeper: Sweeper, bucket: oss2.Bucket
) -> None:
    """OSS takes letters of any script in a tag value, so an uploader can write `seal:é`: the record is not
    one this system wrote, and the object is left alone and reported."""
    bucket.put_object("x.txt", b"x", headers={"x-oss-tagging": "stale=1&autotag=stale%20seal%3A%C3%A9"})
    payload = json.dumps({"buckets": [bucket.bucket_name]})
    (report,) = sweeper.invoke(timer_event(payload))["sweeps"]
    assert report["complete"] and report["foreign"] == 1 and report["tagsRemoved"] == 0, report
    assert tags_of(bucket, "x.txt")["stale"] == "1"
