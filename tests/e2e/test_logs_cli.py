"""What the functions did, from the CLI: `autotag local up`'s log without the system's own state writes
(counted instead), `autotag invoke --remote` with the invocation's log tail, and `autotag logs` over the
local FC's invocation log, with what each function logged."""

from __future__ import annotations

import contextlib
import json
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import oss2
import pytest
from click.testing import CliRunner, Result
from conftest import (
    END_OF_OUTPUT,
    LONG_TERM,
    WAIT_SECONDS,
    LocalCloudProcess,
    local_cloud_process,
    stop_local_up,
    wait_for_tag,
)

from autotag_cli.main import cli

ROOT = Path(__file__).parents[2]
TEMPLATE = str(ROOT / "template.yml")


def run(*args: str, **env: str) -> Result:
    return CliRunner().invoke(cli, list(args), env={"COLUMNS": "200", **env}, terminal_width=200)


def demo_bucket(cloud: LocalCloudProcess) -> oss2.Bucket:
    auth = oss2.Auth(LONG_TERM.access_key_id, LONG_TERM.access_key_secret)
    return oss2.Bucket(auth, cloud.oss_endpoint, "autotag-demo")


def stopped(cloud: LocalCloudProcess) -> list[str]:
    """What local up printed up to its end (SIGTERM ends it as Ctrl-C does)."""
    assert cloud.process is not None
    assert stop_local_up(cloud.process), "local up did not end after SIGTERM"
    lines = []
    while (line := cloud.output.get()) != END_OF_OUTPUT:  # every line the reader thread still holds
        lines.append(line)
    return lines


def printed_until(cloud: LocalCloudProcess, text: str, seconds: float = WAIT_SECONDS) -> list[str]:
    """Every line local up printed, up to the first one holding `text`."""
    lines: list[str] = []
    deadline = time.monotonic() + seconds
    while not lines or text not in lines[-1]:
        left = deadline - time.monotonic()
        assert left > 0, f"no line with {text!r}: {lines}"
        try:
            lines.append(cloud.output.get(timeout=left))
        except queue.Empty:
            continue
    return lines


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[LocalCloudProcess]:
    with local_cloud_process(tmp_path, ROOT / "template.yml") as running:
        yield running


def test_local_up_counts_the_systems_own_state_writes_instead_of_printing_them(tmp_path: Path) -> None:
    with local_cloud_process(tmp_path, ROOT / "template.yml", "--log-level", "info") as cloud:
        bucket = demo_bucket(cloud)
        for number in range(3):
            bucket.put_object(f".autotag/state-{number}.json", b"{}")  # as the sweep's checkpoints are
        bucket.put_object("shown/a.jpg", b"x")
        printed = printed_until(cloud, "shown/a.jpg")
        printed += stopped(cloud)
    assert any("PutObject shown/a.jpg: tagged" in line for line in printed), printed
    assert not [line for line in printed if ".autotag/state-" in line], printed  # not even at info
    assert any("3 ignored state writes" in line and "-v shows them" in line for line in printed), printed


def test_verbose_local_up_shows_the_state_writes(tmp_path: Path) -> None:
    with local_cloud_process(tmp_path, ROOT / "template.yml", global_options=("-v",)) as cloud:
        demo_bucket(cloud).put_object(".autotag/state.json", b"{}")
        line = cloud.line_containing(".autotag/state.json")
    assert "ignored" in line, line


def test_invoke_remote_prints_the_invocations_log_tail(cloud: LocalCloudProcess, tmp_path: Path) -> None:
    demo_bucket(cloud).put_object("tail/a.jpg", b"x")
    event = tmp_path / "event.json"
    event.write_text(run("event", "oss", "--bucket", "autotag-demo", "--key", "tail/a.jpg").stdout)
    invoked = run(
        "invoke", "tag-on-upload", "-e", str(event), "--remote", "--template", TEMPLATE,
        AUTOTAG_OSS_ENDPOINT=cloud.oss_endpoint, AUTOTAG_FC_ENDPOINT=cloud.fc_api_endpoint,
    )  # fmt: skip
    assert invoked.exit_code == 0, invoked.output
    assert json.loads(invoked.stdout)["results"][0]["key"] == "tail/a.jpg"  # the answer alone on stdout
    assert "FC Invoke Start RequestId" in invoked.stderr, invoked.stderr
    assert '"key": "tail/a.jpg"' in invoked.stderr, invoked.stderr  # the function's own log line


def test_logs_shows_each_invocation_with_what_the_function_logged(
    cloud: LocalCloudProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = demo_bucket(cloud)
    bucket.put_object("logged/a.jpg", b"x")
    wait_for_tag(bucket, "logged/a.jpg", "kind")
    assert cloud.line_containing("logged/a.jpg")
    monkeypatch.chdir(tmp_path)  # where local up runs: its invocation log is in .localcloud/
    shown = run("logs", "tag-on-upload")
    assert shown.exit_code == 0, shown.output
    assert "tag-on-upload PutObject logged/a.jpg: tagged" in shown.output, shown.output
    assert '"key": "logged/a.jpg"' in shown.output  # the function's JSON line, under its invocation
    assert run("logs", "tag-expiry").output.strip() == "", "another function's invocations are not shown"
    as_json = [json.loads(line) for line in run("logs", "--json").stdout.splitlines()]
    assert any(r["function"] == "tag-on-upload" and r["log"] for r in as_json), as_json
    nothing = run("logs", "no-such-function", "--template", TEMPLATE)
    assert nothing.exit_code == 4 and "no function 'no-such-function'" in nothing.output, nothing.output


def test_logs_follow_shows_invocations_as_they_come(cloud: LocalCloudProcess, tmp_path: Path) -> None:
    autotag = Path(sys.executable).with_name("autotag")
    follower = subprocess.Popen(
        [str(autotag), "logs", "--follow"], cwd=tmp_path, stdout=subprocess.PIPE, text=True
    )
    lines: queue.Queue[str] = queue.Queue()
    stdout = follower.stdout
    assert stdout is not None
    threading.Thread(target=lambda: [lines.put(line) for line in stdout], daemon=True).start()
    try:
        demo_bucket(cloud).put_object("followed/a.jpg", b"x")  # shown whether or not --follow is reading yet
        deadline = time.monotonic() + WAIT_SECONDS
        seen = ""
        while "followed/a.jpg" not in seen and time.monotonic() < deadline:
            with contextlib.suppress(queue.Empty):
                seen = lines.get(timeout=1)
        assert "followed/a.jpg" in seen, "autotag logs --follow never showed the new invocation"
    finally:
        follower.terminate()
        follower.wait()


def test_logs_says_when_no_invocation_has_the_request_id(tmp_path: Path) -> None:
    """An id that matches nothing (mistyped, another folder's, not run yet) is said, not an empty answer."""
    log = tmp_path / "invocations.jsonl"
    record = {
        "time": "2026-12-07T08:00:00.000Z",
        "function": "tag-expiry",
        "requestId": "known",
        "kind": "done",
    }
    log.write_text(json.dumps({**record, "line": "08:00:00 tag-expiry timer nightly-expiry: swept"}) + "\n")
    log.chmod(0o600)
    found = run("logs", "--request-id", "known", "--file", str(log))
    assert found.exit_code == 0 and "swept" in found.output, found.output
    missing = run("logs", "--request-id", "d09982c5-nowhere", "--file", str(log))
    assert missing.exit_code == 4, missing.output
    (line,) = missing.output.splitlines()
    assert line.startswith("Error: no invocation with request id d09982c5-nowhere in "), line


def test_two_local_clouds_in_one_folder_keep_their_own_invocations(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two `autotag local up` in one folder (other ports, other dead-letter files): each keeps its own
    invocation log, the second does not wipe the first's, and `autotag logs` shows the invocations of the
    cloud its --fc-endpoint names, and asks for one when several run here; a second instance on the same
    dead-letter file is refused, naming --dead-letters."""
    monkeypatch.chdir(tmp_path)
    with local_cloud_process(tmp_path, (ROOT / "template.yml")) as first:
        demo_bucket(first).put_object("from-first.jpg", b"x")
        wait_for_tag(demo_bucket(first), "from-first.jpg", "kind")
        assert printed_until(first, "from-first.jpg")
        autotag = str(Path(sys.executable).with_name("autotag"))
        ports = ["--oss-port", "0", "--fc-port", "0", "--cloudflow-port", "0"]
        same_letters = subprocess.run(
            [autotag, "local", "up", *ports, "--template", str(ROOT / "template.yml"),
             "--dead-letters", str(tmp_path / "dl.jsonl")],
            cwd=tmp_path, capture_output=True, text=True,
        )  # fmt: skip
        assert same_letters.returncode == 2 and "--dead-letters" in same_letters.stderr, same_letters
        with local_cloud_process(
            tmp_path, (ROOT / "template.yml"), "--dead-letters", str(tmp_path / "dl2.jsonl")
        ) as second:
            demo_bucket(second).put_object("from-second.jpg", b"x")
            wait_for_tag(demo_bucket(second), "from-second.jpg", "kind")
            assert printed_until(second, "from-second.jpg")
            of_first = run("logs", "--fc-endpoint", first.fc_api_endpoint)
            assert of_first.exit_code == 0, of_first.output
            assert "from-first.jpg" in of_first.output and "from-second.jpg" not in of_first.output
            of_second = run("logs", AUTOTAG_FC_ENDPOINT=second.fc_api_endpoint)
            assert of_second.exit_code == 0, of_second.output
            assert "from-second.jpg" in of_second.output and "from-first.jpg" not in of_second.output
            neither = run("logs")
            assert neither.exit_code == 2 and "--fc-endpoint" in neither.output, neither.output
            assert first.fc_api_endpoint in neither.output and second.fc_api_endpoint in neither.output
