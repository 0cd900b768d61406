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


def python310() -> str | None:
    """A Python 3.10 interpreter (FC's runtime version), if this machine has one."""
    candidates = [
        shutil.which("python3.10"),
        *sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.10.*/bin/python3.10"))),
    ]
    for candidate in filter(None, candidates):
        probe = subprocess.run(
            [candidate, "-c", "import sys; print(sys.version_info[:2] == (3, 10))"],
            capture_output=True,
            text=True,
        )
        if probe.stdout.strip() == "True":
            return candidate
    return None


def test_on_fc_runtime_versions() -> None:
    """The product's tests again on Python 3.10 with oss2 2.16.0, as FC's python3.10 runtime has them."""
    interpreter = python310()
    if interpreter is None:
        print(
            "FC runtime check skipped: no Python 3.10 on this machine (mypy still checks functions/ as 3.10)"
        )
        return
    venv310 = ROOT / ".venv310"
    py310 = venv310 / "bin" / "python"
    pins = ROOT / "requirements" / "fc-python310.txt"
    stamp = venv310 / ".installed-pins"
    digest = hashlib.sha256(pins.read_bytes()).hexdigest()
    if not (py310.exists() and stamp.exists() and stamp.read_text() == digest):
        run(interpreter, "-m", "venv", "--clear", venv310)
        run(py310, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r", pins)
        stamp.write_text(digest)
    run(
        py310,
        "-m",
        "pytest",
        "-q",
        "-n",
        "2",
        "-p",
        "no:cacheprovider",
        # the deployed code's tests: its pure core, and both handlers end to end on the local cloud (the
        # CLI, deploy and backfill tests exercise tools that never run on FC)
        "tests/functions",
        "tests/e2e/test_tag_on_upload.py",
        "tests/e2e/test_tag_expiry.py",
        "tests/e2e/test_template.py",
        "tests/e2e/test_local_fc.py",
        "tests/e2e/test_hostile_events.py",
        "tests/e2e/test_hostile_sweeps.py",
        "tests/e2e/test_ownership_and_budget.py",
        "tests/e2e/test_sweep_clock_and_state.py",
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


JOBS = {"demo": demo, "test": test, "setup": lambda: None}

if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in JOBS:
        sys.exit(f"usage: python3 dev.py {{{'|'.join(JOBS)}}}")
    setup()
    JOBS[sys.argv[1]]()
