"""Run oss2's own integration tests (shipped in its PyPI sdist) against the local OSS.

    python tests/conformance/oss2_suite.py --auth v1 --auth v4

Starts `autotag local oss` on a free port, then for each signature version runs the 14 tagging tests of
oss2_tagging_subset.txt, and then every test of SUITE_FILES except those in oss2_exclusions.txt (each with
its reason). Exits non-zero if any run fails or runs no test."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tarfile
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

from localcloud.oss.process import spawn

OSS2_VERSION = "2.19.1"
HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CACHE = ROOT / ".cache"
SUITE_FILES = [
    "tests/test_object.py",
    "tests/test_multipart.py",
    "tests/test_upload.py",
    "tests/test_chinese.py",
    "tests/test_iterator.py",
    "tests/test_list_objects_v2.py",
    "tests/test_object_versioning.py",
    "tests/test_bucket_versioning.py",
    "tests/test_sign.py",
]
ACCESS_KEY_ID, ACCESS_KEY_SECRET = "conformance-key", "conformance-secret"


def sdist() -> Path:
    """oss2's sdist, unpacked once into .cache (PyPI is the only network this needs)."""
    target = CACHE / f"oss2-{OSS2_VERSION}"
    if not (target / "tests" / "common.py").exists():
        CACHE.mkdir(exist_ok=True)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--disable-pip-version-check",
                "--no-deps",
                "--no-binary",
                ":all:",
                f"oss2=={OSS2_VERSION}",
                "-d",
                str(CACHE),
            ],
            check=True,
        )
        with tarfile.open(CACHE / f"oss2-{OSS2_VERSION}.tar.gz") as archive:
            archive.extractall(CACHE, filter="data")
    # Its own (empty) config makes the sdist pytest's rootdir, so test ids match oss2_exclusions.txt.
    (target / "pytest.ini").write_text("[pytest]\n")
    return target


def run_pytest(
    source: Path, endpoint: str, auth: str, args: list[str], workers: int, exclude: bool, report: Path
) -> int:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])),
        "CONFORMANCE_EXCLUSIONS": str(HERE / ("oss2_exclusions.txt" if exclude else "no_exclusions.txt")),
        "OSS_TEST_ENDPOINT": endpoint,
        "OSS_TEST_ACCESS_KEY_ID": ACCESS_KEY_ID,
        "OSS_TEST_ACCESS_KEY_SECRET": ACCESS_KEY_SECRET,
        "OSS_TEST_BUCKET": "conf",
        "OSS_TEST_REGION": "cn-hangzhou",
        "OSS_TEST_AUTH_VERSION": auth,
    }
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:logging",
        "--timeout",
        "300",
        "-W",
        "ignore::DeprecationWarning",
        "-p",
        "exact_deselect",
        f"--junitxml={report}",
        *args,
    ]
    if workers > 1:
        command += ["-n", str(workers)]
    print(f"+ [{auth}] pytest {' '.join(args)}", flush=True)
    return subprocess.run(command, cwd=source, env=env).returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--auth", action="append", choices=["v1", "v4"], help="signature version(s)")
    parser.add_argument("--workers", type=int, default=2, help="pytest-xdist workers")
    args = parser.parse_args()
    source = sdist()
    subset = [
        line.strip() for line in (HERE / "oss2_tagging_subset.txt").read_text().splitlines() if line.strip()
    ]
    server, endpoint, _admin_token = spawn(f"{ACCESS_KEY_ID}:{ACCESS_KEY_SECRET}")
    failures, reports = [], []
    try:
        with tempfile.TemporaryDirectory() as scratch:
            for auth in args.auth or ["v1", "v4"]:
                for name, tests, exclude in (("tagging subset", subset, False), ("suite", SUITE_FILES, True)):
                    reports.append(Path(scratch) / f"{auth}-{name.replace(' ', '-')}.xml")
                    # Exit code 5 (no test collected) is a failure like any other non-zero code.
                    if run_pytest(source, endpoint, auth, tests, args.workers, exclude, reports[-1]) != 0:
                        failures.append(f"{name} ({auth})")
            passed, failed = tally(reports)
    finally:
        server.terminate()
        server.wait(timeout=300)
    print(f"oss2 conformance: {passed} passed, {failed} failed", flush=True)
    if failures or not passed:
        print("oss2 conformance FAILED: " + (", ".join(failures) or "no test ran"), file=sys.stderr)
        return 1
    return 0


def tally(reports: list[Path]) -> tuple[int, int]:
    """(passed, failed-or-errored) over pytest's JUnit reports."""
    passed = failed = 0
    for report in reports:
        if not report.exists():
            continue
        for suite in ET.parse(report).getroot().iter("testsuite"):
            total, skipped = int(suite.get("tests", 0)), int(suite.get("skipped", 0))
            bad = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
            passed += total - skipped - bad
            failed += bad
    return passed, failed


if __name__ == "__main__":
    sys.exit(main())
