"""What rules can look at: an object's key and metadata, as plain data."""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

META_PREFIX = "x-oss-meta-"


@dataclass(frozen=True)
class ObjectFacts:
    key: str
    size: int | None = None
    content_type: str | None = None
    user_meta: Mapping[str, str] = field(default_factory=dict)  # names without `x-oss-meta-`, lower-case
    last_modified: datetime | None = None

    @property
    def filename(self) -> str:
        return posixpath.basename(self.key)

    @property
    def dirname(self) -> str:
        return posixpath.dirname(self.key)

    @property
    def extension(self) -> str:
        """Lower-case text after the file name's last dot, or "" (no dot, or a dot-file)."""
        stem, dot, ext = self.filename.rpartition(".")
        return ext.lower() if dot and stem else ""

    @property
    def stem(self) -> str:
        return self.filename[: -len(self.extension) - 1] if self.extension else self.filename

    @property
    def content_type_family(self) -> str | None:
        return self.content_type.split("/", 1)[0].strip().lower() if self.content_type else None


def user_meta_from_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """`x-oss-meta-*` headers (any case) as {short name: value}."""
    return {k.lower()[len(META_PREFIX) :]: v for k, v in headers.items() if k.lower().startswith(META_PREFIX)}
