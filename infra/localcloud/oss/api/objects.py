"""Object operations: put, get, head, delete (single and batch), copy, append, symlinks, metadata."""

from __future__ import annotations

import re
from email.utils import parsedate_to_datetime
from urllib.parse import quote, unquote

from cloudformats.checksums import content_md5, crc64, md5_etag

from .. import tagging, xmlin
from ..errors import OssError, invalid_argument, is_decimal, malformed_xml
from ..model import NULL_VERSION, Bucket, ObjectVersion, is_well_formed_version_id
from ..request import OssRequest
from ..xmlout import Doc, http_date, iso8601, url_encode
from .common import (
    OssResponse,
    ServerContext,
    check_content_md5,
    check_key,
    content_type,
    emit,
    header_value,
    object_headers,
    parse_copy_source,
    reject_encryption,
    requested_version,
    system_meta,
    version_headers,
)

MAX_BATCH_DELETE = 1000


def _new_version(
    req: OssRequest,
    key: str,
    data: bytes,
    tags: dict[str, str],
    object_type: str = "Normal",
) -> ObjectVersion:
    return ObjectVersion(
        key=key,
        data=data,
        object_type=object_type,
        content_type=content_type(req, key),
        user_meta=req.user_meta,
        system_meta=system_meta(req),
        tags=tags,
        etag=md5_etag(data),
        crc64=crc64(data),
    )


def _check_overwrite(req: OssRequest, bucket: Bucket) -> None:
    current = bucket.current(req.key)
    if req.header("x-oss-forbid-overwrite").lower() == "true" and current and not current.is_delete_marker:
        raise OssError(
            409,
            "FileAlreadyExists",
            "The object you specified already exists and can not be overwritten.",
            Key=req.key,
        )


def put_object(ctx: ServerContext, req: OssRequest) -> OssResponse:
    bucket = ctx.store.bucket(req.bucket)
    check_key(req.key)
    reject_encryption(req)
    check_content_md5(req, req.body)
    tags = tagging.parse_header(req.header("x-oss-tagging"))
    with ctx.store.lock:
        _check_overwrite(req, bucket)
        version = _new_version(req, req.key, req.body, tags)
        previous = ctx.store.put(bucket, version)
    emit(ctx, req, "ObjectCreated:PutObject", bucket, version, previous)
    return OssResponse(
        headers={
            "ETag": f'"{version.etag}"',
            "x-oss-hash-crc64ecma": str(version.crc64),
            "Content-MD5": req.header("content-md5") or content_md5(version.etag),
            **version_headers(bucket, version),
        }
    )


def _resolve(ctx: ServerContext, req: OssRequest, bucket: Bucket, version: ObjectVersion) -> ObjectVersion:
    """The version whose bytes a GET returns: the symlink's target for a symlink (reading through a link
    needs the right to read the target too)."""
    if version.object_type != "Symlink":
        return version
    if req.access is not None:
        req.access.require("oss:GetObject", bucket.name, version.symlink_target)
    try:
        target = ctx.store.version(bucket, version.symlink_target)
    except OssError as exc:
        raise OssError(
            404,
            "SymlinkTargetNotExist",
            "The symlink target object does not exist.",
            Key=version.key,
            TargetKey=version.symlink_target,
        ) from exc
    if target.object_type == "Symlink":  # OSS follows one link, never a chain
        raise OssError(
            400,
            "InvalidTargetType",
            "The symlink target object type is not supported.",
            Key=version.key,
            TargetKey=version.symlink_target,
        )
    return target


def _http_time(value: str) -> float | None:
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None


def check_conditions(headers: dict[str, str], etag: str, last_modified: float, prefix: str = "") -> None:
    """If-Match / If-None-Match / If-Modified-Since / If-Unmodified-Since (or their copy-source forms)."""
    modified = int(last_modified)
    if_match = headers.get(f"{prefix}if-match")
    if if_match and if_match.strip('"') != etag:
        raise OssError(
            412,
            "PreconditionFailed",
            "At least one of the pre-conditions you specified did not hold.",
            Condition="If-Match",
        )
    unmodified_since = _http_time(headers.get(f"{prefix}if-unmodified-since", ""))
    if unmodified_since is not None and modified > unmodified_since:
        raise OssError(
            412,
            "PreconditionFailed",
            "At least one of the pre-conditions you specified did not hold.",
            Condition="If-Unmodified-Since",
        )
    if_none_match = headers.get(f"{prefix}if-none-match")
    if if_none_match and if_none_match.strip('"') == etag:
        raise OssError(304, "NotModified", "The object was not modified.")
    modified_since = _http_time(headers.get(f"{prefix}if-modified-since", ""))
    if modified_since is not None and modified <= modified_since:
        raise OssError(304, "NotModified", "The object was not modified.")


_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")
_RESPONSE_OVERRIDES = {
    "response-content-type": "Content-Type",
    "response-content-language": "Content-Language",
    "response-expires": "Expires",
    "response-cache-control": "Cache-Control",
    "response-content-disposition": "Content-Disposition",
    "response-content-encoding": "Content-Encoding",
}


def _byte_range(header: str, size: int, standard: bool) -> tuple[int, int] | None:
    """The inclusive byte range asked for, or None when OSS returns the whole object.

    By default OSS ignores a range that does not fit the object (200, the whole object). With
    `x-oss-range-behavior: standard` it cuts an end past the size, and a start past it is 416."""
    match = _RANGE.match(header.strip())
    if not match or (not match[1] and not match[2]):
        return None
    if not match[1]:
        suffix = int(match[2])
        if suffix > size and not standard:
            return None
        start, end = max(size - suffix, 0), size - 1
    else:
        start = int(match[1])
        end = int(match[2]) if match[2] else size - 1
        if end >= size:
            if not standard:
                return None
            end = size - 1
    if start >= size and standard and size > 0:
        raise OssError(
            416,
            "InvalidRange",
            "The requested range cannot be satisfied.",
            RangeRequested=header,
            ActualObjectSize=str(size),
        )
    if start > end:
        return None
    return start, end


def get_object(ctx: ServerContext, req: OssRequest) -> OssResponse:
    bucket = ctx.store.bucket(req.bucket)
    with ctx.store.lock:
        version = ctx.store.version(bucket, req.key, requested_version(req))
        content = _resolve(ctx, req, bucket, version)
    check_conditions(req.headers, content.etag, content.last_modified)
    headers = object_headers(bucket, version, content)
    for param, header in _RESPONSE_OVERRIDES.items():
        if param in req.query:
            headers[header] = header_value(param, req.query[param])
    standard = req.header("x-oss-range-behavior").lower() == "standard"
    span = _byte_range(req.header("range"), content.size, standard) if req.header("range") else None
    if span is None:
        return OssResponse(200, headers, content.data)
    start, end = span
    headers["Content-Range"] = f"bytes {start}-{end}/{content.size}"
    return OssResponse(206, headers, content.data[start : end + 1])


def head_object(ctx: ServerContext, req: OssRequest) -> OssResponse:
    """GET's headers; the server sends no body for HEAD (Content-Length still gives the object's size)."""
    return get_object(ctx, req)


def get_object_meta(ctx: ServerContext, req: OssRequest) -> OssResponse:
    bucket = ctx.store.bucket(req.bucket)
    version = ctx.store.version(bucket, req.key, requested_version(req))
    return OssResponse(
        headers={
            "ETag": f'"{version.etag}"',
            "Content-Length": str(version.size),
            "Last-Modified": http_date(version.last_modified),
            "x-oss-last-access-time": http_date(version.last_modified),
            **version_headers(bucket, version),
        }
    )


def _delete(ctx: ServerContext, bucket: Bucket, key: str, version_id: str | None) -> dict[str, str]:
    """Delete as OSS does; returns the response facts (version id, delete marker)."""
    with ctx.store.lock:
        if version_id is not None:
            if not is_well_formed_version_id(version_id):
                raise invalid_argument(
                    f"versionId {version_id!r} is not a valid version id.", "versionId", version_id
                )
            removed = ctx.store.remove_version(bucket, key, version_id)
            facts = {"x-oss-version-id": version_id}
            if removed is not None and removed.is_delete_marker:
                facts["x-oss-delete-marker"] = "true"
            return facts
        if bucket.versioning:
            marker = ObjectVersion(key=key, is_delete_marker=True)
            ctx.store.put(bucket, marker)
            return {"x-oss-delete-marker": "true", "x-oss-version-id": marker.version_id}
        if bucket.objects.get(key):
            ctx.store.remove_version(bucket, key, NULL_VERSION)
            return {"deleted": "true"}
        return {}


def delete_object(ctx: ServerContext, req: OssRequest) -> OssResponse:
    bucket = ctx.store.bucket(req.bucket)
    with ctx.store.lock:
        existing = bucket.current(req.key)
        facts = _delete(ctx, bucket, req.key, requested_version(req))
    if existing is not None and not existing.is_delete_marker:
        emit(ctx, req, "ObjectRemoved:DeleteObject", bucket, existing, delta_size=-existing.size)
    facts.pop("deleted", None)
    return OssResponse(204, facts)


def _parse_delete_body(body: bytes) -> tuple[bool, list[tuple[str, str | None]]]:
    """(quiet, [(key, version id)]) from a DeleteMultipleObjects body. Keys may hold control characters,
    raw or as character references (see xmlin)."""
    root, placeholders = xmlin.parse(body, "DeleteMultipleObjects")
    if root.tag != "Delete":
        raise malformed_xml(f"The root element is <{root.tag}>, not <Delete>.")
    quiet = xmlin.text(root.find("Quiet"), placeholders).strip().lower() == "true"
    entries: list[tuple[str, str | None]] = []
    for element in root.iterfind("Object"):
        key = element.find("Key")
        if key is None:
            raise malformed_xml("An <Object> has no <Key>.")
        version = element.find("VersionId")
        entries.append(
            (xmlin.text(key, placeholders), None if version is None else xmlin.text(version, placeholders))
        )
    return quiet, entries


def delete_multiple_objects(ctx: ServerContext, req: OssRequest) -> OssResponse:
    bucket = ctx.store.bucket(req.bucket)
    check_content_md5(req, req.body)
    quiet, entries = _parse_delete_body(req.body)
    if not entries:
        raise malformed_xml("The <Delete> document names no objects.")
    if len(entries) > MAX_BATCH_DELETE:
        raise malformed_xml(
            f"At most {MAX_BATCH_DELETE} objects can be deleted at once; {len(entries)} were given."
        )
    if req.access is not None:  # every key is an object the requester must be allowed to delete
        for key, version_id in entries:
            req.access.require("oss:DeleteObject", bucket.name, key, batch=True)
            if version_id is not None:
                req.access.require("oss:DeleteObjectVersion", bucket.name, key, batch=True)
    encode = req.query.get("encoding-type") == "url"
    doc = Doc("DeleteResult")
    if encode:
        doc.add(None, "EncodingType", "url")
    for key, version_id in entries:
        with ctx.store.lock:
            existing = bucket.current(key)
            facts = _delete(ctx, bucket, key, version_id)
        if existing is not None and not existing.is_delete_marker:
            emit(ctx, req, "ObjectRemoved:DeleteObjects", bucket, existing, delta_size=-existing.size)
        if quiet:
            continue
        deleted = doc.add(None, "Deleted")
        doc.add(deleted, "Key", url_encode(key, encode))
        if version_id is not None:
            doc.add(deleted, "VersionId", version_id)
        if facts.get("x-oss-delete-marker"):
            doc.add(deleted, "DeleteMarker", "true")
            doc.add(deleted, "DeleteMarkerVersionId", facts["x-oss-version-id"])
    return OssResponse.xml(doc)


def copy_object(ctx: ServerContext, req: OssRequest) -> OssResponse:
    bucket = ctx.store.bucket(req.bucket)
    check_key(req.key)
    reject_encryption(req)
    source_bucket_name, source_key, source_version_id = parse_copy_source(req.header("x-oss-copy-source"))
    source_bucket = ctx.store.bucket(source_bucket_name)
    metadata_directive = req.header("x-oss-metadata-directive", "COPY").upper()
    tagging_directive = req.header("x-oss-tagging-directive", "COPY").upper()
    for name, value in (
        ("x-oss-metadata-directive", metadata_directive),
        ("x-oss-tagging-directive", tagging_directive),
    ):
        if value not in ("COPY", "REPLACE"):
            raise invalid_argument(f"{name} must be COPY or REPLACE.", name, value)
    new_tags = tagging.parse_header(req.header("x-oss-tagging")) if tagging_directive == "REPLACE" else None
    with ctx.store.lock:
        _check_overwrite(req, bucket)
        source = ctx.store.version(source_bucket, source_key, source_version_id)
        content = _resolve(ctx, req, source_bucket, source)
        if new_tags is None and source.tags and req.access is not None:  # the copy carries tags over
            tag_read = "oss:GetObjectVersionTagging" if source_version_id else "oss:GetObjectTagging"
            req.access.require(tag_read, source_bucket.name, source_key)
            req.access.require("oss:PutObjectTagging", bucket.name, req.key)
        check_conditions(req.headers, content.etag, content.last_modified, prefix="x-oss-copy-source-")
        replace_meta = metadata_directive == "REPLACE"
        version = ObjectVersion(
            key=req.key,
            data=content.data,
            object_type="Normal",
            etag=content.etag,
            crc64=content.crc64,
            # REPLACE without a Content-Type keeps the source's type, as OSS does
            content_type=req.header("content-type") or content.content_type,
            user_meta=req.user_meta if replace_meta else dict(source.user_meta),
            system_meta=system_meta(req) if replace_meta else dict(content.system_meta),
            tags=new_tags if new_tags is not None else dict(source.tags),
        )
        previous = ctx.store.put(bucket, version)
    emit(ctx, req, "ObjectCreated:CopyObject", bucket, version, previous)
    doc = Doc("CopyObjectResult")
    doc.fields(None, ETag=f'"{version.etag}"', LastModified=iso8601(version.last_modified))
    headers = {"x-oss-hash-crc64ecma": str(version.crc64), **version_headers(bucket, version)}
    if source_bucket.versioning:
        headers["x-oss-copy-source-version-id"] = source.version_id
    return OssResponse.xml(doc, headers=headers)


def append_object(ctx: ServerContext, req: OssRequest) -> OssResponse:
    bucket = ctx.store.bucket(req.bucket)
    check_key(req.key)
    reject_encryption(req)
    position_text = req.query.get("position", "")
    if not is_decimal(position_text):
        raise invalid_argument(
            f"position {position_text!r} is not a non-negative integer.", "position", position_text
        )
    position = int(position_text)
    check_content_md5(req, req.body)
    with ctx.store.lock:
        current = bucket.current(req.key)
        if current is not None and current.is_delete_marker:
            current = None
        length = current.size if current is not None else 0
        if current is not None and current.object_type != "Appendable":
            raise OssError(409, "ObjectNotAppendable", "The object is not appendable.", Key=req.key)
        if position != length:
            raise OssError(
                409,
                "PositionNotEqualToLength",
                "Position is not equal to file length.",
                headers={"x-oss-next-append-position": str(length)},
            )
        if current is None:
            # Only the append that creates the object sets its tags and metadata.
            tags = tagging.parse_header(req.header("x-oss-tagging"))
            version = _new_version(req, req.key, req.body, tags, object_type="Appendable")
            ctx.store.put(bucket, version)
        else:
            version = current
            version.data += req.body
            version.etag, version.crc64 = md5_etag(version.data), crc64(version.data)
            version.last_modified = ctx.store.clock.time()
            ctx.store.touch(bucket, req.key)
    emit(ctx, req, "ObjectCreated:AppendObject", bucket, version, position=position, delta_size=len(req.body))
    return OssResponse(
        headers={
            "ETag": f'"{version.etag}"',
            "x-oss-next-append-position": str(version.size),
            "x-oss-hash-crc64ecma": str(version.crc64),
            **version_headers(bucket, version),
        }
    )


def put_symlink(ctx: ServerContext, req: OssRequest) -> OssResponse:
    bucket = ctx.store.bucket(req.bucket)
    check_key(req.key)
    target = unquote(req.header("x-oss-symlink-target"))
    if not target:
        raise invalid_argument("x-oss-symlink-target is required.", "x-oss-symlink-target")
    check_key(target)
    tags = tagging.parse_header(req.header("x-oss-tagging"))
    with ctx.store.lock:
        _check_overwrite(req, bucket)
        version = _new_version(req, req.key, b"", tags, object_type="Symlink")
        version.symlink_target = target
        version.etag = md5_etag(target.encode())
        previous = ctx.store.put(bucket, version)
    emit(ctx, req, "ObjectCreated:PutSymlink", bucket, version, previous)
    return OssResponse(headers={"ETag": f'"{version.etag}"', **version_headers(bucket, version)})


def get_symlink(ctx: ServerContext, req: OssRequest) -> OssResponse:
    bucket = ctx.store.bucket(req.bucket)
    version = ctx.store.version(bucket, req.key, requested_version(req))
    if version.object_type != "Symlink":
        raise OssError(400, "NotSymlink", "The specified object is not a symlink.", Key=req.key)
    return OssResponse(
        headers={
            "x-oss-symlink-target": quote(version.symlink_target),
            "ETag": f'"{version.etag}"',
            "Last-Modified": http_date(version.last_modified),
            **version.user_meta,
            **version_headers(bucket, version),
        }
    )


def get_object_acl(ctx: ServerContext, req: OssRequest) -> OssResponse:
    bucket = ctx.store.bucket(req.bucket)
    if req.key:
        ctx.store.version(bucket, req.key, requested_version(req))
    doc = Doc("AccessControlPolicy")
    doc.owner(None, ctx.owner_id)
    doc.add(doc.add(None, "AccessControlList"), "Grant", "default" if req.key else "private")
    return OssResponse.xml(doc)


def put_object_acl(ctx: ServerContext, req: OssRequest) -> OssResponse:
    bucket = ctx.store.bucket(req.bucket)
    if req.key:
        ctx.store.version(bucket, req.key, requested_version(req))
    return OssResponse()
