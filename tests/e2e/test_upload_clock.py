"""The upload path judges TTLs by OSS's clock — the `Date` of the HEAD it makes anyway — as the sweep
does, so a local cloud run ahead (`autotag local up --clock-offset 8d`) never re-adds a tag whose TTL
passed, through any command that tags: plan, backfill, invoke."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import oss2
from click.testing import CliRunner
from conftest import LONG_TERM, readable, tags_of

from autotag_cli.main import cli
from localcloud.oss import LocalOSS

TEMPLATE = str(Path(__file__).parents[2] / "template.yml")


def run(oss: LocalOSS, *args: str) -> tuple[int, str]:
    env = {
        "AUTOTAG_OSS_ENDPOINT": oss.endpoint,
        "ALIBABA_CLOUD_ACCESS_KEY_ID": LONG_TERM.access_key_id,
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": LONG_TERM.access_key_secret,
    }
    result = CliRunner().invoke(cli, list(args), env=env, terminal_width=200)
    return result.exit_code, result.output


def planned(oss: LocalOSS, bucket: str, key: str) -> dict[str, object]:
    code, output = run(oss, "plan", "--bucket", bucket, "--key", key, "--json")
    assert code == 0, output
    document: dict[str, object] = json.loads(output)
    return document


def test_plan_judges_a_ttl_by_osss_clock(oss: LocalOSS, template_bucket: oss2.Bucket) -> None:
    template_bucket.put_object("tmp/a.txt", b"x")  # the scratch-space rule: lifecycle=temporary for 7d
    now = planned(oss, "autotag-demo", "tmp/a.txt")
    assert now["added"] == {"kind": "text", "size": "small", "lifecycle": "temporary"}
    oss.clock.advance(timedelta(days=8))
    later = planned(oss, "autotag-demo", "tmp/a.txt")
    assert later["added"] == {"kind": "text", "size": "small"}
    assert later["ossRequests"] == now["ossRequests"] == 1  # the HEAD it makes anyway: no extra request


def test_backfill_and_invoke_never_add_a_tag_whose_ttl_passed_by_osss_clock(
    oss: LocalOSS, template_bucket: oss2.Bucket, tmp_path: Path
) -> None:
    for key in ("tmp/b.txt", "tmp/c.txt"):
        template_bucket.put_object(key, b"x")
    oss.clock.advance(timedelta(days=8))
    oss.conditions.reset_counters()
    code, output = run(
        oss,
        "backfill",
        "--bucket",
        "autotag-demo",
        "--prefix",
        "tmp/b",
        "--template",
        TEMPLATE,
        "--checkpoint",
        str(tmp_path / "checkpoint.json"),
        "--report",
        str(tmp_path / "failures.jsonl"),
    )
    assert code == 0, output
    assert readable(tags_of(template_bucket, "tmp/b.txt")) == {
        "kind": "text",
        "size": "small",
        "autotag": "kind size",
    }
    assert oss.conditions.requests["HeadObject"] + oss.conditions.requests["PutObjectTagging"] == 2
    event = tmp_path / "event.json"
    made = ["event", "oss", "--bucket", "autotag-demo", "--key", "tmp/c.txt", "-o", str(event)]
    code, output = run(oss, *made)
    assert code == 0, output
    code, output = run(oss, "invoke", "tag-on-upload", "-e", str(event), "--template", TEMPLATE)
    assert code == 0, output
    assert "lifecycle" not in tags_of(template_bucket, "tmp/c.txt")
