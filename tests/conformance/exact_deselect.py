"""pytest plugin: deselect exactly the test ids listed in the file named by $CONFORMANCE_EXCLUSIONS.

pytest's own --deselect matches id prefixes, so excluding `test_upload_large` would also drop
`test_upload_large_with_tagging`; this matches whole ids only."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def _excluded() -> set[str]:
    lines = Path(os.environ["CONFORMANCE_EXCLUSIONS"]).read_text().splitlines()
    return {line.split("#", 1)[0].strip() for line in lines if line.strip() and not line.startswith("#")}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    excluded = _excluded()
    kept = [item for item in items if item.nodeid not in excluded]
    dropped = [item for item in items if item.nodeid in excluded]
    unknown = excluded - {item.nodeid for item in dropped}
    if unknown and not config.option.collectonly and len(items) > len(excluded):
        raise pytest.UsageError(f"exclusions name tests that do not exist: {sorted(unknown)}")
    config.hook.pytest_deselected(items=dropped)
    items[:] = kept
