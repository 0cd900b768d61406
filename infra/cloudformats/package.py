"""A function's code as the zip Function Compute receives: its CodeUri, and optionally a folder of the
packages its runtime lacks, zipped deterministically so the same inputs give the same bytes and the same
checksum (which makes a repeated deploy a no-op, and lets the local FC API show the checksum a deploy of
the code alone would give)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

_FIXED_TIME = (1980, 1, 1, 0, 0, 0)
_SKIPPED = ("__pycache__", ".pyc", ".mypy_cache", ".pytest_cache")


def _files(folder: Path) -> list[tuple[str, Path]]:
    found = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder).as_posix()
        # `.complete` marks a finished folder of dependencies (deployer.package): not part of the code
        if path.is_file() and not any(part in relative for part in _SKIPPED) and path.name != ".complete":
            found.append((relative, path))
    return found


def build_package(code_uri: Path, dependencies: Path | None) -> bytes:
    """The zip FC receives: dependencies first, then the code (the code wins on a name clash)."""
    entries: dict[str, Path] = {}
    if dependencies is not None:
        entries.update((name, path) for name, path in _files(dependencies) if not name.startswith("bin/"))
    entries.update(_files(code_uri))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, _FIXED_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, entries[name].read_bytes())
    return buffer.getvalue()
