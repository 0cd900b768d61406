"""A request to the local OSS as it arrived on the wire, split into bucket, key, query and headers."""

from __future__ import annotations

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


def split_target(target: str) -> tuple[str, str, dict[str, str]]:
    """Split a path-style request target into (bucket, key, query).

    The key is cut from the raw path before decoding, so a `%2F` inside a key is a slash of the key and a
    literal `+` stays a `+` (OSS decodes with plain percent-decoding, not form decoding)."""
    raw_path, _, raw_query = target.partition("?")
    if not raw_path.startswith("/"):
        raise OssError(400, "InvalidURI", "Couldn't parse the specified URI.", URI=target)
    bucket_part, slash, key_part = raw_path[1:].partition("/")
    try:
        bucket = unquote(bucket_part, errors="strict")
        key = unquote(key_part, errors="strict") if slash else ""
    except UnicodeDecodeError as exc:
        raise OssError(400, "InvalidURI", "The object key is not valid UTF-8.", URI=target) from exc
    query = dict(parse_qsl(raw_query, keep_blank_values=True))
    return bucket, key, query
