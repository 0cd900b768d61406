"""Object lists OSS writes, read as plain data (pure): bucket inventories (manifest.json naming gzip CSV
data files) and the CSV manifests OSS Batch Operations takes (`bucket,key[,versionId]` per line).

Both encode keys with URL encoding (`%20` for a space, `%0A` for a newline): a key is decoded with
`unquote`, never `unquote_plus`, so a `+` in a key stays a `+`. A manifest this system writes has no cell
a spreadsheet takes for a formula (csv_cells.py). docs/backfill.md has the formats and their sources."""

from __future__ import annotations

import csv
import io
import json
import re
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import unquote

from .csv_cells import key_cell, read_key_cell, read_text_cell, text_cell
from .timestamps import parse_timestamp

MAX_MANIFEST_BYTES = 64 * 1024 * 1024  # a manifest.json names data files; even 10^10 objects fit in far less
MAX_FILES = 1_000_000


class InventoryError(ValueError):
    """An inventory or manifest this version cannot use; the message names the field or the line."""


@dataclass(frozen=True)
class Location:
    bucket: str
    key: str

    def __str__(self) -> str:
        return f"oss://{self.bucket}/{self.key}"


def parse_location(text: str, what: str = "location") -> Location:
    """`oss://bucket/key` (the key may not be empty)."""
    if not text.startswith("oss://"):
        raise InventoryError(f"{what} {text!r} is not oss://<bucket>/<key>")
    bucket, _, key = text[len("oss://") :].partition("/")
    if not bucket or not key:
        raise InventoryError(f"{what} {text!r} is not oss://<bucket>/<key>")
    return Location(bucket, key)


@dataclass(frozen=True)
class DataFile:
    key: str
    size: int
    md5: str


@dataclass(frozen=True)
class Manifest:
    """A bucket inventory's manifest.json: which bucket it lists, when the scan started, its columns and
    its data files (in the destination bucket)."""

    source_bucket: str
    destination_bucket: str
    created: datetime
    columns: tuple[str, ...]
    files: tuple[DataFile, ...]

    def has(self, *columns: str) -> bool:
        return all(c in self.columns for c in columns)


def _created(value: object) -> datetime:
    """creationTimestamp: UNIX time, as a string or a number; read as milliseconds when it is too large
    to be seconds (S3 writes milliseconds)."""
    text = str(value).strip()
    if not text.isascii() or not text.isdigit():
        raise InventoryError(f"manifest.json creationTimestamp {value!r} is not a UNIX time")
    number = int(text)
    seconds = number / 1000 if number >= 100_000_000_000 else number
    try:
        return datetime.fromtimestamp(seconds, timezone.utc)
    except (OverflowError, OSError, ValueError):
        raise InventoryError(f"manifest.json creationTimestamp {value!r} is not a UNIX time") from None


def parse_manifest(data: bytes, where: str = "manifest.json") -> Manifest:
    if len(data) > MAX_MANIFEST_BYTES:
        raise InventoryError(f"{where} is {len(data)} bytes; a manifest is at most {MAX_MANIFEST_BYTES}")
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InventoryError(f"{where} is not JSON ({exc})") from None
    if not isinstance(document, dict):
        raise InventoryError(f"{where} is not a JSON object")

    def field(name: str) -> object:
        if name not in document:
            raise InventoryError(f"{where} has no {name}")
        return document[name]

    file_format = str(field("fileFormat"))
    if file_format.upper() != "CSV":
        raise InventoryError(f"{where} fileFormat {file_format!r}: only CSV inventories can be read")
    schema = field("fileSchema")
    if not isinstance(schema, str):
        raise InventoryError(f"{where} fileSchema is not a string")
    columns = tuple(c.strip() for c in schema.split(",") if c.strip())
    if "Key" not in columns:
        raise InventoryError(f"{where} fileSchema {schema!r} has no Key column")
    files = field("files")
    if not isinstance(files, list) or not files or len(files) > MAX_FILES:
        raise InventoryError(f"{where} files is not a list of 1 to {MAX_FILES} data files")
    parsed = []
    for number, entry in enumerate(files):
        key = entry.get("key", entry.get("Key")) if isinstance(entry, dict) else None
        if not isinstance(key, str) or not key:
            raise InventoryError(f"{where} files[{number}] has no key")
        size = entry.get("size", 0)
        md5 = entry.get("MD5checksum", entry.get("md5Checksum", ""))
        parsed.append(DataFile(key, size if isinstance(size, int) and size >= 0 else 0, str(md5 or "")))
    source, destination = str(field("sourceBucket")), str(field("destinationBucket"))
    destination = destination.removeprefix("acs:oss:::")
    return Manifest(source, destination, _created(field("creationTimestamp")), columns, tuple(parsed))


@dataclass(frozen=True)
class Row:
    """One object of an inventory or a manifest: what it says, URL-decoded. Facts a CSV manifest does not
    carry are None."""

    bucket: str
    key: str
    version_id: str | None = None
    size: int | None = None
    last_modified: datetime | None = None
    etag: str | None = None
    delete_marker: bool = False


def _true(text: str) -> bool:
    return text.strip().lower() == "true"


def inventory_rows(lines: Iterable[str], columns: tuple[str, ...], where: str) -> Iterator[tuple[int, Row]]:
    """(row number, row) for each CSV record of a data file with these columns. A record that does not fit
    the schema raises InventoryError naming the file and the record."""
    index = {name: position for position, name in enumerate(columns)}
    for number, record in enumerate(csv.reader(lines)):
        if len(record) != len(columns):
            raise InventoryError(
                f"{where} record {number + 1} has {len(record)} fields; fileSchema names {len(columns)}"
            )

        def get(name: str, record: list[str] = record) -> str | None:
            position = index.get(name)
            return record[position] if position is not None else None

        size_text = get("Size")
        size = int(size_text) if size_text and size_text.isascii() and size_text.isdigit() else None
        modified_text = get("LastModifiedDate")
        modified = parse_timestamp(modified_text) if modified_text else None
        if modified_text and modified is None:
            raise InventoryError(
                f"{where} record {number + 1}: LastModifiedDate {modified_text!r} is not a date and time"
            )
        etag = get("ETag")
        version = get("VersionId")
        yield (
            number,
            Row(
                bucket=get("Bucket") or "",
                key=unquote(get("Key") or ""),
                version_id=version or None,
                size=size,
                last_modified=modified,
                etag=etag.strip().strip('"').upper() if etag else None,
                delete_marker=_true(get("IsDeleteMarker") or ""),
            ),
        )


def manifest_rows(lines: Iterable[str], where: str) -> Iterator[tuple[int, Row]]:
    """(row number, row) of a CSV manifest in OSS Batch Operations' format: `bucket,key[,versionId]`, keys
    URL-encoded, no header, blank lines skipped."""
    for number, record in enumerate(csv.reader(lines)):
        if not record or (len(record) == 1 and not record[0].strip()):
            continue
        if len(record) not in (2, 3) or not record[0] or not record[1]:
            raise InventoryError(
                f"{where} line {number + 1} is not bucket,key[,versionId] ({len(record)} fields)"
            )
        version = read_text_cell(record[2]) if len(record) == 3 and record[2] else None
        yield number, Row(bucket=record[0], key=read_key_cell(record[1]), version_id=version)


def manifest_line(bucket: str, key: str, version_id: str | None) -> str:
    """One line of a CSV manifest OSS Batch Operations (and `autotag backfill --manifest`) accepts, no
    cell of it a spreadsheet formula (csv_cells.py)."""
    fields = [bucket, key_cell(key), *([text_cell(version_id)] if version_id else [])]
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerow(fields)
    return text.getvalue()


RUN_FOLDER = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}-[0-9]{2}Z/")


def newest_run(folders: Iterable[str], parent: str) -> str | None:
    """Of the folders directly under `parent` (an inventory's folder), the newest run's: OSS names each
    run's folder by when its scan began, `YYYY-MM-DDTHH-MMZ/`, so the names sort by time."""
    runs = [f for f in folders if f.startswith(parent) and RUN_FOLDER.fullmatch(f[len(parent) :])]
    return max(runs) if runs else None


def leading_rows(head: bytes, columns: tuple[str, ...], where: str) -> list[Row]:
    """The complete records at the start of a gzip data file, from `head`, its first bytes (a ranged read):
    what gunzips of them, up to the last whole line (all of it when `head` is the whole file)."""
    inflater = zlib.decompressobj(wbits=31)  # gzip framing
    try:
        text = inflater.decompress(head)
    except zlib.error as error:
        raise InventoryError(f"{where} cannot be read: not gzip ({error})") from None
    if not inflater.eof:
        text = text[: text.rfind(b"\n") + 1]  # the last line may be cut short
    try:
        lines = text.decode("utf-8").splitlines(keepends=True)
    except UnicodeDecodeError as error:
        raise InventoryError(f"{where} cannot be read: {error}") from None
    return [row for _, row in inventory_rows(lines, columns, where)]
