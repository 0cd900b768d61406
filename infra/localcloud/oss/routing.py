"""Which OSS API a request calls, decided as OSS does: by level (service, bucket, object), method,
sub-resource parameters and a few headers."""

from __future__ import annotations

from collections.abc import Callable

from .api import buckets, inventory, multipart, object_tagging, objects, post_object
from .api.common import OssResponse, ServerContext
from .auth import V1_SUBRESOURCES
from .errors import OssError, not_implemented
from .request import OssRequest

Operation = Callable[[ServerContext, OssRequest], OssResponse]

# Operations that carry their credentials in the body (a signed form policy), not in headers or the URL.
SELF_AUTHENTICATED = frozenset({"PostObject"})
# Operations whose credentials OSS checks before it looks the bucket up (it may not exist yet); for every
# other one a missing bucket is 404 NoSuchBucket whoever asks.
CREDENTIALS_FIRST = frozenset({"PutBucket", "PutBucketAcl"})


def _bucket_route(req: OssRequest) -> tuple[str, Operation]:
    q, m = req.query, req.method
    if "inventory" in q:
        if m == "PUT":
            return "PutBucketInventory", inventory.put_bucket_inventory
        if m == "DELETE":
            return "DeleteBucketInventory", inventory.delete_bucket_inventory
        if m == "GET" and "inventoryId" in q:
            return "GetBucketInventory", inventory.get_bucket_inventory
        if m == "GET":
            return "ListBucketInventory", inventory.list_bucket_inventory
    if m == "PUT":
        if "versioning" in q:
            return "PutBucketVersioning", buckets.put_bucket_versioning
        if "acl" in q:
            return "PutBucketAcl", buckets.put_bucket_acl
        if not q:
            return "PutBucket", buckets.put_bucket
    elif m == "DELETE" and not q:
        return "DeleteBucket", buckets.delete_bucket
    elif m == "POST" and "delete" in q:
        return "DeleteMultipleObjects", objects.delete_multiple_objects
    elif m == "POST" and req.header("content-type").lower().startswith("multipart/form-data"):
        return "PostObject", post_object.post_object
    elif m == "GET":
        for param, api, operation in (
            ("bucketInfo", "GetBucketInfo", buckets.get_bucket_info),
            ("location", "GetBucketLocation", buckets.get_bucket_location),
            ("versioning", "GetBucketVersioning", buckets.get_bucket_versioning),
            ("versions", "ListObjectVersions", buckets.list_object_versions),
            ("uploads", "ListMultipartUploads", multipart.list_uploads),
            ("live", "ListLiveChannel", buckets.list_live_channels),
            ("acl", "GetBucketAcl", buckets.get_bucket_acl),
        ):
            if param in q:
                return api, operation
        if q.get("list-type") == "2":
            return "ListObjectsV2", buckets.list_objects_v2
        if not _other_subresources(q):  # OSS ignores parameters it does not know
            return "ListObjects", buckets.list_objects
    return _unsupported(f"{m} on a bucket with ?{'&'.join(sorted(q))}")


def _object_route(req: OssRequest) -> tuple[str, Operation]:
    q, m = req.query, req.method
    if m == "PUT":
        if "tagging" in q:
            return "PutObjectTagging", object_tagging.put_object_tagging
        if "symlink" in q:
            return "PutSymlink", objects.put_symlink
        if "acl" in q:
            return "PutObjectAcl", objects.put_object_acl
        if "partNumber" in q and "uploadId" in q:
            if req.header("x-oss-copy-source"):
                return "UploadPartCopy", multipart.upload_part_copy
            return "UploadPart", multipart.upload_part
        if req.header("x-oss-copy-source"):
            return "CopyObject", objects.copy_object
        return "PutObject", objects.put_object
    if m in ("GET", "HEAD"):
        if "x-oss-process" in q:  # image/video processing: never the unprocessed object in its place
            return _unsupported(f"{m} on an object with ?x-oss-process")
        if "tagging" in q and m == "GET":
            return "GetObjectTagging", object_tagging.get_object_tagging
        if "symlink" in q and m == "GET":
            return "GetSymlink", objects.get_symlink
        if "acl" in q and m == "GET":
            return "GetObjectAcl", objects.get_object_acl
        if "uploadId" in q and m == "GET":
            return "ListParts", multipart.list_parts
        if "objectMeta" in q:
            return "GetObjectMeta", objects.get_object_meta
        return ("HeadObject", objects.head_object) if m == "HEAD" else ("GetObject", objects.get_object)
    if m == "DELETE":
        if "tagging" in q:
            return "DeleteObjectTagging", object_tagging.delete_object_tagging
        if "uploadId" in q:
            return "AbortMultipartUpload", multipart.abort
        return "DeleteObject", objects.delete_object
    if m == "POST":
        if "append" in q:
            return "AppendObject", objects.append_object
        if "uploads" in q:
            return "InitiateMultipartUpload", multipart.initiate
        if "uploadId" in q:
            return "CompleteMultipartUpload", multipart.complete
    return _unsupported(f"{m} on an object with ?{'&'.join(sorted(q))}")


# Parameters of presigned URLs, which say nothing about the operation.
_SIGNING_PARAMS = {
    "OSSAccessKeyId",
    "Expires",
    "Signature",
    "security-token",
    "x-oss-signature-version",
    "x-oss-credential",
    "x-oss-date",
    "x-oss-expires",
    "x-oss-signature",
    "x-oss-additional-headers",
    "x-oss-security-token",
}


def _unsupported(what: str) -> tuple[str, Operation]:
    """An API the local OSS leaves out: answered 501 once the request is authenticated, as OSS checks
    the bucket and the credentials before the operation."""

    def refuse(_ctx: ServerContext, _req: OssRequest) -> OssResponse:
        raise not_implemented(what)

    return "NotImplemented", refuse


def _other_subresources(query: dict[str, str]) -> set[str]:
    """Sub-resources in `query` that name an API other than a plain listing (`?stat`, `?regions`, ...)."""
    return (set(query) & (V1_SUBRESOURCES | _SERVICE_SUBRESOURCES)) - _SIGNING_PARAMS


# Service-level sub-resources of APIs the local OSS leaves out (DescribeRegions, ListUserDataRedundancy...).
_SERVICE_SUBRESOURCES = frozenset(
    {"regions", "regionList", "resourcePool", "accessPoint", "userDataRedundancyTransition"}
)


def route(req: OssRequest) -> tuple[str, Operation]:
    if not req.bucket:
        if req.method == "GET" and not _other_subresources(req.query):
            return "ListBuckets", buckets.list_buckets
        if req.method == "GET":
            return _unsupported(
                f"GET on the service with ?{'&'.join(sorted(_other_subresources(req.query)))}"
            )
        raise OssError(405, "MethodNotAllowed", f"{req.method} is not allowed on the service.")
    if not req.key:
        return _bucket_route(req)
    return _object_route(req)
