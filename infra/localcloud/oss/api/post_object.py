"""PostObject: browser form uploads (`POST /` on the bucket, multipart/form-data).

The request authenticates itself in its form: `policy` (base64 JSON with an expiration and conditions)
signed with V1, `Signature = base64(hmac-sha1(secret, policy))`, plus `x-oss-security-token` for STS."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import io
import json
import time
from datetime import datetime
from typing import Any

import multipart

from cloudformats.checksums import crc64, md5_etag

from .. import auth
from ..authorization import access_for
from ..errors import OssError
from ..limits import check_user_meta
from ..model import ObjectVersion
from ..request import OssRequest
from .common import (
    SYSTEM_HEADERS,
    OssResponse,
    ServerContext,
    check_key,
    emit,
    header_value,
    version_headers,
)

MAX_POST_BYTES = 5 * 1024**3


def _malformed(message: str) -> OssError:
    return OssError(400, "MalformedPOSTRequest", message)


def _form(req: OssRequest) -> tuple[dict[str, str], bytes, str, str]:
    """Text fields (lower-cased names), and the file part's bytes, Content-Type and file name."""
    _, params = multipart.parse_options_header(req.header("content-type"))
    if "boundary" not in params:
        raise _malformed("The body of your POST request is not well-formed multipart/form-data.")
    fields: dict[str, str] = {}
    try:
        for part in multipart.MultipartParser(io.BytesIO(req.body), params["boundary"]):
            if part.name.lower() == "file":
                return fields, part.raw, part.content_type or "", part.filename or ""
            fields[part.name.lower()] = part.value
    except multipart.MultipartError as exc:
        raise _malformed(
            f"The body of your POST request is not well-formed multipart/form-data: {exc}"
        ) from exc
    raise OssError(400, "InvalidArgument", "The form has no `file` field (it must be the last field).")


def _policy_denied(condition: object) -> OssError:
    return OssError(403, "AccessDenied", f"Invalid according to Policy: Policy Condition failed: {condition}")


def _check_policy(policy: dict[str, Any], fields: dict[str, str], bucket: str, size: int) -> None:
    expiration = policy.get("expiration", "")
    try:
        expires = datetime.fromisoformat(expiration.replace("Z", "+00:00")).timestamp()
    except (AttributeError, ValueError) as exc:
        raise OssError(400, "InvalidPolicyDocument", f"expiration {expiration!r} is not ISO 8601.") from exc
    if expires < time.time():
        raise OssError(403, "AccessDenied", "Invalid according to Policy: Policy expired.")
    values = {**fields, "bucket": bucket}
    for condition in policy.get("conditions", []):
        if isinstance(condition, dict):
            for name, expected in condition.items():
                if values.get(name.lower()) != expected:
                    raise _policy_denied(condition)
        elif isinstance(condition, list) and len(condition) == 3:
            operator, name, expected = condition
            if operator == "content-length-range":
                if not int(name) <= size <= int(expected):
                    raise _policy_denied(condition)
                continue
            actual = values.get(str(name).lstrip("$").lower(), "")
            if (operator == "eq" and actual != expected) or (
                operator == "starts-with" and not actual.startswith(str(expected))
            ):
                raise _policy_denied(condition)
        else:
            raise OssError(400, "InvalidPolicyDocument", f"Unknown policy condition {condition!r}.")


def _authenticate(
    ctx_credentials: dict[str, auth.Credential], fields: dict[str, str]
) -> tuple[dict[str, Any], auth.Credential]:
    encoded = fields.get("policy", "")
    if not encoded or "ossaccesskeyid" not in fields or "signature" not in fields:
        raise OssError(403, "AccessDenied", "The form needs OSSAccessKeyId, policy and Signature fields.")
    credential = ctx_credentials.get(fields["ossaccesskeyid"])
    if credential is None:
        raise OssError(
            403, "InvalidAccessKeyId", "The OSS Access Key Id you provided does not exist in our records."
        )
    token = fields.get("x-oss-security-token")
    if (credential.security_token or None) != (token or None):
        raise OssError(403, "InvalidSecurityToken", "The security token does not match the access key.")
    expected = base64.b64encode(
        hmac.new(credential.access_key_secret.encode(), encoded.encode(), hashlib.sha1).digest()
    ).decode()
    if not hmac.compare_digest(expected, fields["signature"]):
        raise OssError(
            403,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.",
            StringToSign=encoded,
        )
    try:
        policy = json.loads(base64.b64decode(encoded, validate=True))
    except (binascii.Error, ValueError) as exc:
        raise OssError(400, "InvalidPolicyDocument", "policy is not base64 of a JSON document.") from exc
    if not isinstance(policy, dict):
        raise OssError(400, "InvalidPolicyDocument", "policy is not a JSON object.")
    return policy, credential


def post_object(ctx: ServerContext, req: OssRequest) -> OssResponse:
    bucket = ctx.store.bucket(req.bucket)
    fields, data, file_type, filename = _form(req)
    policy, credential = _authenticate(ctx.credentials, fields)
    key = fields.get("key", "").replace("${filename}", filename)
    check_key(key)
    access = access_for(req, credential, region=ctx.store.region, account_id=ctx.owner_id)
    if access is not None:
        access.require("oss:PutObject", bucket.name, key)
    if len(data) > MAX_POST_BYTES:
        raise OssError(400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size.")
    _check_policy(policy, fields, bucket.name, len(data))
    user_meta = {
        k: header_value(k, v).encode("utf-8").decode("latin-1")
        for k, v in fields.items()
        if k.startswith("x-oss-meta-")
    }
    check_user_meta("PostObject", user_meta)
    version = ObjectVersion(
        key=key,
        data=data,
        content_type=header_value("content-type", fields.get("content-type") or file_type)
        or "application/octet-stream",
        user_meta=user_meta,
        system_meta={name: header_value(name, fields[name]) for name in SYSTEM_HEADERS if name in fields},
        etag=md5_etag(data),
        crc64=crc64(data),
    )
    previous = ctx.store.put(bucket, version)
    emit(ctx, req, "ObjectCreated:PostObject", bucket, version, previous)
    requested_status = fields.get("success_action_status", "")
    status = int(requested_status) if requested_status in ("200", "201", "204") else 204
    return OssResponse(
        status,
        {
            "ETag": f'"{version.etag}"',
            "x-oss-hash-crc64ecma": str(version.crc64),
            **version_headers(bucket, version),
        },
    )
