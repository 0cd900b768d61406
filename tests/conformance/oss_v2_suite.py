"""Run the OSS Python SDK V2's own integration tests against the local OSS.

    python tests/conformance/oss_v2_suite.py [--upstream DIR] [TEST ...]

The tests are kept unchanged beside the repository, in ../shared/upstream/ (tag 1.3.2 of
aliyun/alibabacloud-oss-python-sdk-v2; its published packages ship none), or wherever --upstream says
(a symlink is followed). This starts `autotag local oss` on a free port and runs every test of SUITE_FILES
except those in oss_v2_exclusions.txt (each with its reason), with the V2 SDK's own default signing (V4; a
few tests sign V1). Exits non-zero if any test fails or none runs.

Where the tests are not there (a machine without ../shared), the run is skipped with one line and exits 0,
unless AUTOTAG_REQUIRE_OSS_V2_SUITE=1 (CI sets it in .ci/run): then their absence is a failure.

The run is serial: each test class's tear-down deletes every bucket the suite's name prefix matches, so two
workers sharing a server would delete each other's buckets."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from oss2_suite import tally

from localcloud.oss.process import spawn

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
UPSTREAM = ROOT.parent / "shared" / "upstream" / "alibabacloud-oss-python-sdk-v2-1.3.2"
REQUIRED = "AUTOTAG_REQUIRE_OSS_V2_SUITE"
SUITE_FILES = [
    "tests/integration/test_client.py",
    "tests/integration/test_paginator.py",
    "tests/integration/test_presign.py",
    "tests/integration/test_client_filelike.py",
    "tests/integration/test_object_basic.py",
    "tests/integration/test_bucket_inventory_client.py",
    "tests/integration/aio/test_object_basic_async.py",
    "tests/integration/aio/test_multipart_upload_async.py",
    "tests/integration/aio/test_presign_async.py",
    "tests/integration/aio/test_paginator_async.py",
    "tests/integration/aio/test_client_extension_async.py",
    "tests/integration/aio/test_bucket_basic_async.py",
]
ACCESS_KEY_ID, ACCESS_KEY_SECRET = "v2-suite-key", "v2-suite-secret"


def run_pytest(upstream: Path, endpoint: str, tests: list[str], report: Path, ini: Path) -> int:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])),
        "PYTHONDONTWRITEBYTECODE": "1",  # leave the shared copy as it is
        "CONFORMANCE_EXCLUSIONS": str(HERE / "oss_v2_exclusions.txt"),
        "OSS_TEST_ENDPOINT": endpoint.removeprefix("http://"),
        "OSS_TEST_ACCESS_KEY_ID": ACCESS_KEY_ID,
        "OSS_TEST_ACCESS_KEY_SECRET": ACCESS_KEY_SECRET,
        "OSS_TEST_REGION": "cn-hangzhou",
        # what the inventory tests write into a destination's AccountId and RoleArn (read back as written)
        "OSS_TEST_USER_ID": "1234567890123456",
        "OSS_TEST_RAM_ROLE_ARN": "acs:ram::1234567890123456:role/AliyunOSSRole",
    }
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        # an ini of our own: nothing is written into the shared copy, and test ids start at its root
        "-c",
        str(ini),
        "--rootdir",
        str(upstream),
        "-p",
        "no:cacheprovider",
        "-p",
        "no:logging",
        "-p",
        "oss_v2_plain_http",
        "-p",
        "exact_deselect",
        "--timeout",
        "300",
        "-W",
        "ignore::DeprecationWarning",
        f"--junitxml={report}",
        *tests,
    ]
    print(f"+ [oss v2] pytest {' '.join(tests)}", flush=True)
    return subprocess.run(command, cwd=upstream, env=env).returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("tests", nargs="*", help="test ids or files (default: the whole selection)")
    parser.add_argument(
        "--upstream", type=Path, default=UPSTREAM, help=f"the SDK's source tree (default: {UPSTREAM})"
    )
    args = parser.parse_args()
    # Test ids are relative to the real folder: pytest runs there, whatever symlinks led to it.
    upstream = args.upstream.resolve()
    if not (upstream / "tests" / "integration").is_dir():
        if os.environ.get(REQUIRED) == "1":
            print(f"oss v2 conformance FAILED: the OSS V2 SDK's tests are not at {upstream}", file=sys.stderr)
            return 1
        print(
            f"oss v2 conformance skipped: the OSS V2 SDK's tests are not at {upstream} "
            f"(CI requires them: {REQUIRED}=1)",
            flush=True,
        )
        return 0
    server, endpoint, _admin_token = spawn(f"{ACCESS_KEY_ID}:{ACCESS_KEY_SECRET}")
    try:
        with tempfile.TemporaryDirectory() as scratch:
            ini, report = Path(scratch) / "pytest.ini", Path(scratch) / "report.xml"
            ini.write_text("[pytest]\n")
            # Exit code 5 (no test collected) is a failure like any other non-zero code.
            code = run_pytest(upstream, endpoint, args.tests or SUITE_FILES, report, ini)
            passed, failed = tally([report])
    finally:
        server.terminate()
        server.wait(timeout=300)
    print(f"oss v2 conformance: {passed} passed, {failed} failed", flush=True)
    if code != 0 or not passed:
        print("oss v2 conformance FAILED", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
