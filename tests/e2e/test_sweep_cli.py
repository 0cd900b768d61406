"""`autotag sweep` runs the timer function's sweep from a terminal: same checkpoints, same results."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import oss2
from click.testing import CliRunner
from conftest import LONG_TERM, readable, sealed_header, tags_of

from autotag_cli.main import cli
from localcloud.oss import LocalOSS

TAGGED = sealed_header({"lifecycle": "temporary", "kind": "log", "team": "ops"}, "kind", "lifecycle")


def run(oss: LocalOSS, *args: str) -> tuple[int, str]:
    env = {
        "AUTOTAG_OSS_ENDPOINT": oss.endpoint,
        "ALIBABA_CLOUD_ACCESS_KEY_ID": LONG_TERM.access_key_id,
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": LONG_TERM.access_key_secret,
        "AUTOTAG_RULES": "default",
        "COLUMNS": "220",  # wide enough that rich does not wrap the tables
    }
    result = CliRunner().invoke(cli, ["sweep", *args], env=env, terminal_width=200)
    return result.exit_code, result.output


def later(days: int) -> str:
    return (datetime.now(timezone.utc) + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


def move_to(oss: LocalOSS, days: int) -> None:
    """The local OSS's clock `days` after the real time: what was uploaded is that much older."""
    oss.clock.offset = timedelta(days=days)


def test_dry_run_table_then_sweep_then_nothing_left(oss: LocalOSS, bucket: oss2.Bucket) -> None:
    bucket.put_object("tmp/a.log", b"x", headers={"x-oss-tagging": TAGGED})
    bucket.put_object("docs/b.log", b"x", headers={"x-oss-tagging": sealed_header({"kind": "log"}, "kind")})
    code, output = run(oss, "--bucket", bucket.bucket_name, "--at", later(8), "--dry-run")
    assert code == 0, output
    assert "stale tags (dry run: nothing written)" in output
    assert "lifecycle=temporary" in output and "its TTL (7d from Last-Modified) has passed" in output
    assert tags_of(bucket, "tmp/a.log")["lifecycle"] == "temporary"

    code, output = run(oss, "--bucket", bucket.bucket_name, "--at", later(8), "--json")
    assert code == 1 and "ahead of OSS's clock" in output  # only a dry run may look ahead

    move_to(oss, 8)  # without --at, the sweep's clock is OSS's
    code, output = run(oss, "--bucket", bucket.bucket_name, "--json")
    assert code == 0, output
    (report,) = json.loads(output)["sweeps"]
    assert (report["mode"], report["listed"], report["pruned"], report["complete"]) == ("full", 2, 1, True)
    assert readable(tags_of(bucket, "tmp/a.log")) == {"kind": "log", "team": "ops", "autotag": "kind"}

    move_to(oss, 9)
    code, output = run(oss, "--bucket", bucket.bucket_name, "--at", later(9))
    assert code == 0, output
    assert "incremental" in output and "requests per listed object" in output


def test_bad_options_are_clear(oss: LocalOSS, bucket: oss2.Bucket) -> None:
    code, output = run(oss, "--bucket", bucket.bucket_name, "--at", "next tuesday")
    assert code == 2 and "'next tuesday' is not an ISO-8601 time" in output
    code, output = run(oss, "--bucket", bucket.bucket_name, "--workers", "0")
    assert code == 2 and "--workers" in output
