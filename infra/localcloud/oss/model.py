"""What the local OSS stores: buckets, object versions and multipart uploads (plain data)."""

from __future__ import annotations

import base64
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from sortedcontainers import SortedDict

NULL_VERSION = "null"  # the version id of objects written while versioning was never enabled or suspended


def new_version_id() -> str:
    # Shaped like OSS's ids (base64 with `+/=`), which exercises clients' encoding of versionId.
    return "CAEQ" + base64.b64encode(secrets.token_bytes(33)).decode()


def is_well_formed_version_id(version_id: str) -> bool:
    return version_id == NULL_VERSION or (version_id.startswith("CAEQ") and len(version_id) >= 20)


@dataclass
class ObjectVersion:
    key: str
    version_id: str = NULL_VERSION
    is_delete_marker: bool = False
    data: bytes = b""
    object_type: str = "Normal"  # Normal | Appendable | Multipart | Symlink
    content_type: str = "application/octet-stream"
    user_meta: dict[str, str] = field(default_factory=dict)  # `x-oss-meta-*` -> raw value
    system_meta: dict[str, str] = field(default_factory=dict)  # cache-control, content-disposition, ...
    tags: dict[str, str] = field(default_factory=dict)
    etag: str = ""
    crc64: int = 0
    last_modified: float = field(default_factory=time.time)
    symlink_target: str = ""
    storage_class: str = "Standard"

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass
class Part:
    number: int
    data: bytes
    etag: str
    crc64: int
    last_modified: float = field(default_factory=time.time)


@dataclass
class MultipartUpload:
    upload_id: str
    key: str
    initiated: float
    content_type: str
    user_meta: dict[str, str]
    system_meta: dict[str, str]
    tags: dict[str, str]
    parts: dict[int, Part] = field(default_factory=dict)


@dataclass
class Bucket:
    name: str
    created: float
    location: str
    storage_class: str = "Standard"
    versioning: str = ""  # "" (never enabled) | Enabled | Suspended
    # key -> versions, oldest first; the last one is the current version (possibly a delete marker)
    objects: SortedDict = field(default_factory=SortedDict)
    uploads: dict[str, MultipartUpload] = field(default_factory=dict)
    inventories: dict[str, Any] = field(default_factory=dict)  # id -> inventory.InventoryConfig

    def current(self, key: str) -> ObjectVersion | None:
        versions = self.objects.get(key)
        return versions[-1] if versions else None
