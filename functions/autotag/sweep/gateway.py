"""The sweep's conversation with OSS beyond listings and state (bucket_gateway): removing tags, the bucket's
versioning and its version listings. A separate class, so neither the upload function nor the backfill
processor imports it or needs the permissions for any of it."""

from __future__ import annotations

from ..bucket_gateway import BucketGateway, ListedObject, ListingPage, utc

__all__ = ["ListedObject", "ListingPage", "SweepGateway"]


class SweepGateway(BucketGateway):
    def delete_tags(self, key: str, version_id: str | None = None) -> None:
        """DeleteObjectTagging: idempotent (204 whether or not the object had tags)."""
        self._call(
            f"DeleteObjectTagging {key!r}",
            lambda: self.bucket.delete_object_tagging(key, params=self._params(version_id)),
            tag_write=True,
        )

    def is_versioned(self) -> bool:
        """Whether the bucket keeps versions (Enabled, or Suspended with older versions kept)."""
        result = self._call("GetBucketVersioning", lambda: self.bucket.get_bucket_versioning())
        return bool(result.status)

    def list_versions_page(
        self, prefix: str, key_marker: str, version_marker: str, max_keys: int = 1000
    ) -> ListingPage:
        """One page of every version (delete markers left out: they have no tags)."""
        result = self._call(
            f"ListObjectVersions {prefix!r}",
            lambda: self.bucket.list_object_versions(
                prefix=prefix, key_marker=key_marker, versionid_marker=version_marker, max_keys=max_keys
            ),
        )
        objects = [
            ListedObject(v.key, int(v.size), utc(v.last_modified), v.etag, v.versionid)
            for v in result.versions
        ]
        return ListingPage(objects, result.next_key_marker, result.next_versionid_marker, result.is_truncated)
