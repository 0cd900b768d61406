"""Rules kept in OSS (`AUTOTAG_RULES=oss://...`), through the local FC running template.yml's functions
under their roles: pushed with `autotag rules push`, picked up within AUTOTAG_RULES_MAX_AGE seconds with no
extra request per event, and a bad version ignored with the error reported."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import oss2
import pytest
from click.testing import CliRunner
from conftest import LONG_TERM, readable, tags_of

from autotag_cli.main import cli
from localcloud.fc import DeadLetterStore, LocalFC, load_template
from localcloud.oss import LocalOSS

ROOT = Path(__file__).parents[2]
LOCATION = "oss://autotag-demo/.autotag/rules.json"  # under the state prefix: its upload event is ignored


def team_rules(value: str) -> str:
    return json.dumps({"version": 1, "rules": [{"name": "team", "tags": {"team": value}}]})


def push(oss: LocalOSS, path: Path, text: str) -> tuple[int, str]:
    path.write_text(text)
    env = {
        "AUTOTAG_OSS_ENDPOINT": oss.endpoint,
        "ALIBABA_CLOUD_ACCESS_KEY_ID": LONG_TERM.access_key_id,
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": LONG_TERM.access_key_secret,
    }
    result = CliRunner().invoke(cli, ["rules", "push", str(path), "--to", LOCATION], env=env)
    return result.exit_code, result.output


@pytest.fixture
def fc(oss: LocalOSS, template_bucket: oss2.Bucket) -> Iterator[LocalFC]:
    local = LocalFC(
        load_template(ROOT / "template.yml"),
        environment={
            "AUTOTAG_OSS_ENDPOINT": oss.endpoint,
            "AUTOTAG_RULES": LOCATION,
            "AUTOTAG_RULES_MAX_AGE": "1",
        },
        dead_letters=DeadLetterStore(),
        retry_base_seconds=0.01,
    )
    with local:
        local.wire_oss(oss)
        yield local


def settle(oss: LocalOSS, fc: LocalFC) -> list[dict[str, object]]:
    assert oss.notifier.drain(30) and fc.drain(60)
    summaries = [json.loads(r.payload or "{}") for r in fc.results if r.function == "tag-on-upload" and r.ok]
    # the rules file's own upload event (under the state prefix) is ignored: not an object to tag
    summaries = [s for s in summaries if s["results"][0]["outcome"] != "ignored"]
    assert all(r.ok for r in fc.results), [r.error_message for r in fc.results if not r.ok]
    fc.results.clear()
    return summaries


def test_rules_from_oss_change_without_a_redeploy(
    oss: LocalOSS, fc: LocalFC, template_bucket: oss2.Bucket, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bucket = template_bucket
    code, output = push(oss, tmp_path / "rules.json", team_rules("blue"))
    assert code == 0 and "pushed" in output and "1 rules" in output, output
    settle(oss, fc)

    # Many events within max_age: the rules are read once, every object costs what it always does.
    oss.conditions.reset_counters()
    started = time.monotonic()
    for number in range(10):
        bucket.put_object(f"first/{number}.jpg", b"x")
    summaries = settle(oss, fc)
    elapsed = time.monotonic() - started
    rule_reads = oss.conditions.requests["GetObject"]
    per_object = sum(
        oss.conditions.requests[api] for api in ("HeadObject", "GetObjectTagging", "PutObjectTagging")
    )
    assert rule_reads <= 1 + elapsed / 1.0 + 1, (rule_reads, elapsed)  # at most one per max_age (1 s)
    assert per_object == 20 and [r["ossRequests"] for s in summaries for r in s["results"]] == [2] * 10  # type: ignore[index]
    assert all(readable(tags_of(bucket, f"first/{n}.jpg"))["team"] == "blue" for n in range(10))

    # A new version is picked up within max_age.
    code, _ = push(oss, tmp_path / "rules.json", team_rules("green"))
    assert code == 0
    time.sleep(1.2)
    bucket.put_object("second.jpg", b"x")
    (summary,) = settle(oss, fc)
    assert readable(tags_of(bucket, "second.jpg"))["team"] == "green"
    green = summary["rulesFingerprint"]

    # A bad version (written past the CLI's check) never replaces the good one; the error says where.
    bucket.put_object(".autotag/rules.json", b'{"version": 1, "rules": [{"name": "x", "tagz": {"k": "v"}}]}')
    time.sleep(1.2)
    with caplog.at_level(logging.ERROR, logger="autotag.rules"):
        bucket.put_object("third.jpg", b"x")
        (summary,) = settle(oss, fc)
    assert summary["rulesFingerprint"] == green
    assert readable(tags_of(bucket, "third.jpg"))["team"] == "green"
    # the rules' own error; other loggers' records (an upload summary naming the rules key) are not it
    (error,) = [
        r.getMessage()
        for r in caplog.records
        if r.name == "autotag.rules" and r.levelno >= logging.ERROR and "rules.json" in r.getMessage()
    ]
    assert (
        LOCATION in error
        and "(version " in error
        and "needs `tags`" in error
        and "still using version" in error
    )


def test_push_refuses_a_file_that_does_not_check(
    oss: LocalOSS, template_bucket: oss2.Bucket, tmp_path: Path
) -> None:
    code, output = push(oss, tmp_path / "bad.json", '{"version": 1, "rules": []}')
    assert code == 1 and output.startswith("Error:") and "bad.json" in output
    with pytest.raises(oss2.exceptions.NoSuchKey):
        template_bucket.head_object(".autotag/rules.json")
