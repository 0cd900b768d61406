"""Reading the object lists OSS writes, from OSS: an inventory's manifest.json, and its data files (or a
CSV manifest) as a stream of records, from any record on. A data file is read as it arrives — gunzipped,
decoded and parsed record by record, never held whole — and a read that breaks off is taken up again with
a new GetObject, skipping the records already handed out."""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterator
from typing import Any

import oss2
import requests
import urllib3

from .bucket_gateway import BucketGateway
from .gateway import OssFailure, TransientOssError
from .inventory import InventoryError, Manifest, Row, inventory_rows, manifest_rows, parse_manifest

READ_ATTEMPTS = 4
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
    return parse_manifest(data, where)


class _Counting(io.RawIOBase):
    """The object's body, counting the bytes read (a data file's progress is its compressed bytes)."""

    def __init__(self, body: Any) -> None:
        self.body, self.count = body, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.body.read(len(buffer))
        buffer[: len(data)] = data
        self.count += len(data)
        return len(data)


def records(
    gateway: BucketGateway,
    key: str,
    columns: tuple[str, ...],
    start: int = 0,
    progress: list[int] | None = None,
) -> Iterator[tuple[int, Row]]:
    """(record number, row) of the data file `key` from record `start` on: an inventory data file when
    `columns` are given (its fileSchema), else a CSV manifest. `.gz` files are gunzipped. `progress[0]`, when
    given, follows the bytes of the file read so far."""
    where = f"oss://{gateway.bucket.bucket_name}/{key}"
    next_record = start
    for attempt in range(READ_ATTEMPTS):
        body = _Counting(gateway.open_object(key))
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
