"""Through the handlers, as a user meets them: a full tag set with overwrite rules, a tag of the uploader's
own under the record's key, a record the system did not write, and tags rules could not produce."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import oss2
import pytest
from conftest import readable, tags_of
from test_tag_expiry import Sweeper
from test_tag_on_upload import Trigger

from localcloud.oss import LocalOSS


@pytest.fixture
def trigger(oss: LocalOSS, bucket: oss2.Bucket, monkeypatch: pytest.MonkeyPatch) -> Iterator[Trigger]:
    monkeypatch.setenv("AUTOTAG_OSS_ENDPOINT", oss.endpoint)
    monkeypatch.delenv("AUTOTAG_RULES", raising=False)
    yield Trigger(oss, bucket)


def use_rules(monkeypatch: pytest.MonkeyPatch, path: Path, rules: list[dict[str, Any]], **extra: Any) -> None:
    path.write_text(json.dumps({"version": 1, "rules": rules, **extra}))
    monkeypatch.setenv("AUTOTAG_RULES", str(path))


STATUS_RULES = [{"name": "status", "tags": {"status": "final", "stage": "prod"}, "conflict": "overwrite"}]


@pytest.mark.parametrize("overwritten", [["status", "stage"], ["status"]])
def test_ten_uploader_tags_and_an_overwrite_rule_are_never_refused_by_oss(
    trigger: Trigger,
    bucket: oss2.Bucket,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    overwritten: list[str],
) -> None:
    rules = [{"name": "status", "tags": {k: "final" for k in overwritten}, "conflict": "overwrite"}]
    use_rules(monkeypatch, tmp_path / "rules.json", rules)
    uploader = {"status": "draft", "stage": "dev", **{f"u{i}": "v" for i in range(8)}}
    bucket.put_object(
        "full.txt", b"x", headers={"x-oss-tagging": "&".join(f"{k}={v}" for k, v in uploader.items())}
    )
    (result,) = trigger.run()
    assert result["outcome"] == "unchanged"  # no room for the ownership record a takeover needs
    assert {d["key"] for d in result["dropped"]} == set(overwritten)
    assert all("more than 10 tags" in d["reason"] for d in result["dropped"])
    assert readable(tags_of(bucket, "full.txt")) == uploader


def test_defaults_overwrite_with_nine_uploader_tags_takes_the_last_slot_for_the_record(
    trigger: Trigger, bucket: oss2.Bucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_rules(
        monkeypatch,
        tmp_path / "rules.json",
        [{"name": "s", "tags": {"status": "final"}}],
        defaults={"conflict": "overwrite"},
    )
    uploader = {"status": "draft", **{f"u{i}": "v" for i in range(8)}}
    bucket.put_object(
        "nine.txt", b"x", headers={"x-oss-tagging": "&".join(f"{k}={v}" for k, v in uploader.items())}
    )
    (result,) = trigger.run()
    assert result["outcome"] == "tagged" and result["changed"] == {"status": {"from": "draft", "to": "final"}}
    tags = tags_of(bucket, "nine.txt")
    assert len(tags) == 10 and tags["status"] == "final" and tags["autotag"].startswith("status seal:")


def test_an_uploaders_own_tag_under_the_record_key_is_left_alone(
    trigger: Trigger, bucket: oss2.Bucket
) -> None:
    bucket.put_object("mine.jpg", b"x", headers={"x-oss-tagging": "autotag=off&team=a"})
    (result,) = trigger.run()
    assert result["outcome"] == "skipped" and "did not write" in result["reason"]
    assert readable(tags_of(bucket, "mine.jpg")) == {"autotag": "off", "team": "a"}


def test_a_record_the_system_did_not_write_never_gets_a_tag_removed(
    trigger: Trigger, bucket: oss2.Bucket, oss: LocalOSS, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTOTAG_OSS_ENDPOINT", oss.endpoint)
    bucket.put_object("forged.txt", b"x", headers={"x-oss-tagging": "team=finance&autotag=team"})
    trigger.run()
    report = Sweeper(bucket).run(datetime.now(timezone.utc), full=True)
    assert report["tagsRemoved"] == 0
    assert readable(tags_of(bucket, "forged.txt")) == {"team": "finance", "autotag": "team"}


def test_tags_a_rule_could_not_produce_say_why(
    trigger: Trigger,
    bucket: oss2.Bucket,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    rules = [
        {"name": "owner", "tags": {"owner": {"from": "meta", "name": "owner"}}},
        {"name": "kind", "tags": {"kind": {"from": "extension", "map": {"jpg": "image"}}}},
        {"name": "where", "tags": {"where": "{meta.site}-{extension}"}},
    ]
    use_rules(monkeypatch, tmp_path / "rules.json", rules)
    bucket.put_object("noext", b"x")
    bucket.put_object("a.png", b"x")
    with caplog.at_level("INFO", logger="autotag.upload"):
        results = sorted(trigger.run(), key=lambda r: r["key"])
    dropped = {r["key"]: {d["key"]: (d["rule"], d["reason"]) for d in r["dropped"]} for r in results}
    assert dropped["noext"] == {
        "owner": ("owner", "the object has no x-oss-meta-owner, and the rule gives no default"),
        "kind": ("kind", "the key has no extension, and the rule gives no default"),
        "where": ("where", "{meta.site} has no value for this object"),
    }
    assert dropped["a.png"]["kind"] == (
        "kind",
        "the key's extension 'png' is not in the map, and the rule gives no default",
    )
    logged = [json.loads(r.getMessage()) for r in caplog.records if r.name == "autotag.upload"]
    assert all(line["dropped"] for line in logged)
