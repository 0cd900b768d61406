"""The limits the local OSS enforces on requests and connections, with the OSS figures they follow.

Body sizes are OSS's documented maxima per API (PutObject, AppendObject and UploadPart take up to 5 GB;
PostObject 5 GB plus its form fields). XML documents get a cap of the local OSS's own, far above any valid
document (see xmlin). Connection figures are the local OSS's own choice: OSS documents none."""

from __future__ import annotations

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


def body_limit(api: str) -> int:
    """The largest request body `api` accepts; every API not listed takes an XML document at most."""
    return _BODY_LIMITS.get(api, MAX_XML_BODY_BYTES)


# Connections: at most this many at once (beyond it a new connection gets 503 at once); a connection waiting
# for a request head longer than IDLE_TIMEOUT seconds (idle keep-alive, or a head trickling in) is closed,
# as is one whose single read stalls for IO_TIMEOUT seconds.
MAX_CONNECTIONS = 256
IDLE_TIMEOUT_SECONDS = 60.0
IO_TIMEOUT_SECONDS = 60.0
