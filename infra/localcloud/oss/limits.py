"""The limits the local OSS enforces on requests and connections, with the OSS figures they follow.

Body sizes are OSS's documented maxima per API (PutObject, AppendObject and UploadPart take up to 5 GB;
PostObject 5 GB plus its form fields); an object's user metadata (its `x-oss-meta-*` names and values) is at
most 8 KB. XML documents get a cap of the local OSS's own, far above any valid
document (see xmlin). Connection figures are the local OSS's own choice: OSS documents none."""

from __future__ import annotations

from collections.abc import Mapping

from .errors import OssError
from .xmlin import MAX_XML_BODY_BYTES

GB = 1024**3
MAX_OBJECT_BYTES = 5 * GB  # PutObject / AppendObject (the whole object) / UploadPart
MAX_POST_FORM_BYTES = 8 * 1024**2  # PostObject: the form fields before the file
DRAIN_BYTES = 1024**2  # a refused request's body up to this size is read and dropped to keep the connection

_BODY_LIMITS = {
    "PutObject": MAX_OBJECT_BYTES,
    "AppendObject": MAX_OBJECT_BYTES,
    "UploadPart": MAX_OBJECT_BYTES,
    "PostObject": MAX_OBJECT_BYTES + MAX_POST_FORM_BYTES,
}


MAX_USER_META_BYTES = 8 * 1024  # all of an object's `x-oss-meta-*` names and values (OSS: EC 0011-00000002)
# The APIs that store the request's `x-oss-meta-*` headers (CopyObject only with the REPLACE directive).
USER_META_APIS = frozenset(
    {"PutObject", "AppendObject", "InitiateMultipartUpload", "CopyObject", "PutSymlink", "PostObject"}
)


def check_user_meta(api: str, headers: Mapping[str, str]) -> None:
    """Refuse user metadata over OSS's 8 KB, before any body is read. `headers` are lower-cased, values as
    latin-1 text of the raw bytes (PostObject's form fields, as it stores them)."""
    if api not in USER_META_APIS:
        return
    if api == "CopyObject" and headers.get("x-oss-metadata-directive", "COPY").upper() != "REPLACE":
        return  # the source's metadata is copied; these headers are ignored
    size = sum(len(name) + len(value) for name, value in headers.items() if name.startswith("x-oss-meta-"))
    if size > MAX_USER_META_BYTES:
        raise OssError(
            400,
            "InvalidArgument",
            f"Your user metadata (the x-oss-meta-* headers' names and values) is {size} bytes; "
            f"at most {MAX_USER_META_BYTES} are allowed.",
            ec="0011-00000002",
        )


def body_limit(api: str) -> int:
    """The largest request body `api` accepts; every API not listed takes an XML document at most."""
    return _BODY_LIMITS.get(api, MAX_XML_BODY_BYTES)


# Connections: at most this many at once (beyond it a new connection gets 503 at once); a connection waiting
# for a request head longer than IDLE_TIMEOUT seconds (idle keep-alive, or a head trickling in) is closed,
# as is one whose single read stalls for IO_TIMEOUT seconds.
MAX_CONNECTIONS = 256
IDLE_TIMEOUT_SECONDS = 60.0
IO_TIMEOUT_SECONDS = 60.0
