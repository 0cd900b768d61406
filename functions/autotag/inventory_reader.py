"""Reading the object lists OSS writes, from OSS: an inventory's manifest.json, and its data files (or a
CSV manifest) as a stream of records, from any record on. A data file is read as it arrives — gunzipped,
decoded and parsed record by record, never held whole — and a read that breaks off is taken up again with
a new GetObject, skipping the records already handed out.

What the manifest says about its files is checked: manifest.json against the manifest.checksum beside it,
each data file's existence and size before a job starts (a HEAD each), and while a file is read its size
when the read begins and its MD5 when it ends. A file that is gone, cut short, rewritten or forged fails
with its name, never as an unhandled OSS error."""

from __future__ import annotations

import gzip
import hashlib
import io
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import oss2
import requests
import urllib3

from .bucket_gateway import BucketGateway
from .gateway import ObjectGone, OssFailure, TransientOssError
from .inventory import DataFile, InventoryError, Manifest, Row, inventory_rows, manifest_rows, parse_manifest

READ_ATTEMPTS = 4
HEAD_WORKERS = 16  # data files checked at once before a job starts
# A body that stops arriving: the connection reset or timed out mid-read (urllib3 and requests wrap it).
_BROKEN_OFF = (
    oss2.exceptions.RequestError,
    requests.exceptions.RequestException,
    urllib3.exceptions.HTTPError,
    ConnectionError,
    TimeoutError,
)


def read_manifest(gateway: BucketGateway, key: str) -> Manifest:
    """The manifest.json at `key` of the gateway's bucket; InventoryError when it is missing or unusable."""
    data = gateway.read_object(key)
    where = f"oss://{gateway.bucket.bucket_name}/{key}"
    if data is None:
        raise InventoryError(f"{where} does not exist")
    if key.endswith("manifest.json"):
        # OSS writes the MD5 of manifest.json beside it; a copy elsewhere (no checksum) is taken as it is
        checksum = gateway.read_object(key.removesuffix(".json") + ".checksum")
        actual = hashlib.md5(data).hexdigest()
        if checksum is not None and checksum.strip().decode("ascii", "replace").lower() != actual:
            raise InventoryError(
                f"{where} does not match its manifest.checksum (MD5 {actual}, the checksum says "
                f"{checksum.strip()[:64].decode('ascii', 'replace')}): it was changed after OSS wrote it"
            )
    return parse_manifest(data, where)


def check_data_files(gateway: BucketGateway, manifest: Manifest, where: str) -> None:
    """Every data file the manifest at `where` lists exists with the size it says (a HEAD each, before a job
    starts: a file deleted by a lifecycle rule or a half-copied inventory is refused, not found mid-job)."""

    def check(listed: DataFile) -> None:
        try:
            size = gateway.head(listed.key).size
        except ObjectGone:
            missing = _where(gateway, listed.key)
            raise InventoryError(f"{missing}, listed in {where}, does not exist") from None
        if listed.size and size != listed.size:
            raise InventoryError(f"{_where(gateway, listed.key)} is {size} bytes; {where} says {listed.size}")

    with ThreadPoolExecutor(max_workers=HEAD_WORKERS, thread_name_prefix="data-files") as pool:
        list(pool.map(check, manifest.files))


def _where(gateway: BucketGateway, key: str) -> str:
    return f"oss://{gateway.bucket.bucket_name}/{key}"


class _Counting(io.RawIOBase):
    """The object's body, counting the bytes read (a data file's progress is its compressed bytes) and
    hashing them (its MD5, checked against the manifest at the end)."""

    def __init__(self, body: Any) -> None:
        self.body, self.count, self.md5 = body, 0, hashlib.md5()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.body.read(len(buffer))
        buffer[: len(data)] = data
        self.count += len(data)
        self.md5.update(data)
        return len(data)

    def drain(self) -> None:
        while self.readinto(bytearray(256 * 1024)):
            pass


def records(
    gateway: BucketGateway,
    key: str,
    columns: tuple[str, ...],
    start: int = 0,
    progress: list[int] | None = None,
    expected: DataFile | None = None,
    listed_in: str = "the manifest",
) -> Iterator[tuple[int, Row]]:
    """(record number, row) of the data file `key` from record `start` on: an inventory data file when
    `columns` are given (its fileSchema), else a CSV manifest. `.gz` files are gunzipped. `progress[0]`, when
    given, follows the bytes of the file read so far. With `expected` (what `listed_in` says of the file),
    a file of another size is refused before its first record, and one of another MD5 after its last."""
    where = f"oss://{gateway.bucket.bucket_name}/{key}"
    next_record = start
    for attempt in range(READ_ATTEMPTS):
        try:
            response = gateway.open_object(key)
        except ObjectGone:
            raise InventoryError(f"{where} does not exist any more") from None
        announced = getattr(response, "content_length", None)
        if expected and expected.size and announced is not None and announced != expected.size:
            raise InventoryError(f"{where} is {announced} bytes now; {listed_in} says {expected.size}")
        body = _Counting(response)
        stream: Any = io.BufferedReader(body, buffer_size=256 * 1024)
        if key.endswith(".gz"):
            stream = gzip.GzipFile(fileobj=stream, mode="rb")
        text = io.TextIOWrapper(stream, encoding="utf-8", newline="")
        parsed = inventory_rows(text, columns, where) if columns else manifest_rows(text, where)
        try:
            for number, row in parsed:
                if progress is not None:
                    progress[0] = body.count
                if number < next_record:
                    continue
                next_record = number + 1
                yield number, row
            body.drain()
            actual = body.md5.hexdigest()
            if expected and expected.md5 and actual != expected.md5.strip().lower():
                raise InventoryError(f"{where} has MD5 {actual}; {listed_in} says {expected.md5}")
            return
        except _BROKEN_OFF as error:
            if attempt + 1 == READ_ATTEMPTS:
                raise TransientOssError(
                    f"GetObject {key!r}",
                    message=f"the read broke off ({type(error).__name__})",
                    attempts=attempt + 1,
                ) from None
        except (OSError, EOFError, UnicodeDecodeError) as error:  # not gzip, cut short, not UTF-8
            raise InventoryError(f"{where} cannot be read: {type(error).__name__}: {error}") from None
        except OssFailure:
            raise
