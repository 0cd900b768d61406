"""Whole small objects read and written, beyond the upload path's calls: a GetObject and a PutObject, and
nothing else, so that a role that only reads and writes a few objects (the backfill flows' Report step)
makes no other call. The sweep's BucketGateway adds listings, streams and deletes to it."""

from __future__ import annotations

from .gateway import ObjectGone, OssGateway, PermanentOssError


class ObjectGateway(OssGateway):
    def read_object(self, key: str) -> bytes | None:
        """The object's bytes, or None when it does not exist."""
        try:
            data: bytes = self._call(f"GetObject {key!r}", lambda: self.bucket.get_object(key).read())
        except ObjectGone:
            return None
        return data

    def write_object(self, key: str, data: bytes, *, create_only: bool = False) -> bool:
        """PutObject; with `create_only`, only when no object has the key yet (False when one has)."""
        headers = {"x-oss-forbid-overwrite": "true"} if create_only else None
        try:
            self._call(f"PutObject {key!r}", lambda: self.bucket.put_object(key, data, headers=headers))
        except PermanentOssError as error:
            if create_only and error.status == 409:
                return False
            raise
        return True
