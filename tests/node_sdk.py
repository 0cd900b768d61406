"""Node.js SDKs for the foreign-client checks: each installed once with npm into a cache folder outside the
repository (AUTOTAG_NODE_CACHE, else ~/.cache/oss-autotag/npm). Without node or npm, or without the npm
registry, a test using one is skipped with the reason, unless AUTOTAG_REQUIRE_NODE_SDK=1 (.ci/run sets it),
which makes that a failure."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest


def unavailable(reason: str) -> None:
    if os.environ.get("AUTOTAG_REQUIRE_NODE_SDK") == "1":
        pytest.fail(f"{reason} (AUTOTAG_REQUIRE_NODE_SDK=1)")
    pytest.skip(reason)


def install(package: str) -> Path:
    """The node_modules folder holding `package` (`name@exact-version`), installed into the cache the first
    time."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        unavailable(f"node and npm are needed for the {package} test")
    cache = Path(
        os.environ.get("AUTOTAG_NODE_CACHE")
        or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "oss-autotag" / "npm"
    )
    folder = cache / package.replace("/", "+")
    name = package.rpartition("@")[0]
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one installer at a time (xdist workers, parallel runs)
        if not (folder / "node_modules" / name / "package.json").exists():
            staging = Path(tempfile.mkdtemp(dir=cache))
            npm = ["npm", "install", "--no-audit", "--no-fund", "--ignore-scripts", "--prefix", str(staging)]
            installed = subprocess.run([*npm, package], capture_output=True, text=True, timeout=300)
            if installed.returncode != 0:
                shutil.rmtree(staging, ignore_errors=True)
                unavailable(f"npm install {package} failed: {installed.stderr.strip()[-500:]}")
            shutil.rmtree(folder, ignore_errors=True)
            staging.rename(folder)
    return folder / "node_modules"
