"""The OSS V2 SDK conformance step of the test command: skipped with one line on a machine without the
SDK's tests (../shared/upstream), a failure when CI requires it, and run from the real folder when a
symlink leads there (its exclusions are test ids relative to that folder)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
RUNNER = HERE / "oss_v2_suite.py"
UPSTREAM = HERE.parents[1].parent / "shared" / "upstream" / "alibabacloud-oss-python-sdk-v2-1.3.2"


def run(*args: str, required: bool = False) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "AUTOTAG_REQUIRE_OSS_V2_SUITE"}
    if required:
        env["AUTOTAG_REQUIRE_OSS_V2_SUITE"] = "1"
    return subprocess.run(
        [sys.executable, str(RUNNER), *args], env=env, capture_output=True, text=True, timeout=600
    )


def test_without_the_sdks_tests_the_step_is_skipped_with_one_line(tmp_path: Path) -> None:
    done = run("--upstream", str(tmp_path / "nothing-here"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines() == [
        f"oss v2 conformance skipped: the OSS V2 SDK's tests are not at {tmp_path / 'nothing-here'} "
        "(CI requires them: AUTOTAG_REQUIRE_OSS_V2_SUITE=1)"
    ]
    assert done.stderr == ""


def test_ci_cannot_skip_the_step(tmp_path: Path) -> None:
    done = run("--upstream", str(tmp_path / "nothing-here"), required=True)
    assert done.returncode == 1
    assert "oss v2 conformance FAILED: the OSS V2 SDK's tests are not at" in done.stderr
    assert "AUTOTAG_REQUIRE_OSS_V2_SUITE=1" in (HERE.parents[1] / ".ci" / "run").read_text()


@pytest.mark.skipif(not UPSTREAM.is_dir(), reason=f"no OSS V2 SDK tests at {UPSTREAM}")
def test_the_sdks_tests_reached_through_a_symlink_run_with_their_exclusions(tmp_path: Path) -> None:
    """test_client_filelike.py holds a test the local OSS is excluded from (oss_v2_exclusions.txt): it is
    deselected only when the test ids are those of the real folder."""
    (tmp_path / "linked").symlink_to(UPSTREAM)
    done = run("--upstream", str(tmp_path / "linked"), "tests/integration/test_client_filelike.py")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "1 deselected" in done.stdout
