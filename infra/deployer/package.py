"""What goes into a deployment package besides the code: the packages a function's FC runtime lacks
(requirements/fc-package-<runtime>.txt: wheels for that CPython on manylinux x86_64, and the few
pure-Python packages that publish no wheel built from source), fetched once per requirements file into a
folder that cloudformats.package zips with the function's CodeUri."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "fc-package"
RUNTIMES = ("python3.10", "python3.12")  # FC's Python runtimes this project deploys to
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")


class PackageError(RuntimeError):
    """The dependencies could not be fetched for FC's runtime; `unreachable` when no package index
    answered."""

    def __init__(self, message: str, unreachable: bool = False) -> None:
        super().__init__(message)
        self.unreachable = unreachable


_UNREACHABLE = (
    "NewConnectionError",
    "Failed to establish a new connection",
    "Name or service not known",
    "Temporary failure in name resolution",
    "ConnectTimeoutError",
    "Network is unreachable",
)
_WANTED = re.compile(r"(?:No matching distribution found for|satisfies the requirement) (\S+)")


def pip_failure(stderr: str, requirements: str, runtime: str) -> PackageError:
    """pip's failure in one line: which package could not be fetched, for which runtime, and why."""
    wanted = _WANTED.search(stderr)
    what = wanted[1] if wanted else f"the packages of {requirements}"
    unreachable = any(sign in stderr for sign in _UNREACHABLE)
    if unreachable:
        why = "no package index could be reached (offline? PIP_INDEX_URL?)"
    elif wanted:
        why = "the package index has no such wheel for this runtime"
    else:
        lines = stderr.strip().splitlines()
        errors = [line.removeprefix("ERROR: ") for line in lines if line.startswith("ERROR:")]
        why = (errors or lines or ["pip failed"])[-1][:300]
    return PackageError(
        f"cannot fetch {what} for FC's {runtime} ({requirements}): {why}; a deploy to Alibaba Cloud packages "
        "what the runtime lacks",
        unreachable,
    )


def requirements_for(runtime: str) -> Path:
    if runtime not in RUNTIMES:
        raise PackageError(
            f"runtime {runtime!r}: packages are built for {', '.join(RUNTIMES)} (template.yml's Runtime)"
        )
    return ROOT / "requirements" / f"fc-package-{runtime}.txt"


def vendored_dependencies(runtime: str = "python3.12", cache: Path | None = None) -> Path:
    """A folder with the pinned packages installed for FC's `runtime`; built once per requirements file
    (in `cache`, default CACHE)."""
    cache = cache or CACHE
    requirements = requirements_for(runtime)
    version = runtime.removeprefix("python")
    from_source = [
        name
        for line in requirements.read_text().splitlines()
        if line.startswith("# build-from-source:")
        for name in line.split(":", 1)[1].split()
    ]
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()[:16]
    target = cache / digest
    if (target / ".complete").exists():
        return target
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--no-deps",
        "--only-binary=:all:",
        *[f"--no-binary={name}" for name in from_source],
        "--target",
        str(target),
        "--python-version",
        version,
        "--implementation",
        "cp",
        "-r",
        str(requirements),
    ]
    for platform in PLATFORMS:
        command += ["--platform", platform]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise pip_failure(result.stderr, f"requirements/{requirements.name}", runtime)
    (target / ".complete").write_text("ok")
    return target
