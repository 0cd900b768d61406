"""Start `autotag local oss` as a separate process (for benchmarks and suites that must not share the
server's interpreter) and learn its endpoint and admin token from the ready line."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path


def spawn(*credentials: str) -> tuple[subprocess.Popen[str], str, str]:
    """A server on a free port accepting `credentials` (`AK:SK[:TOKEN]`), its endpoint and its admin
    token (what `/_admin/` requests present as `Authorization: Bearer ...`)."""
    autotag = Path(sys.executable).with_name("autotag")
    command = [str(autotag), "local", "oss", "--port", "0"]
    for credential in credentials:
        command += ["--credential", credential]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None
    ready = server.stdout.readline()
    endpoint, token = re.search(r"(http://\S+)", ready), re.search(r"admin token: (\S+?)\)", ready)
    if not endpoint or not token:
        server.kill()
        raise RuntimeError(f"local OSS did not start: {ready!r}")
    return server, endpoint.group(1), token.group(1)
