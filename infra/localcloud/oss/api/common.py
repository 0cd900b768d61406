"""What every API operation shares: the response type, the server's context, object headers, events."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import unquote

from cloudformats.checksums import content_md5, md5_etag
from cloudformats.oss_events import ObjectEvent

from ..auth import Credential
from ..errors import OssError, invalid_argument
from ..events import Notifier
from ..model import NULL_VERSION, Bucket, ObjectVersion
from ..request import OssRequest
from ..store import Store
from ..xmlout import Doc, http_date

MAX_KEY_BYTES = 1023
# Headers stored with an object and returned on GET/HEAD, as OSS does.
SYSTEM_HEADERS = ("cache-control", "content-disposition", "content-encoding", "content-language", "expires")


@dataclass
class OssResponse:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    @classmethod
    def xml(cls, doc: Doc, status: int = 200, headers: dict[str, str] | None = None) -> OssResponse:
        return cls(status, {"Content-Type": "application/xml", **(headers or {})}, doc.render())


@dataclass
class ServerContext:
    store: Store
    notifier: Notifier
    owner_id: str
    credentials: dict[str, Credential]


_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def header_value(name: str, value: str) -> str:
    """`value` if it can be sent as a response header; a line break in it would inject headers."""
    if _CONTROL.search(value):
        raise invalid_argument(
            f"{name} has a control character (such as a line break), which a header cannot carry.",
            name,
            value[:100].encode("unicode_escape").decode(),
        )
    return value


def check_key(key: str) -> None:
    size = len(key.encode("utf-8"))
    if not key or size > MAX_KEY_BYTES:
        raise OssError(
            400,
            "InvalidObjectName",
            f"Object names are 1 to {MAX_KEY_BYTES} bytes of UTF-8; this one is {size}.",
            ObjectName=key[:100],
        )
    if key[0] in "/\\":
        raise OssError(
            400, "InvalidObjectName", "Object names cannot start with '/' or '\\'.", ObjectName=key[:100]
        )


def reject_encryption(req: OssRequest) -> None:
    if req.header("x-oss-server-side-encryption"):
        raise invalid_argument(
            "Server-side encryption is not supported by the local OSS.",
            "x-oss-server-side-encryption",
            req.header("x-oss-server-side-encryption"),
        )


def check_content_md5(req: OssRequest, body: bytes) -> None:
    sent = req.header("content-md5")
    if sent and content_md5(md5_etag(body)) != sent:
        raise OssError(400, "InvalidDigest", "The Content-MD5 you specified was invalid.")


def content_type(req: OssRequest, key: str) -> str:
    """The type sent, else application/octet-stream: OSS guesses nothing from the key (SDKs may, before
    they send)."""
    return req.header("content-type") or "application/octet-stream"


def system_meta(req: OssRequest) -> dict[str, str]:
    return {name: req.headers[name] for name in SYSTEM_HEADERS if name in req.headers}


def version_headers(bucket: Bucket, version: ObjectVersion) -> dict[str, str]:
    """`x-oss-version-id` once the bucket has ever had versioning (OSS says `null` for null versions)."""
    return {"x-oss-version-id": version.version_id} if bucket.versioning else {}


def object_headers(bucket: Bucket, version: ObjectVersion, content: ObjectVersion) -> dict[str, str]:
    """GET/HEAD headers: metadata and tags of `version`, body facts of `content` (its symlink target)."""
    headers = {
        "Content-Type": content.content_type,
        "ETag": f'"{content.etag}"',
        "Last-Modified": http_date(version.last_modified),
        "Accept-Ranges": "bytes",
        "x-oss-object-type": version.object_type,
        "x-oss-storage-class": version.storage_class,
        "x-oss-hash-crc64ecma": str(content.crc64),
        **{name.title(): value for name, value in content.system_meta.items()},
        **version.user_meta,
        **version_headers(bucket, version),
    }
    if version.tags:
        headers["x-oss-tagging-count"] = str(len(version.tags))
    if version.object_type == "Appendable":
        headers["x-oss-next-append-position"] = str(version.size)
    return headers


def requested_version(req: OssRequest) -> str | None:
    version_id = req.query.get("versionId")
    return version_id if version_id else None


def parse_copy_source(header: str) -> tuple[str, str, str | None]:
    """`/bucket/url-encoded-key[?versionId=...]` -> (bucket, key, version id)."""
    path, _, query = header.partition("?")
    bucket, _, key = unquote(path).lstrip("/").partition("/")
    version_id = None
    if query:
        name, _, value = query.partition("=")
        if name != "versionId":
            raise invalid_argument(
                f"x-oss-copy-source has an unknown parameter {name!r}.", "x-oss-copy-source", header
            )
        version_id = unquote(value)
    if not bucket or not key:
        raise invalid_argument("x-oss-copy-source is not /bucket/key.", "x-oss-copy-source", header)
    return bucket, key, version_id


def emit(
    ctx: ServerContext,
    req: OssRequest,
    event_name: str,
    bucket: Bucket,
    version: ObjectVersion,
    previous: ObjectVersion | None = None,
    *,
    position: int | None = None,
    size: int | None = None,
    delta_size: int | None = None,
) -> None:
    created = event_name.startswith("ObjectCreated:")
    ctx.notifier.publish(
        ObjectEvent(
            event_name=event_name,
            bucket=bucket.name,
            key=version.key,
            size=version.size if size is None else size,
            delta_size=delta_size
            if delta_size is not None
            else version.size - (previous.size if previous else 0),
            etag=version.etag,
            request_id=req.request_id,
            source_ip=req.client_ip,
            version_id=version.version_id
            if bucket.versioning and version.version_id != NULL_VERSION
            else None,
            position=position,
            mime_type=version.content_type if created else None,
            user_meta={
                k: v.encode("latin-1").decode("utf-8", "replace") for k, v in version.user_meta.items()
            }
            if created
            else None,
        )
    )
