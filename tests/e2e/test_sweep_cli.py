"""`autotag sweep` runs the timer function's sweep from a terminal: same checkpoints, same results."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone

import oss2
import pytest
from click.testing import CliRunner, Result
from conftest import LONG_TERM, readable, sealed_header, tags_of

from autotag_cli.main import cli
from localcloud.oss import LocalOSS

TAGGED = sealed_header({"lifecycle": "temporary", "kind": "log", "team": "ops"}, "kind", "lifecycle")


def run(oss: LocalOSS, *args: str) -> tuple[int, str]:
    """The exit code, and standard output and error as a terminal shows them."""
    result = invoke(oss, *args)
    return result.exit_code, result.output


def invoke(oss: LocalOSS, *args: str, width: int = 220) -> Result:
    env = {
        "AUTOTAG_OSS_ENDPOINT": oss.endpoint,
        "ALIBABA_CLOUD_ACCESS_KEY_ID": LONG_TERM.access_key_id,
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": LONG_TERM.access_key_secret,
        "AUTOTAG_RULES": "default",
        "COLUMNS": str(width),  # by default wide enough that rich does not wrap the tables
    }
    return CliRunner().invoke(cli, ["sweep", *args], env=env, terminal_width=width)


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
    assert not re.search(r"^┃[\s┃]*$", output, re.MULTILINE), output  # the summary has no empty header row
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


def errors_in(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("Error:")]


@pytest.mark.parametrize("dry_run", [[], ["--dry-run"]])
@pytest.mark.parametrize(
    ("at", "why"),
    [("9999-12-31", "9999-12-31T00:00:00Z is after 2999-12-31"), ("1999-12-31", "is before 2000-01-01")],
)
def test_a_clock_no_timer_ever_has_is_a_usage_error(
    oss: LocalOSS, bucket: oss2.Bucket, at: str, why: str, dry_run: list[str]
) -> None:
    bucket.put_object("tmp/a.log", b"x", headers={"x-oss-tagging": TAGGED})
    code, output = run(oss, "--bucket", bucket.bucket_name, "--at", at, *dry_run)
    assert code == 2, output
    (line,) = errors_in(output)
    assert "--at" in line and why in line and "no timer fires then" in line, output
    assert "tag expiry sweep" not in output  # refused before it swept anything: no table


def test_a_refused_sweep_ends_with_an_error_line_saying_why(oss: LocalOSS, bucket: oss2.Bucket) -> None:
    """A clock ahead of OSS's: the table shows the run, the Error line says why it did nothing (and does
    not suggest --full, which would not help); exit 1. A dry run may look ahead: exit 0."""
    bucket.put_object("tmp/a.log", b"x", headers={"x-oss-tagging": TAGGED})
    code, output = run(oss, "--bucket", bucket.bucket_name, "--at", later(8))
    assert code == 1, output
    (line,) = errors_in(output)
    assert f"oss://{bucket.bucket_name}/" in line and "ahead of OSS's clock" in line, output
    assert "only a dry run may look ahead" in line and "--full" not in output, output
    result = invoke(oss, "--bucket", bucket.bucket_name, "--at", later(8), "--json")
    assert result.exit_code == 1 and json.loads(result.stdout)["sweeps"][0]["complete"] is False
    (line,) = errors_in(result.stderr)  # standard output holds the JSON only
    assert "ahead of OSS's clock" in line, result.stderr
    code, output = run(oss, "--bucket", bucket.bucket_name, "--at", later(8), "--dry-run")
    assert code == 0 and errors_in(output) == [], output


def test_control_characters_in_a_key_are_shown_escaped_and_json_stays_exact(
    oss: LocalOSS, bucket: oss2.Bucket
) -> None:
    """The stale-tags table shows a key's ESC, CR and LF escaped, never raw (a key is anyone's); the JSON
    report keeps it exact."""
    key = "tmp/evil\x1b[2J\rcover\nline.log"
    bucket.put_object(key, b"x", headers={"x-oss-tagging": TAGGED})
    code, output = run(oss, "--bucket", bucket.bucket_name, "--at", later(8), "--dry-run")
    assert code == 0, output
    assert "\x1b" not in output and "\r" not in output, repr(output)
    assert "tmp/evil\\x1b[2J\\rcover\\nline.log" in output.replace("\n", ""), output
    move_to(oss, 8)
    code, output = run(oss, "--bucket", bucket.bucket_name, "--json")
    assert code == 0, output
    assert json.dumps(key)[1:-1] in output  # exact, in JSON's own escapes


def test_the_progress_line_counts_from_the_start(oss: LocalOSS, bucket: oss2.Bucket) -> None:
    """On a terminal, every frame of the progress line shows the counts, from before the first page is
    listed until the end (they once appeared only once a window of objects was done)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda n: bucket.put_object(f"p/{n:04d}.txt", b"x"), range(200)))
    oss.conditions.latency_seconds = 0.3  # a slow OSS: the first page takes a few frames to come
    env = {"AUTOTAG_OSS_ENDPOINT": oss.endpoint, "TTY_COMPATIBLE": "1", "COLUMNS": "80"}
    result = CliRunner().invoke(cli, ["sweep", "--bucket", bucket.bucket_name, "--dry-run"], env=env)
    assert result.exit_code == 0, result.output
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", result.output)
    label = f"oss://{bucket.bucket_name}/"
    frames = [f for f in re.split(r"[\r\n]", plain) if label in f and "sweep of" not in f]
    assert frames, plain
    assert all(" listed" in frame and " OSS requests" in frame for frame in frames), [
        f for f in frames if " listed" not in f or " OSS requests" not in f
    ]
    assert any("200 listed" in frame for frame in frames), frames


def test_at_80_columns_keys_and_state_keys_are_whole_on_one_line(oss: LocalOSS, bucket: oss2.Bucket) -> None:
    """What an operator copies into the next command (the swept location, an object's key, the key of
    state the sweep set aside) is printed whole on one line at 80 columns, never folded in a table."""
    from autotag.sweep.checkpoint import Scope

    key = "tmp/" + "a-long-folder-name-for-renders/" * 2 + "frame-000123.log"
    bucket.put_object(key, b"x", headers={"x-oss-tagging": TAGGED})
    base = f".autotag/sweep/{Scope(bucket.bucket_name, '').id}/"
    bucket.put_object(base + "checkpoint.json", b"not a checkpoint")
    move_to(oss, 8)
    result = invoke(oss, "--bucket", bucket.bucket_name, width=80)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    for whole in (f"oss://{bucket.bucket_name}/", key, base + "checkpoint.json: not believed"):
        assert any(whole in line for line in lines), (whole, result.output)
    aside = re.compile(re.escape(base) + r"not-believed-\S+-checkpoint\.json")
    assert any(aside.search(line) for line in lines), result.output
    assert "lifecycle" not in tags_of(bucket, key)  # swept all the same
