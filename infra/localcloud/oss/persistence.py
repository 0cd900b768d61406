"""Durable state for `--data-dir`: every change is written through to SQLite before the request answers,
so a restarted server (or a killed one) comes back with the same buckets, objects, versions and uploads.

Object bodies live in their own table, written only when a version's body changes: a tag write or a
delete marker rewrites a key's small metadata row, never its bodies."""

from __future__ import annotations

import dataclasses
import pickle
import sqlite3
import threading
from pathlib import Path
from typing import Protocol

from sortedcontainers import SortedDict

from .model import Bucket, MultipartUpload, ObjectVersion


class Persistence(Protocol):
    def load(self) -> dict[str, Bucket]: ...
    def save_bucket(self, bucket: Bucket) -> None: ...
    def delete_bucket(self, name: str) -> None: ...
    def save_key(self, bucket: str, key: str, versions: list[ObjectVersion]) -> None: ...
    def save_upload(self, bucket: str, upload: MultipartUpload) -> None: ...
    def delete_upload(self, bucket: str, upload_id: str) -> None: ...


class InMemory:
    """The default: nothing outlives the process."""

    def load(self) -> dict[str, Bucket]:
        return {}

    def save_bucket(self, bucket: Bucket) -> None:
        pass

    def delete_bucket(self, name: str) -> None:
        pass

    def save_key(self, bucket: str, key: str, versions: list[ObjectVersion]) -> None:
        pass

    def save_upload(self, bucket: str, upload: MultipartUpload) -> None:
        pass

    def delete_upload(self, bucket: str, upload_id: str) -> None:
        pass


_SCHEMA = """
CREATE TABLE IF NOT EXISTS buckets (name TEXT PRIMARY KEY, meta BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS objects (bucket TEXT, key TEXT, versions BLOB NOT NULL, PRIMARY KEY (bucket, key));
CREATE TABLE IF NOT EXISTS uploads (bucket TEXT, upload_id TEXT, upload BLOB NOT NULL,
                                    PRIMARY KEY (bucket, upload_id));
CREATE TABLE IF NOT EXISTS bodies (bucket TEXT, key TEXT, version TEXT, data BLOB NOT NULL,
                                   PRIMARY KEY (bucket, key, version));
"""

# What identifies a version's body without reading it: an append changes all three, a rewrite the etag.
BodyMark = tuple[str, int, int]


def _mark(version: ObjectVersion) -> BodyMark:
    return (version.etag, version.crc64, version.size)


class SqliteDirectory:
    """State in `<data_dir>/oss.sqlite3`, one row per bucket, per key (all its versions) and per upload."""

    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(data_dir / "oss.sqlite3", check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self._bodies: dict[tuple[str, str], dict[str, BodyMark]] = {}  # what the bodies table holds

    def _write(self, sql: str, *args: object) -> None:
        with self._lock:
            self._db.execute(sql, args)

    def load(self) -> dict[str, Bucket]:
        buckets: dict[str, Bucket] = {}
        for name, meta in self._db.execute("SELECT name, meta FROM buckets"):
            bucket: Bucket = pickle.loads(meta)
            bucket.objects, bucket.uploads = SortedDict(), {}
            bucket.__dict__.setdefault("inventories", {})  # written before buckets had inventories
            buckets[name] = bucket
        for bucket_name, key, versions in self._db.execute("SELECT bucket, key, versions FROM objects"):
            if bucket_name in buckets:
                buckets[bucket_name].objects[key] = pickle.loads(versions)
        for bucket_name, key, version_id, data in self._db.execute(
            "SELECT bucket, key, version, data FROM bodies"
        ):
            for version in buckets[bucket_name].objects.get(key, []) if bucket_name in buckets else []:
                if version.version_id == version_id:
                    version.data = data
                    self._bodies.setdefault((bucket_name, key), {})[version_id] = _mark(version)
        for bucket_name, upload_id, upload in self._db.execute(
            "SELECT bucket, upload_id, upload FROM uploads"
        ):
            if bucket_name in buckets:
                buckets[bucket_name].uploads[upload_id] = pickle.loads(upload)
        return buckets

    def save_bucket(self, bucket: Bucket) -> None:
        shell = Bucket(bucket.name, bucket.created, bucket.location, bucket.storage_class, bucket.versioning)
        shell.inventories = dict(bucket.inventories)
        self._write("INSERT OR REPLACE INTO buckets VALUES (?, ?)", bucket.name, pickle.dumps(shell))

    def delete_bucket(self, name: str) -> None:
        self._write("DELETE FROM buckets WHERE name = ?", name)

    def save_key(self, bucket: str, key: str, versions: list[ObjectVersion]) -> None:
        stored = self._bodies.setdefault((bucket, key), {})
        current = {v.version_id: v for v in versions if not v.is_delete_marker}
        for version_id in [v for v in stored if v not in current]:
            self._write(
                "DELETE FROM bodies WHERE bucket = ? AND key = ? AND version = ?", bucket, key, version_id
            )
            del stored[version_id]
        for version_id, version in current.items():
            if stored.get(version_id) != _mark(version):
                self._write(
                    "INSERT OR REPLACE INTO bodies VALUES (?, ?, ?, ?)", bucket, key, version_id, version.data
                )
                stored[version_id] = _mark(version)
        if versions:
            metadata = [dataclasses.replace(v, data=b"") for v in versions]
            self._write(
                "INSERT OR REPLACE INTO objects VALUES (?, ?, ?)", bucket, key, pickle.dumps(metadata)
            )
        else:
            self._write("DELETE FROM objects WHERE bucket = ? AND key = ?", bucket, key)
            self._bodies.pop((bucket, key), None)

    def save_upload(self, bucket: str, upload: MultipartUpload) -> None:
        self._write(
            "INSERT OR REPLACE INTO uploads VALUES (?, ?, ?)", bucket, upload.upload_id, pickle.dumps(upload)
        )

    def delete_upload(self, bucket: str, upload_id: str) -> None:
        self._write("DELETE FROM uploads WHERE bucket = ? AND upload_id = ?", bucket, upload_id)
