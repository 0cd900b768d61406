"""Listings, streams and deletes over ObjectGateway's whole objects: what the sweep needs — listing pages and
folders, and the small objects it keeps as state (checkpoints, leases, plans), read whole or as a stream
(inventory data files). Not imported by the upload path, whose role may do none of it."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from .gateway import ObjectGone
from .object_gateway import ObjectGateway


@dataclass(frozen=True)
class ListedObject:
    """One entry of a listing: what is known about an object before reading anything else."""

    key: str
    size: int
    last_modified: datetime
    etag: str
    version_id: str | None = None  # set when listing the versions of a versioned bucket


@dataclass(frozen=True)
class Stamped:
    """An object's bytes and its Last-Modified, as OSS stamped it when the object was written."""

    data: bytes
    last_modified: datetime


@dataclass(frozen=True)
class ListingPage:
    objects: list[ListedObject]
    next_key_marker: str
    next_version_marker: str
    truncated: bool


def utc(epoch_seconds: int) -> datetime:
    return datetime.fromtimestamp(epoch_seconds, timezone.utc)


class BucketGateway(ObjectGateway):
    def list_page(self, prefix: str, key_marker: str, max_keys: int = 1000) -> ListingPage:
        result = self._call(
            f"ListObjects {prefix!r}",
            lambda: self.bucket.list_objects(prefix=prefix, marker=key_marker, max_keys=max_keys),
        )
        objects = [ListedObject(o.key, o.size, utc(o.last_modified), o.etag) for o in result.object_list]
        return ListingPage(objects, result.next_marker, "", result.is_truncated)

    def list_children(self, prefix: str, max_pages: int) -> list[str]:
        """The keys and folders (common prefixes ending in `/`) directly under `prefix`, in order."""
        children: list[str] = []
        marker = ""
        for _ in range(max_pages):
            result = self._call(
                f"ListObjects {prefix!r} /", functools.partial(self._list_delimited, prefix, marker)
            )
            children += [o.key for o in result.object_list] + list(result.prefix_list)
            if not result.is_truncated:
                break
            marker = result.next_marker
        return sorted(children)

    def _list_delimited(self, prefix: str, marker: str) -> Any:
        return self.bucket.list_objects(prefix=prefix, delimiter="/", marker=marker, max_keys=1000)

    def list_entries(self, prefix: str) -> list[ListedObject]:
        """Every object under `prefix`, with its Last-Modified as OSS stamped it."""
        entries: list[ListedObject] = []
        marker = ""
        while True:
            page = self.list_page(prefix, marker)
            entries += page.objects
            if not page.truncated:
                return entries
            marker = page.next_key_marker

    def read_stamped(self, key: str, limit: int | None = None) -> Stamped | None:
        """The object's bytes and Last-Modified (one GetObject), or None when it does not exist. With a
        `limit`, at most `limit` + 1 bytes are read (more than `limit`: the object is too big to use)."""

        def read() -> Stamped:
            result = self.bucket.get_object(key)
            self._note_date(result)  # OSS's clock, which the answer's Date tells
            if limit is None:
                return Stamped(result.read(), utc(result.last_modified))
            try:
                return Stamped(result.read(limit + 1), utc(result.last_modified))
            finally:  # what is left unread is not downloaded: the connection is dropped instead
                result.resp.response.close()

        try:
            return self._call(f"GetObject {key!r}", read)
        except ObjectGone:
            return None

    def read_start(self, key: str, size: int) -> bytes:
        """The first `size` bytes of the object (all of it when it is smaller): one ranged GetObject.
        Raises ObjectGone when there is none."""
        data: bytes = self._call(
            f"GetObject {key!r}", lambda: self.bucket.get_object(key, byte_range=(0, size - 1)).read()
        )
        return data

    def open_object(self, key: str) -> Any:
        """GetObject as a stream (a file-like whose `read` pulls the body): inventory data files and
        manifests are read record by record, never held whole. Raises ObjectGone when there is none."""
        return self._call(f"GetObject {key!r}", lambda: self.bucket.get_object(key))

    def delete_object(self, key: str) -> None:
        self._call(f"DeleteObject {key!r}", lambda: self.bucket.delete_object(key))
