"""Multipart uploads: initiate (with tags), upload part (and part copy), complete, abort, list."""

from __future__ import annotations

import re
import secrets

from cloudformats.checksums import content_md5, crc64, md5_etag, multipart_etag

from .. import tagging, xmlin
from ..errors import OssError, invalid_argument, is_decimal, malformed_xml, no_such_upload
from ..model import Bucket, MultipartUpload, ObjectVersion, Part
from ..request import OssRequest
from ..xmlout import Doc, iso8601, url_encode
from .common import (
    OssResponse,
    ServerContext,
    check_content_md5,
    check_key,
    content_type,
    emit,
    parse_copy_source,
    reject_encryption,
    system_meta,
    version_headers,
)
from .objects import check_conditions

MAX_PART_NUMBER = 10000


def _upload(bucket: Bucket, req: OssRequest) -> MultipartUpload:
    upload = bucket.uploads.get(req.query.get("uploadId", ""))
    if upload is None or upload.key != req.key:
        raise no_such_upload(req.query.get("uploadId", ""))
    return upload


def _placeholder(upload: MultipartUpload, etag: str) -> ObjectVersion:
    """What events about an unfinished upload describe (the object itself does not exist yet)."""
    return ObjectVersion(
        key=upload.key,
        etag=etag,
        content_type=upload.content_type,
        user_meta=upload.user_meta,
        object_type="Multipart",
    )


def initiate(ctx: ServerContext, req: OssRequest) -> OssResponse:
    bucket = ctx.store.bucket(req.bucket)
    check_key(req.key)
    reject_encryption(req)
    upload = MultipartUpload(
        upload_id=secrets.token_hex(16).upper(),
        key=req.key,
        initiated=ctx.store.clock.time(),
        content_type=content_type(req, req.key),
        user_meta=req.user_meta,
        system_meta=system_meta(req),
        tags=tagging.parse_header(req.header("x-oss-tagging")),
    )
    with ctx.store.lock:
        bucket.uploads[upload.upload_id] = upload
        ctx.store.persistence.save_upload(bucket.name, upload)
    emit(ctx, req, "ObjectCreated:InitiateMultipartUpload", bucket, _placeholder(upload, ""), delta_size=0)
    doc = Doc("InitiateMultipartUploadResult")
    encode = req.query.get("encoding-type") == "url"
    doc.fields(None, Bucket=bucket.name, Key=url_encode(req.key, encode), UploadId=upload.upload_id)
    if encode:
        doc.add(None, "EncodingType", "url")
    return OssResponse.xml(doc)


def _part_number(req: OssRequest) -> int:
    text = req.query.get("partNumber", "")
    if not is_decimal(text) or not 1 <= int(text) <= MAX_PART_NUMBER:
        raise invalid_argument(
            f"partNumber {text!r} is not between 1 and {MAX_PART_NUMBER}.", "partNumber", text
        )
    return int(text)


def _store_part(ctx: ServerContext, req: OssRequest, data: bytes, event_name: str) -> Part:
    bucket = ctx.store.bucket(req.bucket)
    number = _part_number(req)
    with ctx.store.lock:
        upload = _upload(bucket, req)
        part = Part(number=number, data=data, etag=md5_etag(data), crc64=crc64(data))
        upload.parts[number] = part
        ctx.store.persistence.save_upload(bucket.name, upload)
    emit(ctx, req, event_name, bucket, _placeholder(upload, part.etag), size=len(data), delta_size=0)
    return part


def upload_part(ctx: ServerContext, req: OssRequest) -> OssResponse:
    check_content_md5(req, req.body)
    part = _store_part(ctx, req, req.body, "ObjectCreated:UploadPart")
    return OssResponse(
        headers={
            "ETag": f'"{part.etag}"',
            "Content-MD5": content_md5(part.etag),
            "x-oss-hash-crc64ecma": str(part.crc64),
        }
    )


_COPY_RANGE = re.compile(r"bytes=(\d+)-(\d*)$")


def upload_part_copy(ctx: ServerContext, req: OssRequest) -> OssResponse:
    source_bucket_name, source_key, source_version_id = parse_copy_source(req.header("x-oss-copy-source"))
    source_bucket = ctx.store.bucket(source_bucket_name)
    source = ctx.store.version(source_bucket, source_key, source_version_id)
    check_conditions(req.headers, source.etag, source.last_modified, prefix="x-oss-copy-source-")
    data = source.data
    span = req.header("x-oss-copy-source-range")
    if span:
        match = _COPY_RANGE.match(span)
        start = int(match[1]) if match else 0
        end = (int(match[2]) if match[2] else len(data) - 1) if match else -1
        if not match or start > end or end >= len(data):
            raise invalid_argument(
                f"x-oss-copy-source-range {span!r} is outside the source object.",
                "x-oss-copy-source-range",
                span,
            )
        data = data[start : end + 1]
    part = _store_part(ctx, req, data, "ObjectCreated:UploadPartCopy")
    doc = Doc("CopyPartResult")
    doc.fields(None, LastModified=iso8601(part.last_modified), ETag=f'"{part.etag}"')
    headers = {"ETag": f'"{part.etag}"', "x-oss-hash-crc64ecma": str(part.crc64)}
    if source_bucket.versioning:
        headers["x-oss-copy-source-version-id"] = source.version_id
    return OssResponse.xml(doc, headers=headers)


def _requested_parts(req: OssRequest, upload: MultipartUpload) -> list[Part]:
    if req.header("x-oss-complete-all").lower() == "yes":
        if req.body.strip():
            raise invalid_argument(
                "With x-oss-complete-all: yes the body must be empty.", "x-oss-complete-all"
            )
        return [upload.parts[n] for n in sorted(upload.parts)]
    root, placeholders = xmlin.parse(req.body, "CompleteMultipartUpload")
    parts: list[Part] = []
    for element in root.iterfind("Part"):
        number_text = xmlin.text(element.find("PartNumber"), placeholders).strip()
        etag = xmlin.text(element.find("ETag"), placeholders).strip().strip('"')
        part = upload.parts.get(int(number_text)) if is_decimal(number_text) else None
        if part is None or part.etag != etag.upper():
            raise OssError(
                400,
                "InvalidPart",
                "One or more of the specified parts could not be found or the "
                "specified entity tag might not have matched the part's entity tag.",
                PartNumber=number_text,
                ETag=etag,
            )
        if parts and part.number <= parts[-1].number:
            raise OssError(400, "InvalidPartOrder", "The list of parts was not in ascending order.")
        parts.append(part)
    if not parts:
        raise malformed_xml("The CompleteMultipartUpload body lists no parts.")
    return parts


def complete(ctx: ServerContext, req: OssRequest) -> OssResponse:
    bucket = ctx.store.bucket(req.bucket)
    with ctx.store.lock:
        upload = _upload(bucket, req)
        if upload.tags and req.access is not None:  # completing creates an object with these tags
            req.access.require("oss:PutObjectTagging", bucket.name, upload.key)
        parts = _requested_parts(req, upload)
        data = b"".join(p.data for p in parts)
        version = ObjectVersion(
            key=upload.key,
            data=data,
            object_type="Multipart",
            content_type=upload.content_type,
            user_meta=upload.user_meta,
            system_meta=upload.system_meta,
            tags=upload.tags,
            etag=multipart_etag(p.etag for p in parts),
            crc64=crc64(data),
        )
        previous = ctx.store.put(bucket, version)
        del bucket.uploads[upload.upload_id]
        ctx.store.persistence.delete_upload(bucket.name, upload.upload_id)
    emit(ctx, req, "ObjectCreated:CompleteMultipartUpload", bucket, version, previous)
    headers = {
        "ETag": f'"{version.etag}"',
        "x-oss-hash-crc64ecma": str(version.crc64),
        **version_headers(bucket, version),
    }
    encode = req.query.get("encoding-type") == "url"
    doc = Doc("CompleteMultipartUploadResult")
    if encode:
        doc.add(None, "EncodingType", "url")
    doc.fields(
        None,
        Location=f"{req.host}/{bucket.name}/{url_encode(version.key, True)}",
        Bucket=bucket.name,
        Key=url_encode(version.key, encode),
        ETag=f'"{version.etag}"',
    )
    return OssResponse.xml(doc, headers=headers)


def abort(ctx: ServerContext, req: OssRequest) -> OssResponse:
    bucket = ctx.store.bucket(req.bucket)
    with ctx.store.lock:
        upload = _upload(bucket, req)
        del bucket.uploads[upload.upload_id]
        ctx.store.persistence.delete_upload(bucket.name, upload.upload_id)
    return OssResponse(204)


def _max(req: OssRequest, name: str, default: int) -> int:
    text = req.query.get(name, str(default))
    if not is_decimal(text) or not 1 <= int(text) <= 1000:
        raise invalid_argument(f"{name} {text!r} is not between 1 and 1000.", name, text)
    return int(text)


def list_uploads(ctx: ServerContext, req: OssRequest) -> OssResponse:
    bucket = ctx.store.bucket(req.bucket)
    prefix, delimiter = req.query.get("prefix", ""), req.query.get("delimiter", "")
    key_marker, id_marker = req.query.get("key-marker", ""), req.query.get("upload-id-marker", "")
    max_uploads = _max(req, "max-uploads", 1000)
    encode = req.query.get("encoding-type") == "url"
    with ctx.store.lock:
        uploads = sorted(bucket.uploads.values(), key=lambda u: (u.key, u.upload_id))
    doc = Doc("ListMultipartUploadsResult")
    doc.add(None, "Bucket", bucket.name)
    if encode:
        doc.add(None, "EncodingType", "url")
    doc.fields(None, KeyMarker=url_encode(key_marker, encode), UploadIdMarker=id_marker)
    entries: list[MultipartUpload] = []
    prefixes: list[str] = []
    truncated = False
    next_key, next_id = "", ""
    for upload in uploads:
        if not upload.key.startswith(prefix):
            continue
        if key_marker and (
            upload.key < key_marker
            or (upload.key == key_marker and (not id_marker or upload.upload_id <= id_marker))
        ):
            continue
        cut = upload.key.find(delimiter, len(prefix)) if delimiter else -1
        common = upload.key[: cut + len(delimiter)] if cut >= 0 else None
        if common is not None and (common <= key_marker or (prefixes and prefixes[-1] == common)):
            continue  # folded into a prefix already returned, here or on an earlier page
        if len(entries) + len(prefixes) == max_uploads:
            truncated = True
            break
        if common is not None:
            prefixes.append(common)
            next_key, next_id = common, ""
        else:
            entries.append(upload)
            next_key, next_id = upload.key, upload.upload_id
    doc.fields(
        None,
        NextKeyMarker=url_encode(next_key, encode),
        NextUploadIdMarker=next_id,
        Delimiter=url_encode(delimiter, encode),
        Prefix=url_encode(prefix, encode),
        MaxUploads=max_uploads,
        IsTruncated=truncated,
    )
    for upload in entries:
        element = doc.add(None, "Upload")
        doc.fields(
            element,
            Key=url_encode(upload.key, encode),
            UploadId=upload.upload_id,
            StorageClass="Standard",
            Initiated=iso8601(upload.initiated),
        )
    for common in prefixes:
        doc.add(doc.add(None, "CommonPrefixes"), "Prefix", url_encode(common, encode))
    return OssResponse.xml(doc)


def list_parts(ctx: ServerContext, req: OssRequest) -> OssResponse:
    bucket = ctx.store.bucket(req.bucket)
    marker_text = req.query.get("part-number-marker", "0") or "0"
    if not is_decimal(marker_text):
        raise invalid_argument(
            f"part-number-marker {marker_text!r} is not a number.", "part-number-marker", marker_text
        )
    max_parts = _max(req, "max-parts", 1000)
    encode = req.query.get("encoding-type") == "url"
    with ctx.store.lock:
        upload = _upload(bucket, req)
        parts = [upload.parts[n] for n in sorted(upload.parts) if n > int(marker_text)]
    page, truncated = parts[:max_parts], len(parts) > max_parts
    doc = Doc("ListPartsResult")
    doc.fields(
        None,
        Bucket=bucket.name,
        Key=url_encode(upload.key, encode),
        UploadId=upload.upload_id,
        PartNumberMarker=marker_text,
        NextPartNumberMarker=page[-1].number if page else marker_text,
        MaxParts=max_parts,
        IsTruncated=truncated,
        StorageClass="Standard",
    )
    if encode:
        doc.add(None, "EncodingType", "url")
    for part in page:
        element = doc.add(None, "Part")
        doc.fields(
            element,
            PartNumber=part.number,
            LastModified=iso8601(part.last_modified),
            ETag=f'"{part.etag}"',
            HashCrc64ecma=part.crc64,
            Size=len(part.data),
        )
    return OssResponse.xml(doc)
