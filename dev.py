#!/usr/bin/env python3
"""Set up the project's virtualenv and run its jobs: `python3 dev.py demo` or `python3 dev.py test`.

Needs only a Python (3.10 or newer) on PATH: everything else is installed into `.venv` from PyPI with
exact pins (requirements/constraints.txt), and reinstalled only when the pins change.
"""

from __future__ import annotations

import hashlib
import os
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
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in PIN_FILES)).hexdigest()
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


def demo() -> None:
    run(BIN / "autotag", "demo")


def test() -> None:
    run(BIN / "ruff", "check", ".")
    run(BIN / "ruff", "format", "--check", ".")
    run(BIN / "mypy", "functions")
    # Our own tests; exit 5 (nothing collected) is a failure like any other non-zero exit.
    run(PY, "-m", "pytest", "-n", "2", "-q", "tests")
    run(PY, "infra/funcraft/validate.py")
    # oss2's own integration tests against the local OSS, V1 and V4 signing.
    run(PY, "tests/conformance/oss2_suite.py", "--auth", "v1", "--auth", "v4")


JOBS = {"demo": demo, "test": test, "setup": lambda: None}

if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in JOBS:
        sys.exit(f"usage: python3 dev.py {{{'|'.join(JOBS)}}}")
    setup()
    JOBS[sys.argv[1]]()
