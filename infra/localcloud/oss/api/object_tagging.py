"""PutObjectTagging, GetObjectTagging, DeleteObjectTagging. Tag changes are in place: they never change
Last-Modified and never publish an event (as in OSS)."""

from __future__ import annotations

from .. import tagging
from ..request import OssRequest
from ..xmlout import Doc
from .common import OssResponse, ServerContext, requested_version, version_headers


def put_object_tagging(ctx: ServerContext, req: OssRequest) -> OssResponse:
    bucket = ctx.store.bucket(req.bucket)
    tags = tagging.parse_xml(req.body)
    with ctx.store.lock:
        version = ctx.store.version(bucket, req.key, requested_version(req))
        version.tags = tags
        ctx.store.touch(bucket, req.key)
    return OssResponse(headers=version_headers(bucket, version))


def get_object_tagging(ctx: ServerContext, req: OssRequest) -> OssResponse:
    bucket = ctx.store.bucket(req.bucket)
    with ctx.store.lock:
        version = ctx.store.version(bucket, req.key, requested_version(req))
        tags = dict(version.tags)
    doc = Doc("Tagging")
    tag_set = doc.add(None, "TagSet")
    for key, value in tags.items():
        tag = doc.add(tag_set, "Tag")
        doc.fields(tag, Key=key, Value=value)
    return OssResponse.xml(doc, headers=version_headers(bucket, version))


def delete_object_tagging(ctx: ServerContext, req: OssRequest) -> OssResponse:
    bucket = ctx.store.bucket(req.bucket)
    with ctx.store.lock:
        version = ctx.store.version(bucket, req.key, requested_version(req))
        if version.tags:
            version.tags = {}
            ctx.store.touch(bucket, req.key)
    return OssResponse(204, version_headers(bucket, version))
