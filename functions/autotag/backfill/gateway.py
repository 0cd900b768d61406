"""The backfill's conversation with OSS beyond the sweep's: writing a report object of any size as a
multipart upload, a part at a time, so the report of a job with millions of failures never sits in memory."""

from __future__ import annotations

from collections.abc import Iterable

import oss2

from ..bucket_gateway import BucketGateway

PART_BYTES = 8 * 1024 * 1024  # OSS takes parts of 100 KB to 5 GB, the last one smaller


class BackfillGateway(BucketGateway):
    def write_streamed(self, key: str, pieces: Iterable[bytes], part_bytes: int = PART_BYTES) -> int:
        """Write the concatenation of `pieces` as the object `key`: one PutObject when it fits in a part,
        else a multipart upload of `part_bytes` parts. Returns the object's size."""
        buffer = bytearray()
        upload_id = ""
        parts: list[oss2.models.PartInfo] = []
        size = 0
        for piece in pieces:
            buffer += piece
            size += len(piece)
            while len(buffer) >= part_bytes:
                if not upload_id:
                    upload_id = self._call(
                        f"InitiateMultipartUpload {key!r}", lambda: self.bucket.init_multipart_upload(key)
                    ).upload_id
                parts.append(self._part(key, upload_id, len(parts) + 1, bytes(buffer[:part_bytes])))
                del buffer[:part_bytes]
        if not upload_id:
            self.write_object(key, bytes(buffer))
            return size
        if buffer or not parts:
            parts.append(self._part(key, upload_id, len(parts) + 1, bytes(buffer)))
        self._call(
            f"CompleteMultipartUpload {key!r}",
            lambda: self.bucket.complete_multipart_upload(key, upload_id, parts),
        )
        return size

    def _part(self, key: str, upload_id: str, number: int, data: bytes) -> oss2.models.PartInfo:
        result = self._call(
            f"UploadPart {key!r} {number}", lambda: self.bucket.upload_part(key, upload_id, number, data)
        )
        return oss2.models.PartInfo(number, result.etag)
