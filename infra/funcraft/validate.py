"""Check template.yml with Funcraft's own validator (`fun validate`), offline.

Funcraft's last release predates FC's python3.9, 3.10 and 3.12 runtimes and EventBridge, so the check runs
on a copy with `Runtime: python3.x` swapped for `python3` and without the EventBridge triggers and rules
(`autotag deploy` and ROS deploy those; the local cloud's template loader checks them); everything else is
checked as written. Funcraft is installed
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

import yaml

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


def funcraft_copy(text: str) -> str:
    """template.yml as Funcraft can read it: generic runtime names, no EventBridge."""
    document = yaml.safe_load(re.sub(r"Runtime: python3\.\d+", "Runtime: python3", text))
    resources = document["Resources"]
    for name in [n for n, body in resources.items() if body.get("Type") == "ALIYUN::EventBridge::Rule"]:
        del resources[name]
    for service in resources.values():
        for function in service.values():
            events = function.get("Events") if isinstance(function, dict) else None
            for trigger in [n for n, t in (events or {}).items() if t.get("Type") == "EventBridge"]:
                del events[trigger]
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)


def main() -> int:
    npm = shutil.which("npm")
    if npm is None:
        print("Funcraft validation skipped: Node.js/npm is not installed (structure tests still ran)")
        return 0
    fun = install(npm)
    with tempfile.TemporaryDirectory() as scratch:
        (Path(scratch) / "template.yml").write_text(funcraft_copy((ROOT / "template.yml").read_text()))
        result = subprocess.run([str(fun), "validate"], cwd=scratch, capture_output=True, text=True)
    if result.returncode != 0:
        print(result.stdout + result.stderr, file=sys.stderr)
        print("template.yml is not valid for Funcraft", file=sys.stderr)
        return 1
    print("template.yml passes Funcraft's validator (fun validate, runtime checked as python3)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
