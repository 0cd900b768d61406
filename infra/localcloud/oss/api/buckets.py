"""Service and bucket operations: list/create/delete buckets, bucket info and versioning, listings."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable

from .. import xmlin
from ..errors import OssError, invalid_argument, is_decimal, malformed_xml
from ..listing import Page, page
from ..model import Bucket, ObjectVersion
from ..request import OssRequest
from ..xmlout import Doc, iso8601, url_encode
from .common import OssResponse, ServerContext

_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]")


def _max_keys(req: OssRequest, default: int = 100) -> int:
    text = req.query.get("max-keys", str(default)) or str(default)
    if not is_decimal(text) or not 1 <= int(text) <= 1000:
        raise invalid_argument(f"max-keys {text!r} is not between 1 and 1000.", "max-keys", text)
    return int(text)


_BOUNDED_PARAMS = ("prefix", "marker", "delimiter", "key-marker", "version-id-marker", "start-after")


def _prefix(req: OssRequest) -> str:
    """The listing's prefix, once every key-shaped parameter is checked against OSS's 1023-byte limit."""
    for name in _BOUNDED_PARAMS:
        value = req.query.get(name, "")
        if len(value.encode()) > 1023:
            raise invalid_argument(
                f"{name} is longer than 1023 bytes, the longest object name.", name, value[:100]
            )
    return req.query.get("prefix", "")


def _encode(req: OssRequest) -> bool:
    return req.query.get("encoding-type") == "url"


def list_buckets(ctx: ServerContext, req: OssRequest) -> OssResponse:
    prefix, marker = req.query.get("prefix", ""), req.query.get("marker", "")
    max_keys = _max_keys(req)
    with ctx.store.lock:
        names = sorted(n for n in ctx.store.buckets if n.startswith(prefix) and n > marker)
        buckets = [ctx.store.buckets[n] for n in names[:max_keys]]
    doc = Doc("ListAllMyBucketsResult")
    doc.fields(None, Prefix=prefix, Marker=marker, MaxKeys=max_keys, IsTruncated=len(names) > max_keys)
    if len(names) > max_keys:
        doc.add(None, "NextMarker", buckets[-1].name)
    doc.owner(None, ctx.owner_id)
    container = doc.add(None, "Buckets")
    for bucket in buckets:
        element = doc.add(container, "Bucket")
        # Endpoints point back at this server, so clients that follow them (oss2 test clean-up) stay local.
        doc.fields(
            element,
            CreationDate=iso8601(bucket.created),
            ExtranetEndpoint=req.host,
            IntranetEndpoint=req.host,
            Location=bucket.location,
            Name=bucket.name,
            Region=ctx.store.region,
            StorageClass=bucket.storage_class,
        )
    return OssResponse.xml(doc)


def put_bucket(ctx: ServerContext, req: OssRequest) -> OssResponse:
    if not _BUCKET_NAME.fullmatch(req.bucket):
        raise OssError(
            400,
            "InvalidBucketName",
            "The specified bucket is not valid: names are 3 to 63 "
            "lower-case letters, digits and hyphens, starting and ending with a letter or digit.",
            BucketName=req.bucket,
        )
    ctx.store.create_bucket(req.bucket)
    return OssResponse(headers={"Location": f"/{req.bucket}"})


def delete_bucket(ctx: ServerContext, req: OssRequest) -> OssResponse:
    ctx.store.delete_bucket(req.bucket)
    return OssResponse(204)


def get_bucket_info(ctx: ServerContext, req: OssRequest) -> OssResponse:
    bucket = ctx.store.bucket(req.bucket)
    doc = Doc("BucketInfo")
    element = doc.add(None, "Bucket")
    doc.fields(
        element,
        AccessMonitor="Disabled",
        CreationDate=iso8601(bucket.created),
        ExtranetEndpoint=req.host,
        IntranetEndpoint=req.host,
        Location=bucket.location,
        StorageClass=bucket.storage_class,
        TransferAcceleration="Disabled",
        CrossRegionReplication="Disabled",
        Name=bucket.name,
        ResourceGroupId="",
        Comment="",
    )
    doc.owner(element, ctx.owner_id)
    doc.add(doc.add(element, "AccessControlList"), "Grant", "private")
    sse = doc.add(element, "ServerSideEncryptionRule")
    doc.add(sse, "SSEAlgorithm", "None")
    if bucket.versioning:
        doc.add(element, "Versioning", bucket.versioning)
    return OssResponse.xml(doc)


def get_bucket_location(ctx: ServerContext, req: OssRequest) -> OssResponse:
    bucket = ctx.store.bucket(req.bucket)
    doc = Doc("LocationConstraint")
    doc.root.text = bucket.location
    return OssResponse.xml(doc)


def put_bucket_versioning(ctx: ServerContext, req: OssRequest) -> OssResponse:
    ctx.store.bucket(req.bucket)
    root, placeholders = xmlin.parse(req.body, "VersioningConfiguration")
    status = xmlin.text(root.find("Status"), placeholders).strip()
    if status not in ("Enabled", "Suspended"):
        raise malformed_xml(f"Versioning Status {status!r} is not Enabled or Suspended.")
    ctx.store.set_versioning(req.bucket, status)
    return OssResponse()


def get_bucket_versioning(ctx: ServerContext, req: OssRequest) -> OssResponse:
    bucket = ctx.store.bucket(req.bucket)
    doc = Doc("VersioningConfiguration")
    if bucket.versioning:
        doc.add(None, "Status", bucket.versioning)
    return OssResponse.xml(doc)


def list_live_channels(ctx: ServerContext, req: OssRequest) -> OssResponse:
    ctx.store.bucket(req.bucket)
    doc = Doc("ListLiveChannelResult")
    doc.fields(
        None,
        Prefix=req.query.get("prefix", ""),
        Marker=req.query.get("marker", ""),
        MaxKeys=_max_keys(req),
        IsTruncated=False,
        NextMarker="",
    )
    return OssResponse.xml(doc)


def _is_live(bucket: Bucket) -> Callable[[str], bool]:
    def include(key: str) -> bool:
        return not bucket.objects[key][-1].is_delete_marker

    return include


def _live_page(
    ctx: ServerContext, bucket: Bucket, prefix: str, delimiter: str, marker: str, max_keys: int
) -> tuple[Page, list[ObjectVersion]]:
    """One page of current, non-deleted objects after `marker`, with their current versions."""
    with ctx.store.lock:
        start = max(marker, prefix)
        result = page(
            bucket.objects.irange(minimum=start, inclusive=(start != marker, True)),
            prefix=prefix,
            delimiter=delimiter,
            max_keys=max_keys,
            marker=marker,
            include=_is_live(bucket),
        )
        return result, [bucket.objects[k][-1] for k in result.keys]


def _add_contents(doc: Doc, version: ObjectVersion, encode: bool, owner_id: str | None) -> None:
    element = doc.add(None, "Contents")
    doc.fields(
        element,
        Key=url_encode(version.key, encode),
        LastModified=iso8601(version.last_modified),
        ETag=f'"{version.etag}"',
        Type=version.object_type,
        Size=version.size,
        StorageClass=version.storage_class,
    )
    if owner_id is not None:
        doc.owner(element, owner_id)


def list_objects(ctx: ServerContext, req: OssRequest) -> OssResponse:
    bucket = ctx.store.bucket(req.bucket)
    prefix, delimiter, marker = _prefix(req), req.query.get("delimiter", ""), req.query.get("marker", "")
    max_keys, encode = _max_keys(req), _encode(req)
    result, versions = _live_page(ctx, bucket, prefix, delimiter, marker, max_keys)
    doc = Doc("ListBucketResult")
    doc.fields(
        None,
        Name=bucket.name,
        Prefix=url_encode(prefix, encode),
        Marker=url_encode(marker, encode),
        MaxKeys=max_keys,
        Delimiter=url_encode(delimiter, encode),
        IsTruncated=result.is_truncated,
    )
    if encode:
        doc.add(None, "EncodingType", "url")
    if result.is_truncated:
        doc.add(None, "NextMarker", url_encode(result.next_marker, encode))
    for version in versions:
        _add_contents(doc, version, encode, ctx.owner_id)
    for common in result.common_prefixes:
        doc.add(doc.add(None, "CommonPrefixes"), "Prefix", url_encode(common, encode))
    return OssResponse.xml(doc)


def _continuation_token(marker: str) -> str:
    return base64.urlsafe_b64encode(b"local-oss:" + marker.encode()).decode()


def _marker_from_token(token: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(token.encode())
        if not raw.startswith(b"local-oss:"):
            raise ValueError(token)
        return raw[len(b"local-oss:") :].decode()
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise invalid_argument(
            "The continuation token provided is incorrect.", "continuation-token", token
        ) from exc


def list_objects_v2(ctx: ServerContext, req: OssRequest) -> OssResponse:
    bucket = ctx.store.bucket(req.bucket)
    prefix, delimiter = _prefix(req), req.query.get("delimiter", "")
    token, start_after = req.query.get("continuation-token"), req.query.get("start-after", "")
    marker = _marker_from_token(token) if token else start_after
    max_keys, encode = _max_keys(req), _encode(req)
    fetch_owner = req.query.get("fetch-owner", "").lower() == "true"
    result, versions = _live_page(ctx, bucket, prefix, delimiter, marker, max_keys)
    doc = Doc("ListBucketResult")
    doc.fields(
        None,
        Name=bucket.name,
        Prefix=url_encode(prefix, encode),
        MaxKeys=max_keys,
        Delimiter=url_encode(delimiter, encode),
        IsTruncated=result.is_truncated,
    )
    if start_after:
        doc.add(None, "StartAfter", url_encode(start_after, encode))
    if token:
        doc.add(None, "ContinuationToken", token)
    if encode:
        doc.add(None, "EncodingType", "url")
    if result.is_truncated:
        doc.add(None, "NextContinuationToken", _continuation_token(result.next_marker))
    doc.add(None, "KeyCount", len(versions) + len(result.common_prefixes))
    for version in versions:
        _add_contents(doc, version, encode, ctx.owner_id if fetch_owner else None)
    for common in result.common_prefixes:
        doc.add(doc.add(None, "CommonPrefixes"), "Prefix", url_encode(common, encode))
    return OssResponse.xml(doc)


def list_object_versions(ctx: ServerContext, req: OssRequest) -> OssResponse:
    bucket = ctx.store.bucket(req.bucket)
    prefix, delimiter = _prefix(req), req.query.get("delimiter", "")
    key_marker, id_marker = req.query.get("key-marker", ""), req.query.get("version-id-marker", "")
    max_keys, encode = _max_keys(req), _encode(req)
    entries: list[ObjectVersion] = []
    prefixes: list[str] = []
    truncated = False
    with ctx.store.lock:
        for key in bucket.objects.irange(minimum=max(key_marker, prefix)):
            if not key.startswith(prefix):
                if key > prefix:
                    break
                continue
            if key == key_marker and not id_marker:
                continue
            cut = key.find(delimiter, len(prefix)) if delimiter else -1
            if cut >= 0:
                common = key[: cut + len(delimiter)]
                if common in prefixes or common <= key_marker:
                    continue
                if len(entries) + len(prefixes) == max_keys:
                    truncated = True
                    break
                prefixes.append(common)
                continue
            newest_first = list(reversed(bucket.objects[key]))
            if key == key_marker:
                ids = [v.version_id for v in newest_first]
                newest_first = newest_first[ids.index(id_marker) + 1 :] if id_marker in ids else []
            for version in newest_first:
                if len(entries) + len(prefixes) == max_keys:
                    truncated = True
                    break
                entries.append(version)
            if truncated:
                break
        latest = {id(bucket.objects[v.key][-1]) for v in entries}
    doc = Doc("ListVersionsResult")
    doc.fields(
        None,
        Name=bucket.name,
        Prefix=url_encode(prefix, encode),
        KeyMarker=url_encode(key_marker, encode),
        VersionIdMarker=id_marker,
        MaxKeys=max_keys,
        Delimiter=url_encode(delimiter, encode),
        IsTruncated=truncated,
    )
    if encode:
        doc.add(None, "EncodingType", "url")
    if truncated and entries:
        doc.fields(
            None,
            NextKeyMarker=url_encode(entries[-1].key, encode),
            NextVersionIdMarker=entries[-1].version_id,
        )
    elif truncated:
        doc.fields(None, NextKeyMarker=url_encode(prefixes[-1], encode), NextVersionIdMarker="")
    for version in entries:
        is_latest = id(version) in latest
        if version.is_delete_marker:
            element = doc.add(None, "DeleteMarker")
            doc.fields(
                element,
                Key=url_encode(version.key, encode),
                VersionId=version.version_id,
                IsLatest=is_latest,
                LastModified=iso8601(version.last_modified),
            )
        else:
            element = doc.add(None, "Version")
            doc.fields(
                element,
                Key=url_encode(version.key, encode),
                VersionId=version.version_id,
                IsLatest=is_latest,
                LastModified=iso8601(version.last_modified),
                ETag=f'"{version.etag}"',
                Type=version.object_type,
                Size=version.size,
                StorageClass=version.storage_class,
            )
        doc.owner(element, ctx.owner_id)
    for common in prefixes:
        doc.add(doc.add(None, "CommonPrefixes"), "Prefix", url_encode(common, encode))
    return OssResponse.xml(doc)


def get_bucket_acl(ctx: ServerContext, req: OssRequest) -> OssResponse:
    ctx.store.bucket(req.bucket)
    doc = Doc("AccessControlPolicy")
    doc.owner(None, ctx.owner_id)
    doc.add(doc.add(None, "AccessControlList"), "Grant", "private")
    return OssResponse.xml(doc)


def put_bucket_acl(ctx: ServerContext, req: OssRequest) -> OssResponse:
    ctx.store.bucket(req.bucket)
    return OssResponse()
