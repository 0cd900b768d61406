"""Audit the pinned dependencies against PyPI's vulnerability data (the test command runs this).

PyPI's JSON API reports known vulnerabilities (from the PyPA advisory database / OSV) for a project's newest
release. For each pin that *is* the newest release, that list is the audit: any entry fails the run. A pin
older than the newest release is listed with both versions, so it is either upgraded or kept on purpose
(the newest may not support Python 3.10, for example); its advisories cannot be read here, because the
per-version API is not reachable from this environment."""

from __future__ import annotations

import json
import re
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PIN_FILES = sorted(
    str(path.relative_to(ROOT))
    for pattern in ("constraints.txt", "fc-package-*.txt", "fc-python*.txt")
    for path in (ROOT / "requirements").glob(pattern)
)
_PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s;#]+)")


def pins() -> dict[tuple[str, str], list[str]]:
    found: dict[tuple[str, str], list[str]] = {}
    for name in PIN_FILES:
        for line in (ROOT / name).read_text().splitlines():
            match = _PIN.match(line.strip())
            if match:
                found.setdefault((match[1].lower(), match[2]), []).append(name)
    return found


def newest(project: str) -> tuple[str, list[str]]:
    with urllib.request.urlopen(f"https://pypi.org/pypi/{project}/json", timeout=20) as response:
        document = json.load(response)
    return document["info"]["version"], [v.get("id", "?") for v in document.get("vulnerabilities") or []]


def main() -> int:
    pinned = pins()
    try:
        with ThreadPoolExecutor(8) as pool:
            answers = dict(zip(pinned, pool.map(lambda pin: newest(pin[0]), pinned), strict=True))
    except OSError as error:
        print(f"dependency audit could not reach PyPI ({error}); nothing audited", file=sys.stderr)
        return 0
    vulnerable = [(p, v, ids) for (p, v), (latest, ids) in answers.items() if v == latest and ids]
    older = [(p, v, latest) for (p, v), (latest, _ids) in answers.items() if v != latest]
    for project, version, ids in vulnerable:
        print(f"VULNERABLE {project}=={version}: {', '.join(ids)}", file=sys.stderr)
    for project, version, latest in sorted(older):
        where = ", ".join(pinned[(project, version)])
        print(f"  {project}=={version} ({where}): newest is {latest}, not audited")
    verdict = f"{len(vulnerable)} with known vulnerabilities" if vulnerable else "no known vulnerabilities"
    print(
        f"dependency audit: {len(answers) - len(older)} pins are the newest release, {verdict}; "
        f"{len(older)} older pins listed above"
    )
    return 1 if vulnerable else 0


if __name__ == "__main__":
    sys.exit(main())
