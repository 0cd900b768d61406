"""`autotag plan` shows what would change, through the same code as the handler, and writes nothing."""

from __future__ import annotations

import json

import oss2
from click.testing import CliRunner
from conftest import LONG_TERM, readable, tags_of

from autotag_cli.main import cli
from localcloud.oss import LocalOSS


def run(oss: LocalOSS, *args: str, width: int = 200) -> tuple[int, str]:
    env = {
        "AUTOTAG_OSS_ENDPOINT": oss.endpoint,
        "ALIBABA_CLOUD_ACCESS_KEY_ID": LONG_TERM.access_key_id,
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": LONG_TERM.access_key_secret,
        "AUTOTAG_RULES": "default",
        "COLUMNS": str(width),
    }
    result = CliRunner().invoke(cli, ["plan", *args], env=env, terminal_width=width)
    return result.exit_code, result.output


def test_plan_for_a_prefix_writes_nothing(oss: LocalOSS, bucket: oss2.Bucket) -> None:
    bucket.put_object("projects/x/a.jpg", b"1", headers={"x-oss-tagging": "kind=photo"})
    bucket.put_object("projects/x/b.mp4", b"2")
    oss.conditions.reset_counters()
    code, output = run(oss, "--bucket", bucket.bucket_name, "--prefix", "projects/", "--json")
    assert code == 0, output
    first, second = (json.loads(line) for line in output.splitlines())
    assert (first["key"], first["outcome"], first["current"]) == (
        "projects/x/a.jpg",
        "planned",
        {"kind": "photo"},
    )
    assert first["added"] == {"project": "x", "size": "small"}
    assert first["dropped"][0]["reason"] == "kept the existing value 'photo' (conflict policy keep-existing)"
    assert readable(second["desired"]) == {
        "project": "x",
        "kind": "video",
        "size": "small",
        "autotag": "kind project size",
    }
    assert "PutObjectTagging" not in oss.conditions.requests
    code, table = run(oss, "--bucket", bucket.bucket_name, "--prefix", "projects/")
    assert code == 0 and "nothing written" in table
    assert readable(tags_of(bucket, "projects/x/b.mp4")) == {}


def test_plan_for_a_missing_key_says_so(oss: LocalOSS, bucket: oss2.Bucket) -> None:
    code, output = run(oss, "--bucket", bucket.bucket_name, "--key", "nope.jpg")
    assert code == 4, output  # not found, as docs/cli.md's exit-code table says
    assert f"oss://{bucket.bucket_name}/nope.jpg does not exist" in output, output


def test_plan_argument_errors_are_clear(oss: LocalOSS, bucket: oss2.Bucket, tmp_path: object) -> None:
    code, output = run(oss, "--bucket", bucket.bucket_name)
    assert code == 2 and "exactly one of --key and --prefix" in output
    code, output = run(oss, "--bucket", bucket.bucket_name, "--key", "k", "--rules", f"{tmp_path}/none.json")
    assert code == 2 and "cannot read the rules file" in output and "Traceback" not in output


def test_plan_of_a_state_key_plans_what_the_function_does_nothing(oss: LocalOSS, bucket: oss2.Bucket) -> None:
    """The upload function ignores keys under AUTOTAG_STATE_PREFIX (the sweep's checkpoints and leases):
    the plan of one says so instead of proposing tags."""
    bucket.put_object(".autotag/sweep/x/checkpoint.jpg", b"{}")
    code, output = run(
        oss, "--bucket", bucket.bucket_name, "--key", ".autotag/sweep/x/checkpoint.jpg", "--json"
    )
    assert code == 0, output
    (result,) = (json.loads(line) for line in output.splitlines())
    assert result["outcome"] == "ignored" and result["desired"] == {}, result
    assert result["reason"] == "keys under '.autotag/' hold the sweep's own state"


def test_a_plan_of_nothing_says_so(oss: LocalOSS, bucket: oss2.Bucket) -> None:
    bucket.put_object(".autotag/sweep/x/checkpoint.json", b"{}")
    result = CliRunner().invoke(
        cli,
        ["plan", "--bucket", bucket.bucket_name, "--prefix", ".autotag/", "--json"],
        env={"AUTOTAG_OSS_ENDPOINT": oss.endpoint, "AUTOTAG_RULES": "default"},
    )
    assert result.exit_code == 0 and result.stdout == "", result.output  # no objects: no JSON lines
    assert f"no objects to plan under oss://{bucket.bucket_name}/.autotag/" in result.stderr
    assert "keys under '.autotag/' hold the sweep's own state" in result.stderr
    code, output = run(oss, "--bucket", bucket.bucket_name, "--prefix", "empty/")
    assert code == 0 and f"no objects to plan under oss://{bucket.bucket_name}/empty/" in output, output


def test_the_table_shows_keys_as_they_are(oss: LocalOSS, bucket: oss2.Bucket) -> None:
    """A key is data: `[red]` is not rich markup and `:ram:` not an emoji code."""
    bucket.put_object("[red]a:ram:b.jpg", b"x")
    code, output = run(oss, "--bucket", bucket.bucket_name, "--key", "[red]a:ram:b.jpg")
    assert code == 0 and "[red]a:ram:b.jpg" in output, output


HOSTILE_KEY = "evil\x1b[2J\x1b]0;owned\x07key\r\nline\tx\x9b1m.jpg"
SHOWN_KEY = "evil\\x1b[2J\\x1b]0;owned\\x07key\\r\\nline\\tx\\x9b1m.jpg"


def test_control_characters_in_a_key_are_shown_escaped_and_json_stays_exact(
    oss: LocalOSS, bucket: oss2.Bucket
) -> None:
    """A key is anyone's: its ESC, CR, LF, BEL, tab and C1 characters never reach the terminal raw (they
    could clear it, retitle it, or overwrite a line); the table shows them escaped. JSON is for programs
    and keeps the key exact."""
    bucket.put_object(HOSTILE_KEY, b"x")
    code, output = run(oss, "--bucket", bucket.bucket_name, "--key", HOSTILE_KEY)
    assert code == 0, output
    assert not any(c in output for c in "\x1b\x07\r\t\x9b"), repr(output)
    assert SHOWN_KEY in output.replace("\n", ""), output
    code, output = run(oss, "--bucket", bucket.bucket_name, "--key", HOSTILE_KEY, "--json")
    assert code == 0 and json.loads(output)["key"] == HOSTILE_KEY, output


def test_at_80_columns_each_key_and_its_changes_are_whole_on_one_line(
    oss: LocalOSS, bucket: oss2.Bucket
) -> None:
    """A key is what an operator copies into the next command (`plan --key`, `backfill --manifest`): at 80
    columns each is printed whole on one line, with the planned location, never cut or folded in a cell."""
    keys = [f"projects/a-long-project-name/renders/final-cut/frame-{i:06d}.jpg" for i in range(2)]
    for key in keys:
        bucket.put_object(key, b"x")
    code, output = run(oss, "--bucket", bucket.bucket_name, "--prefix", "projects/", width=80)
    assert code == 0, output
    lines = output.splitlines()
    for whole in (f"oss://{bucket.bucket_name}/projects/", *keys, "+ project=a-long-project-name"):
        assert any(whole in line for line in lines), (whole, output)
