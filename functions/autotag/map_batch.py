"""A batch of items as CloudFlow's distributed Map hands it to the backfill function (pure).

With an ItemBatcher, the processor's input is `{"Items": [item, ...], "BatchInput": {...}}`
(docs/cloudflow.md). An item names one object; what it is depends on the Map's ItemReader:

- OSS_OBJECTS: an object's listing, `{"Bucket", "Key", "Size", "ETag", ...}`, its key as OSS stores it;
- OSS_INVENTORY_FILES: an inventory row keyed by the inventory's columns, its `Key` already URL-decoded
  by the reader, with `VersionId` when the inventory lists versions;
- OSS_CSV over a CSV manifest (`bucket,key[,versionId]`, keys URL-encoded, as OSS Batch Operations and
  `autotag backfill --manifest` read them): the flow gives the columns `Bucket`, `Key`, `VersionId` and
  says in `BatchInput.KeyEncoding: url` that its keys are encoded.

Only the bucket, key and version are taken from an item: an object's facts are what OSS answers when the
function asks, never what a listing or manifest said when it was written. An item that names no object is
reported on its own (`BatchItem.error`); a payload that is no batch at all raises BatchError.
`BatchInput.Rules` and `RulesETag` name the execution's own rules and the version it pinned
(`batch_rules`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .csv_cells import read_key_cell, read_text_cell

MAX_KEY_BYTES = 1023  # OSS: an object name is 1 to 1,023 bytes of UTF-8
KEY_ENCODINGS = ("raw", "url")


class BatchError(ValueError):
    """The payload is not a distributed Map's batch; the message names what is wrong."""


@dataclass(frozen=True)
class BatchItem:
    position: int  # its place in the batch's Items
    bucket: str
    key: str
    version_id: str | None = None
    error: str = ""  # why the item names no object ("" when it does)


def is_map_batch(document: Any) -> bool:
    """True for a payload shaped as a distributed Map's batch (an object whose `Items` is a list)."""
    return isinstance(document, dict) and isinstance(document.get("Items"), list)


def _text(item: dict[str, Any], name: str) -> str | None:
    value = item.get(name)
    return value if isinstance(value, str) else None


def _item(position: int, raw: Any, default_bucket: str, encoding: str) -> BatchItem:
    if not isinstance(raw, dict):
        return BatchItem(position, "", "", error=f"Items[{position}] is not an object")
    bucket = _text(raw, "Bucket") or default_bucket
    key = _text(raw, "Key")
    version = _text(raw, "VersionId")
    if not bucket:
        return BatchItem(position, "", key or "", error=f"Items[{position}] names no Bucket")
    if not key:
        return BatchItem(position, bucket, "", error=f"Items[{position}] names no Key")
    if encoding == "url":
        key = read_key_cell(key)
        version = read_text_cell(version) if version else version
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        return BatchItem(
            position, bucket, key[:64], error=f"Items[{position}].Key is over {MAX_KEY_BYTES} bytes"
        )
    return BatchItem(position, bucket, key, version or None)


@dataclass(frozen=True)
class BatchRules:
    """The rules the execution runs with (its input's `rules`), pinned to one version by its ETag."""

    location: str
    etag: str | None


def batch_rules(document: Any) -> BatchRules | None:
    """`BatchInput.Rules` (an oss:// location) and `BatchInput.RulesETag`; None when the batch names no
    rules (the function's configured ones apply)."""
    extra = document.get("BatchInput") if isinstance(document, dict) else None
    if not isinstance(extra, dict) or extra.get("Rules") is None:
        return None
    location, etag = extra["Rules"], extra.get("RulesETag")
    if not isinstance(location, str) or not location:
        raise BatchError("BatchInput.Rules: must be an oss://<bucket>/<key> location")
    if etag is not None and (not isinstance(etag, str) or not etag.strip('"')):
        raise BatchError("BatchInput.RulesETag: must be the rules object's ETag")
    return BatchRules(location, etag.strip('"') if etag else None)


def parse_map_batch(document: Any) -> list[BatchItem]:
    """The items of a batch (a parsed JSON document). BatchInput may give `Bucket` (for items that name
    none) and `KeyEncoding` (`raw`, the default, or `url`)."""
    if not is_map_batch(document):
        raise BatchError("the payload is not a distributed Map's batch: an object with an Items list")
    extra = document.get("BatchInput")
    if extra is None:
        extra = {}
    if not isinstance(extra, dict):
        raise BatchError("BatchInput: must be an object")
    bucket = extra.get("Bucket", "")
    if not isinstance(bucket, str):
        raise BatchError("BatchInput.Bucket: must be a string")
    encoding = extra.get("KeyEncoding", "raw")
    if encoding not in KEY_ENCODINGS:
        raise BatchError(f"BatchInput.KeyEncoding: {encoding!r} is not one of {', '.join(KEY_ENCODINGS)}")
    return [_item(n, raw, bucket, encoding) for n, raw in enumerate(document["Items"])]
