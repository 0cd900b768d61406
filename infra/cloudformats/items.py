"""The items a distributed Map reads from OSS, parsed from what OSS returned (pure but for `read_items`,
which reads through the `ItemSource` its caller gives: the local CloudFlow's, as the flow's role, or the
laptop's `autotag backfill`, with the operator's own credentials).

Reading is bounded, and a bad part fails alone: a CSV line longer than an item may be, a record that is not
CSV or JSON, a data file whose MD5 is not the one its inventory manifest lists, or a gzip file that inflates
past its bound each become one failed `Item` naming the file and line; the items around it are read on. An
item becomes (part of) a sub-workflow's input, which CloudFlow caps at 64 KiB, so no item is larger.

Items come in the same order every time the same objects are read, and batches are cut from that order; a
resumed execution skips the items its finished batches held, by their values."""

from __future__ import annotations

import csv
import hashlib
import json
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import unquote

from flowspec.definition import MapSpec
from flowspec.expressions import construct, evaluate

MAX_ITEM_BYTES = 64 * 1024  # a state's input is at most 64 KiB, so an item is too
CHUNK_BYTES = 256 * 1024  # how much of an object a source reads at a time
MAX_JSON_LIST_BYTES = 64 * 1024 * 1024  # local bound: an OSS_JSON_LIST object is parsed whole
MAX_INFLATED_BYTES = 1024**3  # local bound on what one inventory data file may inflate to


@dataclass(frozen=True)
class Item:
    value: Any  # None when the item could not be read
    where: str  # e.g. "oss://bucket/list.csv line 7"
    error: str = ""  # why the item could not be read; "" when it was

    @property
    def ok(self) -> bool:
        return not self.error


class TooLarge(ValueError):
    pass


class BrokenAt(ValueError):
    """The data under the lines could not be read on while line `line` was being read."""

    def __init__(self, line: int, error: Exception) -> None:
        super().__init__(str(error))
        self.line = line


class SourceError(Exception):
    """Reading failed; `code` is what a Map's Retry and Catch match (e.g. OSS.NoSuchKey)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message = code, message


class ItemSource(Protocol):
    """Where a Map's ItemReader reads: each method raises SourceError when OSS refuses."""

    def list_objects(self, bucket: str, prefix: str) -> Iterator[dict[str, Any]]:
        """OSS_OBJECTS' items: {"Bucket", "Key", "Size", "ETag", "LastModified", "StorageClass"} each."""
        ...

    def stream(self, bucket: str, key: str) -> Iterator[bytes]: ...

    def read(self, bucket: str, key: str, limit: int) -> bytes:
        """The whole object; SourceError when it is over `limit` bytes (read no further)."""
        ...


def listed_item(bucket: str, listed: Any) -> dict[str, Any]:
    """OSS_OBJECTS' item for one entry of an OSS listing (an oss2 SimplifiedObjectInfo)."""
    return {
        "Bucket": bucket,
        "Key": listed.key,
        "Size": listed.size,
        "ETag": listed.etag,
        "LastModified": listed.last_modified,
        "StorageClass": listed.storage_class,
    }


def read_items(
    spec: MapSpec, source: ItemSource, scope: dict[str, Any], max_inflated_bytes: int = MAX_INFLATED_BYTES
) -> Iterator[Item]:
    """The items of a resolved Map state (its ItemReader, or ItemsPath over `scope`), each made by its
    ItemConstructor (over $Item, $Input and $Context) and checked against MAX_ITEM_BYTES. SourceError when
    the reading as a whole fails (a listing refused, a manifest that is none)."""
    return constructed(_read(spec, source, scope, max_inflated_bytes), spec, scope)


def _read(
    spec: MapSpec, source: ItemSource, scope: dict[str, Any], max_inflated_bytes: int
) -> Iterator[Item]:
    reader = spec.reader
    items: Iterator[Item]
    if reader is None:
        values = evaluate(spec.items_path, scope)
        if not isinstance(values, list):
            raise SourceError("FnF.InvalidItems", f"ItemsPath {spec.items_path} is not an array")
        items = (Item(v, f"item {i}") for i, v in enumerate(values))
    elif reader.source_type == "OSS_OBJECTS":
        items = (
            Item(o, f"oss://{o['Bucket']}/{o['Key']}")
            for o in source.list_objects(reader.bucket, reader.prefix)
        )
    elif reader.source_type == "OSS_CSV":
        where = f"oss://{reader.bucket}/{reader.object_name}"
        items = csv_items(source.stream(reader.bucket, reader.object_name), where, reader.csv_headers)
    elif reader.source_type == "OSS_JSON_LIST":
        where = f"oss://{reader.bucket}/{reader.object_name}"
        items = json_list_items(source.read(reader.bucket, reader.object_name, MAX_JSON_LIST_BYTES), where)
    else:
        items = _inventory(source, reader.bucket, reader.object_name, max_inflated_bytes)
    return items


def constructed(items: Iterable[Item], spec: MapSpec, scope: dict[str, Any]) -> Iterator[Item]:
    """`items` as the Map passes them on: made by its ItemConstructor, none over MAX_ITEM_BYTES."""
    for item in items:
        if item.ok and spec.item_constructor:
            item = Item(construct(spec.item_constructor, {**scope, "Item": item.value}), item.where)
        if item.ok and len(json.dumps(item.value, ensure_ascii=False).encode()) > MAX_ITEM_BYTES:
            item = Item(None, item.where, f"the item is over {MAX_ITEM_BYTES} bytes")
        yield item


def _inventory(source: ItemSource, bucket: str, manifest_key: str, max_inflated_bytes: int) -> Iterator[Item]:
    where = f"oss://{bucket}/{manifest_key}"
    try:
        columns, files = inventory_manifest(source.read(bucket, manifest_key, MAX_ITEM_BYTES * 64), where)
    except ValueError as error:
        raise SourceError("FnF.ItemReaderFailed", str(error)) from None
    for file in files:
        data_where = f"oss://{bucket}/{file.key}"
        try:
            data = source.read(bucket, file.key, file.size)
        except SourceError as error:
            yield Item(None, data_where, error.message)
            continue
        yield from inventory_items(data, file, columns, data_where, max_inflated_bytes)


def lines(chunks: Iterable[bytes], limit: int = MAX_ITEM_BYTES) -> Iterator[tuple[int, bytes | None]]:
    """(line number, line without its end) for each line; None for a line over `limit` bytes, whose
    remainder is skipped without being held in memory. BrokenAt (naming the line) when the chunks stop
    with a gzip file that inflates too far or is not gzip."""
    number, pending, overflow = 0, bytearray(), False
    pieces = iter(chunks)
    while True:
        try:
            chunk = next(pieces)
        except StopIteration:
            break
        except (TooLarge, zlib.error) as error:
            raise BrokenAt(number + 1, error) from None
        start = 0
        while start < len(chunk):
            end = chunk.find(b"\n", start)
            piece = chunk[start:] if end < 0 else chunk[start:end]
            if not overflow:
                pending += piece
                overflow = len(pending) > limit
                if overflow:
                    pending.clear()
            if end < 0:
                break
            number += 1
            yield number, None if overflow else bytes(pending).rstrip(b"\r")
            pending.clear()
            overflow = False
            start = end + 1
    if pending or overflow:
        yield number + 1, None if overflow else bytes(pending).rstrip(b"\r")


def inflate(data: bytes, limit: int = MAX_INFLATED_BYTES) -> Iterator[bytes]:
    """The gzip member `data` inflated in pieces; TooLarge once more than `limit` bytes come out. Every
    byte up to the bound is given first, so the lines before it are read."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    produced, pending = 0, data
    while True:
        piece = inflater.decompress(pending, min(1024 * 1024, limit + 1 - produced))
        pending = inflater.unconsumed_tail
        produced += len(piece)
        if produced > limit:
            yield piece[: len(piece) - (produced - limit)]
            raise TooLarge(f"inflates past {limit} bytes")
        if piece:
            yield piece
        if not piece and not pending:
            if not inflater.eof:
                raise zlib.error("the gzip data ends early")
            return


def csv_items(chunks: Iterable[bytes], source: str, headers: tuple[str, ...] = ()) -> Iterator[Item]:
    """OSS_CSV: one item per row, an object keyed by `headers` (by the first row when none are given); a row
    with fewer fields than the header has only the first columns, one with more is refused."""
    names = list(headers)
    for number, line in lines(chunks):
        where = f"{source} line {number}"
        if line is None:
            yield Item(None, where, f"the line is over {MAX_ITEM_BYTES} bytes")
            continue
        try:
            (row,) = list(csv.reader([line.decode("utf-8")], strict=True)) or [[]]
        except (UnicodeDecodeError, csv.Error, ValueError) as error:
            yield Item(None, where, f"not a CSV record: {error}")
            continue
        if not names:
            names = row
            continue
        if not row:
            continue
        if len(row) > len(names):
            yield Item(None, where, f"{len(row)} fields; the header has {len(names)}")
            continue
        # A shorter row leaves its last columns out of the item (a local choice, docs/cloudflow.md): a
        # manifest's `bucket,key[,versionId]` rows may or may not name a version, line by line.
        yield Item(dict(zip(names, row, strict=False)), where)


def json_list_items(data: bytes, source: str) -> Iterator[Item]:
    """OSS_JSON_LIST: the object is a JSON array; one item per element."""
    if len(data) > MAX_JSON_LIST_BYTES:
        yield Item(None, source, f"the object is over {MAX_JSON_LIST_BYTES} bytes")
        return
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        yield Item(None, source, f"not JSON: {error}")
        return
    if not isinstance(document, list):
        yield Item(None, source, "not a JSON array")
        return
    for position, element in enumerate(document):
        where = f"{source} element {position}"
        if len(json.dumps(element).encode()) > MAX_ITEM_BYTES:
            yield Item(None, where, f"the element is over {MAX_ITEM_BYTES} bytes")
        else:
            yield Item(element, where)


@dataclass(frozen=True)
class InventoryFile:
    key: str
    size: int
    md5: str


def inventory_manifest(data: bytes, source: str) -> tuple[tuple[str, ...], list[InventoryFile]]:
    """The columns and data files an OSS inventory manifest.json lists; ValueError naming what is wrong."""
    try:
        document = json.loads(data)
        columns = tuple(c.strip() for c in str(document["fileSchema"]).split(","))
        files = [
            InventoryFile(
                str(f.get("key") or f["Key"]), int(f["size"]), str(f.get("MD5checksum") or f["md5Checksum"])
            )
            for f in document["files"]
        ]
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{source}: not an inventory manifest ({type(error).__name__}: {error})") from None
    if document.get("fileFormat", "CSV") != "CSV":
        raise ValueError(
            f"{source}: fileFormat {document.get('fileFormat')!r}; the local CloudFlow reads CSV"
        )
    return columns, files


def inventory_items(
    data: bytes, file: InventoryFile, columns: tuple[str, ...], source: str, limit: int = MAX_INFLATED_BYTES
) -> Iterator[Item]:
    """The rows of one gzip CSV inventory data file, checked against the MD5 its manifest lists; keys are
    URL-decoded as OSS writes them encoded."""
    if hashlib.md5(data).hexdigest().lower() != file.md5.lower():
        yield Item(None, source, f"the data file's MD5 is not {file.md5}, the one its manifest lists")
        return
    try:
        for item in csv_items(inflate(data, limit), source, columns):
            if item.ok and "Key" in item.value:
                item = Item({**item.value, "Key": unquote(item.value["Key"])}, item.where)
            yield item
    except BrokenAt as broken:
        yield Item(None, f"{source} line {broken.line}", f"the gzip data file {broken}")
