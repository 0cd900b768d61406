"""Which objects a reconcile visits after a rules change (`autotag reconcile`, `autotag rules diff`): the
affected prefixes listed, or an OSS inventory's rows read, and each object kept only when the changed rules
can reach it (autotag.rules.reach.Affected.may_reach, on its key and size) — before any request about the
object. What is kept is written as the lines of a CSV manifest (`bucket,key[,versionId]`, keys
URL-encoded), which the backfill's manifest flow reads, here or on CloudFlow.

The filtering is pure (`kept_rows`); the readers take the operator's oss2 client (`list_prefixes`) or the
backfill's item source (`inventory_rows`), and count what they read in a `Selection`."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import oss2

from autotag.inventory import InventoryError, Location, manifest_line, parse_manifest
from autotag.rules.reach import Affected
from cloudformats.items import MAX_ITEM_BYTES, SourceError, inventory_items, inventory_manifest

LIST_PAGE = 1000  # keys per ListObjectsV2 page: OSS's largest


class SelectionError(ValueError):
    """The objects cannot be selected (an inventory that cannot be read whole); names the file and line."""


@dataclass(frozen=True)
class Listed:
    """One object as a listing or an inventory row shows it."""

    bucket: str
    key: str
    size: int | None = None
    version_id: str | None = None
    tagging_count: int | None = None  # an inventory's TaggingCount; None when it has no such column


@dataclass
class Selection:
    """What a selection read and kept, counted as it goes."""

    prefixes: tuple[str, ...]
    source: str = "listing"  # "listing" or the inventory's manifest.json location
    listed: int = 0  # objects listed (or inventory rows read)
    candidates: int = 0  # kept: a changed rule may reach them
    untagged: int = 0  # inventory rows passed over: no tags at all, and the change only removes tags
    requests: int = 0  # OSS requests the selection sent: list pages, or the inventory's files
    complete: bool = True  # False when a sample limit stopped it before the end
    stopped_after: str = ""  # the last key read when it stopped early
    inventory_created: datetime | None = None
    kept_keys: list[str] = field(default_factory=list)  # the first kept keys, for showing (bounded)

    def as_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "prefixes": list(self.prefixes),
            "listed": self.listed,
            "candidates": self.candidates,
            "passedOverUntagged": self.untagged,
            "selectionRequests": self.requests,
            "complete": self.complete,
            "stoppedAfter": self.stopped_after or None,
        }


SHOWN_KEYS = 20  # kept keys remembered for showing


def kept_rows(
    rows: Iterable[Listed], affected: Affected, selection: Selection, limit: int | None = None
) -> Iterator[Listed]:
    """The rows a changed rule may reach (pure but for counting into `selection`). An inventory row with
    TaggingCount 0 is passed over when the change only removes tags (nothing to remove from it). With
    `limit`, reading stops after that many rows (`selection.complete` then False)."""
    for row in rows:
        if limit is not None and selection.listed >= limit:
            selection.complete = False
            return
        selection.listed += 1
        selection.stopped_after = row.key
        if not affected.may_reach(row.key, row.size):
            continue
        if affected.removal_only and row.tagging_count == 0:
            selection.untagged += 1
            continue
        selection.candidates += 1
        if len(selection.kept_keys) < SHOWN_KEYS:
            selection.kept_keys.append(row.key)
        yield row
    selection.stopped_after = ""


def manifest_lines(rows: Iterable[Listed]) -> Iterator[bytes]:
    """The rows as CSV manifest lines, `bucket,key[,versionId]`, as `backfill --manifest` reads them."""
    for row in rows:
        yield manifest_line(row.bucket, row.key, row.version_id).encode()


def list_prefixes(
    client_for: Callable[[str], oss2.Bucket], bucket: str, selection: Selection
) -> Iterator[Listed]:
    """The objects under each of `selection.prefixes`, in key order, one ListObjectsV2 page of up to
    1,000 keys at a time (each page counted in `selection.requests`). Raises oss2's errors."""
    client = client_for(bucket)
    for prefix in selection.prefixes:
        token = ""
        while True:
            selection.requests += 1
            page = client.list_objects_v2(prefix=prefix, continuation_token=token, max_keys=LIST_PAGE)
            for info in page.object_list:
                yield Listed(bucket, info.key, info.size)
            if not page.is_truncated:
                break
            token = page.next_continuation_token


def _count(text: str | None) -> int | None:
    return int(text) if text is not None and text.isascii() and text.isdigit() else None


def inventory_rows(
    read: Callable[[str, str, int], bytes], where: Location, bucket: str, selection: Selection
) -> Iterator[Listed]:
    """The rows of the inventory whose manifest.json is at `where`, read with `read(bucket, key, limit)`
    (the backfill's item source) and checked as the inventory flow's reader checks them: each data file
    against the MD5 its manifest lists. Delete markers are left out; a row of another bucket than `bucket`
    is refused, and so is any part that cannot be read (SelectionError): a reconcile that skipped a part
    would miss its objects."""
    try:
        data = read(where.bucket, where.key, MAX_ITEM_BYTES * 64)
        selection.requests += 1
        manifest = parse_manifest(data, str(where))
        columns, files = inventory_manifest(data, str(where))
    except SourceError as error:
        raise SelectionError(error.message) from None
    except (InventoryError, ValueError) as error:
        raise SelectionError(str(error)) from None
    if manifest.source_bucket != bucket:
        raise SelectionError(
            f"{where} lists bucket {manifest.source_bucket!r}, not {bucket!r}, the one to reconcile"
        )
    selection.inventory_created = manifest.created
    for file in files:
        file_where = f"oss://{where.bucket}/{file.key}"
        try:
            body = read(where.bucket, file.key, file.size)
        except SourceError as error:
            raise SelectionError(error.message) from None
        selection.requests += 1
        for item in inventory_items(body, file, columns, file_where):
            if not item.ok:
                raise SelectionError(f"{item.where}: {item.error}")
            row: dict[str, str] = item.value
            if row.get("IsDeleteMarker", "").strip().lower() == "true":
                continue
            yield Listed(
                bucket,
                row.get("Key", ""),
                _count(row.get("Size")),
                row.get("VersionId") or None,
                _count(row.get("TaggingCount")),
            )
