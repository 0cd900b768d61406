"""RAM authorisation of OSS requests made with a role's credentials, as OSS does it: each API is checked
against the RAM action(s) OSS documents for it (docs/least-privilege.md has the table and its sources), on
the bucket or object resource `acs:oss:<region>:<account-id>:<bucket>[/<key>]`.

The server checks what the request alone determines (`authorize`); an operation checks the rest where it
learns it (`Access.require`, in access.py): the target of a symlink it follows, the tags a copy carries
over, the keys of a batch delete. Requests signed with the account's own AccessKey (no role) are allowed
everything, as an account owner's are. A denial answers as OSS does: 403 `AccessDenied` with the EC of an
explicit or an implicit deny and an `AccessDeniedDetail` naming the action."""

from __future__ import annotations

import time

from .access import Access, Level
from .api.common import parse_copy_source
from .auth import Credential
from .errors import OssError
from .request import OssRequest

# API -> (the action it always needs, the level of its resource, the action a `versionId` adds).
ACTIONS: dict[str, tuple[str, Level, str]] = {
    "ListBuckets": ("oss:ListBuckets", "service", ""),
    "DescribeRegions": ("oss:DescribeRegions", "service", ""),
    "PutBucket": ("oss:PutBucket", "bucket", ""),
    "DeleteBucket": ("oss:DeleteBucket", "bucket", ""),
    "GetBucketInfo": ("oss:GetBucketInfo", "bucket", ""),
    "GetBucketLocation": ("oss:GetBucketLocation", "bucket", ""),
    "PutBucketVersioning": ("oss:PutBucketVersioning", "bucket", ""),
    "GetBucketVersioning": ("oss:GetBucketVersioning", "bucket", ""),
    "PutBucketAcl": ("oss:PutBucketAcl", "bucket", ""),
    "GetBucketAcl": ("oss:GetBucketAcl", "bucket", ""),
    "ListObjects": ("oss:ListObjects", "bucket", ""),
    "ListObjectsV2": ("oss:ListObjects", "bucket", ""),
    "ListObjectVersions": ("oss:ListObjectVersions", "bucket", ""),
    "ListMultipartUploads": ("oss:ListMultipartUploads", "bucket", ""),
    "ListLiveChannel": ("oss:ListLiveChannel", "bucket", ""),
    "PutBucketInventory": ("oss:PutBucketInventory", "bucket", ""),
    "GetBucketInventory": ("oss:GetBucketInventory", "bucket", ""),
    "ListBucketInventory": ("oss:GetBucketInventory", "bucket", ""),
    "DeleteBucketInventory": ("oss:DeleteBucketInventory", "bucket", ""),
    # DeleteMultipleObjects: oss:DeleteObject on every key, checked by the operation (see module doc).
    "DeleteMultipleObjects": ("", "bucket", ""),
    "PostObject": ("oss:PutObject", "object", ""),
    "PutObject": ("oss:PutObject", "object", ""),
    "AppendObject": ("oss:PutObject", "object", ""),
    "PutSymlink": ("oss:PutObject", "object", ""),
    "InitiateMultipartUpload": ("oss:PutObject", "object", ""),
    "UploadPart": ("oss:PutObject", "object", ""),
    "UploadPartCopy": ("oss:PutObject", "object", ""),
    "CompleteMultipartUpload": ("oss:PutObject", "object", ""),
    "CopyObject": ("oss:PutObject", "object", ""),
    "GetObject": ("oss:GetObject", "object", "oss:GetObjectVersion"),
    "HeadObject": ("oss:GetObject", "object", "oss:GetObjectVersion"),
    "GetObjectMeta": ("oss:GetObject", "object", "oss:GetObjectVersion"),
    "GetSymlink": ("oss:GetObject", "object", "oss:GetObjectVersion"),
    "DeleteObject": ("oss:DeleteObject", "object", "oss:DeleteObjectVersion"),
    "PutObjectAcl": ("oss:PutObjectAcl", "object", "oss:PutObjectVersionAcl"),
    "GetObjectAcl": ("oss:GetObjectAcl", "object", "oss:GetObjectVersionAcl"),
    "PutObjectTagging": ("oss:PutObjectTagging", "object", "oss:PutObjectVersionTagging"),
    "GetObjectTagging": ("oss:GetObjectTagging", "object", "oss:GetObjectVersionTagging"),
    "DeleteObjectTagging": ("oss:DeleteObjectTagging", "object", "oss:DeleteObjectVersionTagging"),
    "AbortMultipartUpload": ("oss:AbortMultipartUpload", "object", ""),
    "ListParts": ("oss:ListParts", "object", ""),
}
# Uploads that set tags with `x-oss-tagging` also need oss:PutObjectTagging on the new object.
TAGGING_UPLOADS = frozenset(
    {"PutObject", "PostObject", "AppendObject", "PutSymlink", "InitiateMultipartUpload", "CopyObject"}
)


def access_for(
    req: OssRequest, credential: Credential, *, region: str, account_id: str, now: float | None = None
) -> Access | None:
    """What the credential that signed `req` may do: None for the account's own AccessKey (everything)."""
    if credential.role is None:
        return None
    return Access(credential.role, region, account_id, _context(req, credential, now))


def authorize(req: OssRequest) -> None:
    """Check what `req` needs before it runs (`req.access` is set); the operation checks the rest."""
    access = req.access
    if access is None:
        return
    entry = ACTIONS.get(req.api)
    if entry is None:  # fail closed: an API without a known action is never allowed to a role
        raise OssError(403, "AccessDenied", f"The local cloud knows no RAM action for {req.api}.")
    action, level, version_action = entry
    key = req.key if level == "object" else None
    bucket = req.bucket if level != "service" else ""
    if action:
        access.require(action, bucket, key)
    if version_action and req.query.get("versionId"):
        access.require(version_action, bucket, key)
    replaces_tags = req.api != "CopyObject" or req.header("x-oss-tagging-directive").upper() == "REPLACE"
    if req.api in TAGGING_UPLOADS and req.header("x-oss-tagging") and replaces_tags:
        access.require("oss:PutObjectTagging", bucket, key)
    if req.api in ("CopyObject", "UploadPartCopy"):
        source_bucket, source_key, source_version = parse_copy_source(req.header("x-oss-copy-source"))
        access.require("oss:GetObject", source_bucket, source_key)
        if source_version:
            access.require("oss:GetObjectVersion", source_bucket, source_key)


def _context(req: OssRequest, credential: Credential, now: float | None) -> dict[str, str]:
    moment = time.time() if now is None else now
    context = {
        "acs:accessid": credential.access_key_id,
        "acs:sourceip": req.client_ip,
        "acs:securetransport": "false",  # the local cloud serves plain HTTP
        "acs:currenttime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(moment)),
        "acs:useragent": req.header("user-agent"),
    }
    if req.api in ("ListObjects", "ListObjectsV2", "ListObjectVersions"):
        # A listing without a prefix is judged as the empty prefix, as OSS's own examples grant it.
        context["oss:prefix"] = req.query.get("prefix", "")
        if "delimiter" in req.query:
            context["oss:delimiter"] = req.query["delimiter"]
    return context
