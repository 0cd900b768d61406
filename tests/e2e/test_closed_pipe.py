"""A command whose reader goes away (`autotag logs | head -1`, `... | grep -q`) ends quietly, as a Unix
filter does: no `Error:` line about a broken pipe, no traceback, the exit status of SIGPIPE (141)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import oss2
from conftest import LONG_TERM

from localcloud.oss import LocalOSS


def closed_early(command: list[str], env: dict[str, str] | None = None) -> tuple[int, str]:
    """(exit status, standard error) of the CLI when its output's reader goes away after one line."""
    process = subprocess.Popen(
        [sys.executable, "-c", "from autotag_cli.main import cli; cli()", *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    assert process.stdout is not None and process.stderr is not None
    assert process.stdout.readline()
    process.stdout.close()  # the reader goes away, as `head -1` does
    errors = process.stderr.read().decode()
    return process.wait(60), errors


def test_a_table_into_a_closed_pipe_ends_quietly(oss: LocalOSS, bucket: oss2.Bucket) -> None:
    """A rich table (plan), written in pieces larger than the pipe holds."""
    for n in range(300):  # a table far larger than a pipe's buffer
        bucket.put_object(f"many/{n:04d}.jpg", b"x")
    env = {
        "AUTOTAG_OSS_ENDPOINT": oss.endpoint,
        "AUTOTAG_RULES": "default",
        "ALIBABA_CLOUD_ACCESS_KEY_ID": LONG_TERM.access_key_id,
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": LONG_TERM.access_key_secret,
    }
    plan = ["plan", "--bucket", bucket.bucket_name, "--prefix", "many/", "--limit", "1000"]
    assert closed_early(plan, env) == (141, "")


def test_output_into_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    log = tmp_path / "invocations.jsonl"
    record = {
        "time": "2026-12-07T08:00:00.000Z",
        "function": "tag-on-upload",
        "requestId": "r",
        "kind": "done",
    }
    with log.open("w") as out:
        for n in range(20000):  # far more than a pipe's buffer holds
            out.write(
                json.dumps({**record, "line": f"08:00:00 tag-on-upload PutObject k{n}.jpg: tagged"}) + "\n"
            )
    log.chmod(0o600)
    assert closed_early(["logs", "--file", str(log)]) == (141, "")
