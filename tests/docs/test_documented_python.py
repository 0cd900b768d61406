"""The Python examples of the README and docs are tests too: every `python` block runs verbatim, as its own
script, with the project's interpreter, in a temporary folder."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```python[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)

EXAMPLES = [
    pytest.param(match[1], id=f"{document.relative_to(ROOT)}:{text[: match.start()].count(chr(10)) + 1}")
    for document in DOCUMENTS
    for text in [document.read_text(encoding="utf-8")]
    for match in FENCE.finditer(text)
]


def test_the_documents_have_python_examples() -> None:
    assert EXAMPLES, "no python block found: the pattern or the documents changed"


@pytest.mark.parametrize("example", EXAMPLES)
def test_documented_python_runs(example: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", example], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"{example}\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
