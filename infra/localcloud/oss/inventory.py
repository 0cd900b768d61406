"""Bucket inventories: the configurations PutBucketInventory stores, and the inventory OSS writes for one,
in OSS's format (docs/backfill.md has the format and its sources).

An inventory run scans the source bucket at one moment and writes, into the destination bucket:

    <destination prefix>/<source bucket>/<inventory id>/data/<uuid>.csv.gz, <uuid>-1.csv.gz, ...
    <destination prefix>/<source bucket>/<inventory id>/<YYYY-MM-DDTHH-MMZ>/manifest.json
    <destination prefix>/<source bucket>/<inventory id>/<YYYY-MM-DDTHH-MMZ>/manifest.checksum

Data files are gzip-compressed CSV, every field quoted, keys URL-encoded, columns in the order
`fileSchema` names; each object appears in one file only. manifest.json lists the data files (key, size,
MD5) and is written after them; manifest.checksum holds manifest.json's MD5. A scan that finds no object
writes nothing, as OSS does. The local OSS runs an inventory when asked (`run`), never on a schedule."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import quote

from cloudformats.oss_events import ObjectEvent

from . import xmlin
from .errors import OssError, invalid_argument, malformed_xml
from .model import NULL_VERSION, Bucket, ObjectVersion
from .xmlout import Doc, iso8601

MAX_INVENTORIES_PER_BUCKET = 1000  # OSS: up to 1,000 inventories per bucket (10 in the console)
LIST_PAGE = 100  # ListBucketInventory returns at most 100 configurations per page
DEFAULT_ROWS_PER_FILE = 1_000_000  # the local OSS's own choice: OSS documents no figure
# The columns an inventory can hold, in the order OSS documents them; the first two are always there, the
# version columns only when every version is listed on a bucket with versioning.
ALWAYS = ("Bucket", "Key")
VERSION_COLUMNS = ("VersionId", "IsLatest", "IsDeleteMarker")
OPTIONAL_FIELDS = (
    "Size",
    "LastModifiedDate",
    "ETag",
    "StorageClass",
    "IsMultipartUploaded",
    "EncryptionStatus",
    "TransitionTime",
    "ObjectAcl",
    "TaggingCount",
    "ObjectType",
    "Crc64",
)
FREQUENCIES = ("Daily", "Weekly")
VERSIONS = ("All", "Current")
MANIFEST_VERSION = "2019-09-01"
# LastModifyBeginTimeStamp / LastModifyEndTimeStamp bounds (seconds), as OSS checks them
EARLIEST_FILTER_TIME, LATEST_FILTER_TIME = 1262275200, 253402271999


@dataclass(frozen=True)
class InventoryConfig:
    id: str
    enabled: bool
    destination_bucket: str  # the bucket's name (the XML says acs:oss:::<name>)
    account_id: str
    role_arn: str
    frequency: str
    included_versions: str
    destination_prefix: str = ""
    file_format: str = "CSV"
    encryption: str = ""  # "", "SSE-OSS" or "SSE-KMS"
    kms_key_id: str = ""
    prefix: str = ""
    modified_from: int | None = None  # LastModifyBeginTimeStamp
    modified_until: int | None = None  # LastModifyEndTimeStamp
    size_from: int | None = None  # LowerSizeBound
    size_until: int | None = None  # UpperSizeBound
    storage_classes: str = ""  # comma-separated, "" for every class
    optional_fields: tuple[str, ...] = field(default_factory=tuple)

    def root(self, source_bucket: str) -> str:
        """Where this inventory's files live in the destination bucket."""
        prefix = self.destination_prefix.strip("/")
        return f"{prefix + '/' if prefix else ''}{source_bucket}/{self.id}/"


# ---- XML ------------------------------------------------------------------------------------------------


def _number(root: ET.Element, path: str, what: str, low: int, high: int) -> int | None:
    text = root.findtext(path)
    if text is None or not text.strip():
        return None
    text = text.strip()
    if not (text.isascii() and text.isdigit()) or not low <= int(text) <= high:
        raise invalid_argument(f"{what} {text!r} is not a whole number from {low} to {high}.", what, text)
    return int(text)


def parse_config(body: bytes, inventory_id: str) -> InventoryConfig:
    """The configuration of a PutBucketInventory body, checked as OSS checks it; `inventory_id` is the
    request's `inventoryId` parameter, which the body's Id must match."""
    root, placeholders = xmlin.parse(body, "InventoryConfiguration")
    if root.tag != "InventoryConfiguration":
        raise malformed_xml("The body is not an InventoryConfiguration.")

    def text(path: str) -> str:
        return xmlin.text(root.find(path), placeholders).strip()

    config_id = text("Id")
    if not config_id:
        raise malformed_xml("InventoryConfiguration needs an Id.")
    if config_id != inventory_id:
        raise invalid_argument(
            f"The Id {config_id!r} is not the inventoryId {inventory_id!r} of the request.", "Id", config_id
        )
    enabled = text("IsEnabled").lower()
    if enabled not in ("true", "false"):
        raise malformed_xml(f"IsEnabled {text('IsEnabled')!r} is not true or false.")
    destination = root.find("Destination/OSSBucketDestination")
    if destination is None:
        raise malformed_xml("InventoryConfiguration needs Destination/OSSBucketDestination.")
    file_format = text("Destination/OSSBucketDestination/Format")
    if file_format != "CSV":
        raise invalid_argument(f"Format {file_format!r} is not CSV.", "Format", file_format)
    bucket_arn = text("Destination/OSSBucketDestination/Bucket")
    if not bucket_arn.startswith("acs:oss:::") or len(bucket_arn) <= len("acs:oss:::"):
        raise invalid_argument(
            f"Destination Bucket {bucket_arn!r} is not acs:oss:::<bucket>.", "Bucket", bucket_arn
        )
    for required in ("AccountId", "RoleArn"):
        if not text(f"Destination/OSSBucketDestination/{required}"):
            raise malformed_xml(f"OSSBucketDestination needs {required}.")
    frequency = text("Schedule/Frequency")
    if frequency not in FREQUENCIES:
        raise invalid_argument(
            f"Schedule Frequency {frequency!r} is not one of {', '.join(FREQUENCIES)}.",
            "Frequency",
            frequency,
        )
    versions = text("IncludedObjectVersions")
    if versions not in VERSIONS:
        raise invalid_argument(
            f"IncludedObjectVersions {versions!r} is not All or Current.", "IncludedObjectVersions", versions
        )
    fields = tuple(xmlin.text(f, placeholders).strip() for f in root.findall("OptionalFields/Field"))
    for name in fields:
        if name not in OPTIONAL_FIELDS:
            raise OssError(
                400,
                "InvalidArgument",
                f"Optional field {name!r} is not one of {', '.join(OPTIONAL_FIELDS)}.",
                ec="0020-00000036",
                ArgumentName="Field",
                ArgumentValue=name,
            )
    encryption, kms_key = "", ""
    if destination.find("Encryption/SSE-KMS") is not None:
        encryption, kms_key = "SSE-KMS", text("Destination/OSSBucketDestination/Encryption/SSE-KMS/KeyId")
    elif destination.find("Encryption/SSE-OSS") is not None:
        encryption = "SSE-OSS"
    size_limit = 48 * 1024**4 + 800 * 1024**3  # 48.8 TB, the largest object OSS keeps
    return InventoryConfig(
        id=config_id,
        enabled=enabled == "true",
        destination_bucket=bucket_arn[len("acs:oss:::") :],
        account_id=text("Destination/OSSBucketDestination/AccountId"),
        role_arn=text("Destination/OSSBucketDestination/RoleArn"),
        frequency=frequency,
        included_versions=versions,
        destination_prefix=text("Destination/OSSBucketDestination/Prefix"),
        file_format=file_format,
        encryption=encryption,
        kms_key_id=kms_key,
        prefix=text("Filter/Prefix"),
        modified_from=_number(
            root, "Filter/LastModifyBeginTimeStamp", "LastModifyBeginTimeStamp", *_FILTER_TIMES
        ),
        modified_until=_number(
            root, "Filter/LastModifyEndTimeStamp", "LastModifyEndTimeStamp", *_FILTER_TIMES
        ),
        size_from=_number(root, "Filter/LowerSizeBound", "LowerSizeBound", 0, size_limit),
        size_until=_number(root, "Filter/UpperSizeBound", "UpperSizeBound", 0, size_limit),
        storage_classes=text("Filter/StorageClass"),
        optional_fields=fields,
    )


_FILTER_TIMES = (EARLIEST_FILTER_TIME, LATEST_FILTER_TIME)


def render_config(doc: Doc, element: ET.Element | None, config: InventoryConfig) -> None:
    """The children of an `<InventoryConfiguration>`: `element`, or the document's root when None."""
    doc.fields(element, Id=config.id, IsEnabled=config.enabled)
    filter_node = doc.add(element, "Filter")
    if config.prefix:
        doc.add(filter_node, "Prefix", config.prefix)
    for tag, value in (
        ("LastModifyBeginTimeStamp", config.modified_from),
        ("LastModifyEndTimeStamp", config.modified_until),
        ("LowerSizeBound", config.size_from),
        ("UpperSizeBound", config.size_until),
    ):
        if value is not None:
            doc.add(filter_node, tag, value)
    if config.storage_classes:
        doc.add(filter_node, "StorageClass", config.storage_classes)
    destination = doc.add(doc.add(element, "Destination"), "OSSBucketDestination")
    doc.fields(
        destination,
        Format=config.file_format,
        AccountId=config.account_id,
        RoleArn=config.role_arn,
        Bucket=f"acs:oss:::{config.destination_bucket}",
    )
    if config.destination_prefix:
        doc.add(destination, "Prefix", config.destination_prefix)
    if config.encryption:
        sse = doc.add(doc.add(destination, "Encryption"), config.encryption)
        if config.encryption == "SSE-KMS":
            doc.add(sse, "KeyId", config.kms_key_id)
    doc.add(doc.add(element, "Schedule"), "Frequency", config.frequency)
    doc.add(element, "IncludedObjectVersions", config.included_versions)
    if config.optional_fields:
        fields = doc.add(element, "OptionalFields")
        for name in config.optional_fields:
            doc.add(fields, "Field", name)


# ---- one run ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InventoryRun:
    """What a run wrote: the manifest's key (None when the scan found nothing), files and rows."""

    destination_bucket: str
    manifest_key: str | None
    files: tuple[str, ...]
    rows: int
    created: float

    def as_json(self) -> dict[str, object]:
        location = f"oss://{self.destination_bucket}/{self.manifest_key}" if self.manifest_key else None
        return {"manifest": location, "files": list(self.files), "rows": self.rows, "created": self.created}


def schema(config: InventoryConfig, versioned: bool) -> tuple[str, ...]:
    versions = VERSION_COLUMNS if versioned and config.included_versions == "All" else ()
    return (*ALWAYS, *versions, *(name for name in OPTIONAL_FIELDS if name in config.optional_fields))


def _selected(config: InventoryConfig, version: ObjectVersion) -> bool:
    if not version.key.startswith(config.prefix):
        return False
    if config.modified_from is not None and version.last_modified < config.modified_from:
        return False
    if config.modified_until is not None and version.last_modified > config.modified_until:
        return False
    if not version.is_delete_marker:
        if config.size_from is not None and version.size < config.size_from:
            return False
        if config.size_until is not None and version.size > config.size_until:
            return False
    classes = {c.strip() for c in config.storage_classes.split(",") if c.strip()}
    return not classes or "All" in classes or version.storage_class in classes


def _rows(bucket: Bucket, config: InventoryConfig, columns: tuple[str, ...]) -> Iterator[list[str]]:
    """The scan: objects (or versions) in key order, newest version first within a key."""
    every_version = "VersionId" in columns
    for key in bucket.objects.irange(minimum=config.prefix or None):
        if not key.startswith(config.prefix):
            break
        versions = bucket.objects[key]
        chosen = list(reversed(versions)) if every_version else [versions[-1]]
        for position, version in enumerate(chosen):
            if (version.is_delete_marker and not every_version) or not _selected(config, version):
                continue
            yield [_cell(column, bucket, version, latest=position == 0) for column in columns]


def _cell(column: str, bucket: Bucket, version: ObjectVersion, *, latest: bool) -> str:
    marker = version.is_delete_marker
    values = {
        "Bucket": lambda: bucket.name,
        "Key": lambda: quote(version.key, safe="/"),  # URL-encoded: keys may hold commas and newlines
        "VersionId": lambda: version.version_id if version.version_id != NULL_VERSION else "null",
        "IsLatest": lambda: "true" if latest else "false",
        "IsDeleteMarker": lambda: "true" if marker else "false",
        "Size": lambda: "" if marker else str(version.size),
        "LastModifiedDate": lambda: iso8601(version.last_modified),
        "ETag": lambda: "" if marker else version.etag,
        "StorageClass": lambda: "" if marker else version.storage_class,
        "IsMultipartUploaded": lambda: "true" if version.object_type == "Multipart" else "false",
        "EncryptionStatus": lambda: "false",
        "TransitionTime": lambda: "",
        "ObjectAcl": lambda: "default",
        "TaggingCount": lambda: "" if marker else str(len(version.tags)),
        "ObjectType": lambda: "" if marker else version.object_type,
        "Crc64": lambda: "" if marker else str(version.crc64),
    }
    return values[column]()


def _gzip_csv(rows: list[list[str]]) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text, quoting=csv.QUOTE_ALL, lineterminator="\n")
    writer.writerows(rows)
    return gzip.compress(text.getvalue().encode("utf-8"), mtime=0)


def scan(
    bucket: Bucket, config: InventoryConfig, rows_per_file: int
) -> tuple[tuple[str, ...], list[list[list[str]]]]:
    """The columns and the rows of each data file (pure: the caller holds the store's lock)."""
    columns = schema(config, bool(bucket.versioning))
    files: list[list[list[str]]] = []
    current: list[list[str]] = []
    for row in _rows(bucket, config, columns):
        current.append(row)
        if len(current) == rows_per_file:
            files.append(current)
            current = []
    if current:
        files.append(current)
    return columns, files


def manifest_document(
    source: str,
    config: InventoryConfig,
    columns: tuple[str, ...],
    files: list[tuple[str, bytes]],
    created: float,
) -> bytes:
    document = {
        "creationTimestamp": str(int(created)),
        "destinationBucket": config.destination_bucket,
        "fileFormat": config.file_format,
        "fileSchema": ", ".join(columns),
        "files": [
            {"key": key, "size": len(data), "MD5checksum": hashlib.md5(data).hexdigest()}
            for key, data in files
        ],
        "sourceBucket": source,
        "version": MANIFEST_VERSION,
    }
    return json.dumps(document, indent=1).encode()


def data_files(root: str, scanned: list[list[list[str]]], name: str | None = None) -> list[tuple[str, bytes]]:
    """`uuid.csv.gz`, `uuid-1.csv.gz`, ... as OSS names the files of one run."""
    base = name or str(uuid.uuid4())
    return [
        (f"{root}data/{base}{'' if number == 0 else f'-{number}'}.csv.gz", _gzip_csv(rows))
        for number, rows in enumerate(scanned)
    ]


def folder(created: float) -> str:
    return time.strftime("%Y-%m-%dT%H-%MZ", time.gmtime(created))


def written_event(bucket: str, version: ObjectVersion) -> ObjectEvent:
    """The PutObject event of a file the inventory wrote (OSS's own write, not a client's)."""
    return ObjectEvent(
        event_name="ObjectCreated:PutObject",
        bucket=bucket,
        key=version.key,
        size=version.size,
        delta_size=version.size,
        etag=version.etag,
        request_id=uuid.uuid4().hex[:24].upper(),
        source_ip="",
        mime_type=version.content_type,
        user_meta={},
    )
