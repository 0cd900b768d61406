"""A request to the local OSS as it arrived on the wire, split into bucket, key, query and headers; the bucket
is named by the path (path-style) or by the Host header (virtual-hosted, as OSS itself is addressed)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote

from .access import Access
from .errors import OssError


@dataclass
class OssRequest:
    method: str
    bucket: str  # "" for service-level requests
    key: str  # "" for bucket-level requests; the raw (decoded) object key otherwise
    query: dict[str, str]  # decoded; a flag parameter such as `?tagging` maps to ""
    headers: dict[str, str]  # lower-cased names; values as received (latin-1 text = the raw bytes)
    body: bytes = b""
    host: str = ""
    client_ip: str = "127.0.0.1"
    request_id: str = ""
    api: str = field(default="")  # the OSS API name, set by routing
    access: Access | None = None  # what a role's credentials may do; None: the account's AccessKey

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name, default)

    @property
    def user_meta(self) -> dict[str, str]:
        return {k: v for k, v in self.headers.items() if k.startswith("x-oss-meta-")}


# `<bucket>.oss-<region>[-internal].aliyuncs.com[:port]`: the Host of a virtual-hosted request. SDKs given an
# IP endpoint (ali-oss) send it so, with the path holding the key only.
_BUCKET_HOST = re.compile(
    r"(?P<bucket>[a-z0-9][a-z0-9-]*)\.oss-(?P<region>[a-z0-9-]+?)(?:-internal)?\.aliyuncs\.com(?::\d+)?",
    re.IGNORECASE,
)


def host_bucket(host: str, region: str) -> str:
    """The bucket a virtual-hosted request's Host names, "" when the Host names none (path-style). A bucket
    addressed through another region's endpoint is refused, as OSS refuses it."""
    match = _BUCKET_HOST.fullmatch(host.strip())
    if match is None:
        return ""
    if match["region"].lower() != region:
        raise OssError(
            403,
            "AccessDenied",
            "The bucket you are attempting to access must be addressed using the specified endpoint. "
            "Please send all future requests to this endpoint.",
            Endpoint=f"oss-{region}.aliyuncs.com",
        )
    return match["bucket"].lower()


def split_target(target: str, bucket: str = "") -> tuple[str, str, dict[str, str]]:
    """Split a request target into (bucket, key, query): path-style, or, given the `bucket` the Host names,
    virtual-hosted (the whole path is the key).

    The key is cut from the raw path before decoding, so a `%2F` inside a key is a slash of the key and a
    literal `+` stays a `+` (OSS decodes with plain percent-decoding, not form decoding)."""
    raw_path, _, raw_query = target.partition("?")
    if not raw_path.startswith("/"):
        raise OssError(400, "InvalidURI", "Couldn't parse the specified URI.", URI=target)
    if bucket:
        bucket_part, slash, key_part = bucket, "/", raw_path[1:]
    else:
        bucket_part, slash, key_part = raw_path[1:].partition("/")
    try:
        bucket = unquote(bucket_part, errors="strict")
        key = unquote(key_part, errors="strict") if slash else ""
    except UnicodeDecodeError as exc:
        raise OssError(400, "InvalidURI", "The object key is not valid UTF-8.", URI=target) from exc
    query = dict(parse_qsl(raw_query, keep_blank_values=True))
    return bucket, key, query
