"""The local OSS's state, with OSS's versioning rules. One lock makes every read-modify-write atomic
(a tag update never interleaves with another write to the same object)."""

from __future__ import annotations

import threading

from ..clock import Clock
from .errors import OssError, no_such_bucket, no_such_key, no_such_version
from .model import NULL_VERSION, Bucket, ObjectVersion, is_well_formed_version_id, new_version_id
from .persistence import InMemory, Persistence


class Store:
    def __init__(
        self, persistence: Persistence | None = None, region: str = "cn-hangzhou", clock: Clock | None = None
    ) -> None:
        self.persistence: Persistence = persistence or InMemory()
        self.region = region
        self.clock = clock or Clock()  # stamps every write's Last-Modified
        self.lock = threading.RLock()
        self.buckets: dict[str, Bucket] = self.persistence.load()

    # -- buckets ------------------------------------------------------------------------------------------

    def bucket(self, name: str) -> Bucket:
        bucket = self.buckets.get(name)
        if bucket is None:
            raise no_such_bucket(name)
        return bucket

    def create_bucket(self, name: str) -> Bucket:
        with self.lock:
            bucket = self.buckets.get(name)
            if bucket is None:
                bucket = Bucket(name=name, created=self.clock.time(), location=f"oss-{self.region}")
                self.buckets[name] = bucket
                self.persistence.save_bucket(bucket)
            return bucket

    def delete_bucket(self, name: str) -> None:
        with self.lock:
            bucket = self.bucket(name)
            if bucket.objects or bucket.uploads:
                raise OssError(
                    409, "BucketNotEmpty", "The bucket you tried to delete is not empty.", BucketName=name
                )
            del self.buckets[name]
            self.persistence.delete_bucket(name)

    def set_versioning(self, name: str, status: str) -> None:
        with self.lock:
            bucket = self.bucket(name)
            bucket.versioning = status
            self.persistence.save_bucket(bucket)

    def save_bucket(self, bucket: Bucket) -> None:
        """Persist a change to a bucket's own settings (its inventories)."""
        with self.lock:
            self.persistence.save_bucket(bucket)

    # -- objects ------------------------------------------------------------------------------------------

    def version(
        self, bucket: Bucket, key: str, version_id: str | None = None, *, allow_delete_marker: bool = False
    ) -> ObjectVersion:
        """The current version of `key` (or the one named), raising what OSS raises when there is none."""
        versions = bucket.objects.get(key, [])
        if version_id is None:
            if not versions:
                raise no_such_key(key)
            current = versions[-1]
            if current.is_delete_marker and not allow_delete_marker:
                raise no_such_key(key, delete_marker=True)
            return current
        if not is_well_formed_version_id(version_id):
            raise OssError(
                400,
                "InvalidArgument",
                f"versionId {version_id!r} is not a valid version id.",
                ArgumentName="versionId",
                ArgumentValue=version_id,
            )
        for candidate in versions:
            if candidate.version_id == version_id:
                if candidate.is_delete_marker and not allow_delete_marker:
                    raise OssError(
                        405,
                        "MethodNotAllowed",
                        "The specified version is a delete marker.",
                        headers={"x-oss-delete-marker": "true", "x-oss-version-id": version_id},
                    )
                return candidate
        raise no_such_version(key, version_id)

    def put(self, bucket: Bucket, version: ObjectVersion) -> ObjectVersion | None:
        """Make `version` the current version of its key, as the bucket's versioning state says; returns
        the version it superseded (for the event's deltaSize)."""
        with self.lock:
            version.last_modified = self.clock.time()
            versions = bucket.objects.get(version.key, [])
            previous = versions[-1] if versions else None
            if bucket.versioning == "Enabled":
                version.version_id = new_version_id()
                versions = [*versions, version]
            elif bucket.versioning == "Suspended":
                version.version_id = NULL_VERSION
                versions = [v for v in versions if v.version_id != NULL_VERSION] + [version]
            else:
                version.version_id = NULL_VERSION
                versions = [version]
            bucket.objects[version.key] = versions
            self.persistence.save_key(bucket.name, version.key, versions)
            return previous

    def touch(self, bucket: Bucket, key: str) -> None:
        """Persist an in-place change to one of `key`'s versions (tags, appended data)."""
        self.persistence.save_key(bucket.name, key, bucket.objects.get(key, []))

    def remove_version(self, bucket: Bucket, key: str, version_id: str) -> ObjectVersion | None:
        with self.lock:
            versions = bucket.objects.get(key, [])
            kept = [v for v in versions if v.version_id != version_id]
            removed = next((v for v in versions if v.version_id == version_id), None)
            if kept:
                bucket.objects[key] = kept
            else:
                bucket.objects.pop(key, None)
            self.persistence.save_key(bucket.name, key, kept)
            return removed
