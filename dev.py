#!/usr/bin/env python3
"""Set up the project's virtualenv and run its jobs: `python3 dev.py demo` or `python3 dev.py test`.

Needs only a Python (3.10 or newer) on PATH: everything else is installed into `.venv` from PyPI with
exact pins (requirements/constraints.txt), and reinstalled only when the pins change.
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"
PIN_FILES = [ROOT / "pyproject.toml", ROOT / "requirements" / "constraints.txt"]
STAMP = VENV / ".installed-pins"


def run(*cmd: str | Path, **env: str) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    completed = subprocess.run([str(c) for c in cmd], cwd=ROOT, env={**os.environ, **env})
    if completed.returncode != 0:
        sys.exit(completed.returncode)


def setup() -> None:
    if sys.version_info < (3, 10):  # noqa: UP036 - this script may be started by an older python3
        sys.exit(f"oss-autotag needs Python 3.10 or newer, this is {sys.version.split()[0]}")
    if not PY.exists():
        print(f"creating virtualenv {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    # The editable install maps top-level packages when it is made: a new package needs a reinstall too.
    packages = sorted(
        p.parent.name for folder in ("functions", "infra") for p in (ROOT / folder).glob("*/__init__.py")
    )
    digest = hashlib.sha256(
        b"".join(p.read_bytes() for p in PIN_FILES) + " ".join(packages).encode()
    ).hexdigest()
    if STAMP.exists() and STAMP.read_text() == digest:
        return
    run(
        PY,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "-c",
        ROOT / "requirements" / "constraints.txt",
        "-e",
        ".[dev]",
    )
    STAMP.write_text(digest)


# FC's Python runtimes and the oss2 each has built in (requirements/fc-python<version>.txt pins them).
FC_RUNTIMES = ("3.10", "3.12")
# The deployed code's tests: its pure core, and the handlers end to end on the local cloud (the CLI,
# deploy and backfill-flow tests exercise tools that never run on FC: the CLI, the local CloudFlow).
DEPLOYED_CODE_TESTS = (
    "tests/functions",
    "tests/e2e/test_tag_on_upload.py",
    "tests/e2e/test_tag_expiry.py",
    "tests/e2e/test_template.py",
    "tests/e2e/test_local_fc.py",
    "tests/e2e/test_hostile_events.py",
    "tests/e2e/test_hostile_sweeps.py",
    "tests/e2e/test_ownership_and_budget.py",
    "tests/e2e/test_sweep_clock_and_state.py",
    "tests/e2e/test_eventbridge_delivery.py",
    "tests/e2e/test_bucket_scope.py",
)


def interpreter(version: str) -> str | None:
    """A Python `version` interpreter (one of FC's runtimes), if this machine has one."""
    candidates = [
        shutil.which(f"python{version}"),
        *sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/{version}.*/bin/python{version}"))),
    ]
    for candidate in filter(None, candidates):
        probe = subprocess.run(
            [candidate, "-c", f"import sys; print('.'.join(map(str, sys.version_info[:2])) == '{version}')"],
            capture_output=True,
            text=True,
        )
        if probe.stdout.strip() == "True":
            return candidate
    return None


def test_on_fc_runtime_versions() -> None:
    """The deployed code's tests again on each of FC's Python versions, with the oss2 that runtime has."""
    for version in FC_RUNTIMES:
        found = interpreter(version)
        if found is None:
            print(f"FC python{version} runtime check skipped: no Python {version} on this machine")
            continue
        environment = ROOT / f".venv{version.replace('.', '')}"
        python = environment / "bin" / "python"
        pins = ROOT / "requirements" / f"fc-python{version}.txt"
        stamp = environment / ".installed-pins"
        digest = hashlib.sha256(pins.read_bytes()).hexdigest()
        if not (python.exists() and stamp.exists() and stamp.read_text() == digest):
            run(found, "-m", "venv", "--clear", environment)
            run(python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r", pins)
            stamp.write_text(digest)
        run(
            python,
            "-m",
            "pytest",
            "-q",
            "-n",
            "2",
            "-p",
            "no:cacheprovider",
            *DEPLOYED_CODE_TESTS,
            PYTHONPATH=os.pathsep.join([str(ROOT / "functions"), str(ROOT / "infra")]),
        )


def demo() -> None:
    run(BIN / "autotag", "demo")


def test() -> None:
    run(BIN / "ruff", "check", ".")
    run(BIN / "ruff", "format", "--check", ".")
    run(BIN / "mypy", "functions")
    # Our own tests; exit 5 (nothing collected) is a failure like any other non-zero exit.
    run(PY, "-m", "pytest", "-n", "2", "-q", "tests")
    run(PY, "infra/funcraft/validate.py")
    run(PY, "infra/audit_pins.py")  # pinned dependencies against PyPI's vulnerability data
    test_on_fc_runtime_versions()
    # oss2's own integration tests against the local OSS, V1 and V4 signing.
    run(PY, "tests/conformance/oss2_suite.py", "--auth", "v1", "--auth", "v4")
    # The OSS Python SDK V2's own integration tests (kept in ../shared/upstream/) against the local OSS;
    # skipped with one line where they are not, unless AUTOTAG_REQUIRE_OSS_V2_SUITE=1 (.ci/run sets it).
    run(PY, "tests/conformance/oss_v2_suite.py")


JOBS = {"demo": demo, "test": test, "setup": lambda: None}

if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in JOBS:
        sys.exit(f"usage: python3 dev.py {{{'|'.join(JOBS)}}}")
    setup()
    JOBS[sys.argv[1]]()
