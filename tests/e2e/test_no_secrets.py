"""Credentials never leave the function: not in logs, summaries, dead letters or checkpoints of a full
run through every path (uploads, a failure dead-lettered and replayed, the sweep)."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import oss2
import pytest
from conftest import STS

import autotag.handlers.clients  # noqa: F401 - as on FC: the function is loaded before any request
from autotag_cli.replay import with_provenance
from localcloud.fc import DeadLetterStore, LocalFC, load_template
from localcloud.oss import FaultRule, LocalOSS

ROOT = Path(__file__).parents[2]
SECRETS = [STS.access_key_secret, STS.security_token or ""]


def test_a_full_run_shows_no_secret(
    oss: LocalOSS, tmp_path: Path, caplog: pytest.LogCaptureFixture, template_bucket: oss2.Bucket
) -> None:
    store = tmp_path / "dead-letters.jsonl"
    fc = LocalFC(
        load_template(ROOT / "template.yml"),
        environment={"AUTOTAG_OSS_ENDPOINT": oss.endpoint, "AUTOTAG_FANOUT": "in-process"},
        dead_letters=DeadLetterStore(store),
        retry_base_seconds=0.01,
    )
    bucket = template_bucket
    with caplog.at_level(logging.DEBUG), fc:
        fc.wire_oss(oss)
        bucket.put_object("tmp/a.csv", b"x", headers={"x-oss-tagging": "team=t"})
        oss.conditions.set_faults([FaultRule("error", 1.0, frozenset({"GetObjectTagging", "HeadObject"}))])
        bucket.put_object("b.jpg", b"x")
        assert oss.notifier.drain(30) and fc.drain(60)
        oss.conditions.set_faults([])
        for letter in fc.dead_letters.all():
            fc.invoke(letter.function, with_provenance(letter))
        oss.clock.advance(timedelta(days=8))
        fc.fire_timer("tag-expiry", at=oss.clock.now())
        assert fc.drain(60)
    seen = [r.getMessage() for r in caplog.records] + [r.payload or "" for r in fc.results]
    seen += [r.error_message for r in fc.results] + [store.read_text()]
    seen += [
        bucket.get_object(o.key).read().decode() for o in oss2.ObjectIterator(bucket, prefix=".autotag/")
    ]
    assert any("tagged" in text for text in seen) and store.read_text()  # the run did produce all of these
    for secret in SECRETS:
        assert secret and not [text for text in seen if secret in text]
