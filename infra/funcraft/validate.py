"""Check template.yml with Funcraft's own validator (`fun validate`), offline.

Funcraft's last release predates FC's python3.9, 3.10 and 3.12 runtimes, so the check runs on a copy with
`Runtime: python3.x` swapped for `python3`; everything else is checked as written. Funcraft is installed
once into .cache/funcraft (npm, pinned in infra/funcraft/package.json). Without Node.js it says so and
exits 0: the structural tests in tests/e2e/test_template.py still run."""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = Path(__file__).with_name("package.json")
INSTALL = ROOT / ".cache" / "funcraft"


def install(npm: str) -> Path:
    stamp = INSTALL / ".package-sha256"
    digest = hashlib.sha256(PACKAGE.read_bytes()).hexdigest()
    fun = INSTALL / "node_modules" / ".bin" / "fun"
    if not (fun.exists() and stamp.exists() and stamp.read_text() == digest):
        INSTALL.mkdir(parents=True, exist_ok=True)
        shutil.copy(PACKAGE, INSTALL / "package.json")
        subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--loglevel=error"], cwd=INSTALL, check=True
        )
        stamp.write_text(digest)
    return fun


def main() -> int:
    npm = shutil.which("npm")
    if npm is None:
        print("Funcraft validation skipped: Node.js/npm is not installed (structure tests still ran)")
        return 0
    fun = install(npm)
    with tempfile.TemporaryDirectory() as scratch:
        template = re.sub(r"Runtime: python3\.\d+", "Runtime: python3", (ROOT / "template.yml").read_text())
        (Path(scratch) / "template.yml").write_text(template)
        result = subprocess.run([str(fun), "validate"], cwd=scratch, capture_output=True, text=True)
    if result.returncode != 0:
        print(result.stdout + result.stderr, file=sys.stderr)
        print("template.yml is not valid for Funcraft", file=sys.stderr)
        return 1
    print("template.yml passes Funcraft's validator (fun validate, runtime checked as python3)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
