"""Request authentication exactly as OSS does it: V1 (`OSS ak:sig`) and V4 (`OSS4-HMAC-SHA256`) in headers
or presigned URLs, STS security tokens, and the 15-minute clock-skew window.

Signatures are recomputed from what arrived on the wire only. Header values are latin-1 text holding the
raw bytes, so they are signed as those bytes (UTF-8 user metadata signs as sent)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from urllib.parse import quote

from ..ram import Role
from .errors import OssError, is_decimal
from .request import OssRequest

MAX_CLOCK_SKEW_SECONDS = 15 * 60
MAX_V4_PRESIGN_SECONDS = 7 * 24 * 3600  # OSS refuses V4 presigned URLs valid longer (EC 0002-00000232)

# Query parameters that V1 signs (oss2's ProviderAuth._subresource_key_set, which mirrors the service).
V1_SUBRESOURCES = frozenset(
    [
        "response-content-type",
        "response-content-language",
        "response-cache-control",
        "logging",
        "response-content-encoding",
        "acl",
        "uploadId",
        "uploads",
        "partNumber",
        "group",
        "link",
        "delete",
        "website",
        "location",
        "objectInfo",
        "objectMeta",
        "response-expires",
        "response-content-disposition",
        "cors",
        "lifecycle",
        "restore",
        "qos",
        "referer",
        "stat",
        "bucketInfo",
        "append",
        "position",
        "security-token",
        "live",
        "comp",
        "status",
        "vod",
        "startTime",
        "endTime",
        "x-oss-process",
        "symlink",
        "callback",
        "callback-var",
        "tagging",
        "encryption",
        "versions",
        "versioning",
        "versionId",
        "policy",
        "requestPayment",
        "x-oss-traffic-limit",
        "qosInfo",
        "asyncFetch",
        "x-oss-request-payer",
        "sequential",
        "inventory",
        "inventoryId",
        "continuation-token",
        "worm",
        "wormId",
        "wormExtend",
        "replication",
        "replicationLocation",
        "replicationProgress",
        "transferAcceleration",
        "cname",
        "metaQuery",
        "x-oss-ac-source-ip",
        "x-oss-ac-subnet-mask",
        "x-oss-ac-vpc-id",
        "x-oss-ac-forward-allow",
        "resourceGroup",
        "style",
        "styleName",
        "x-oss-async-process",
        "regionList",
        "x-oss-write-get-object-response",
        "bucketArchiveDirectRead",
        "httpsConfig",
        "redundancyTransition",
        "x-oss-target-redundancy-type",
        "x-oss-redundancy-transition-taskid",
        "accessPoint",
        "accessPointPolicy",
        "publicAccessBlock",
        "x-oss-access-point-name",
        "requesterQosInfo",
        "qosRequester",
        "resourcePoolInfo",
        "resourcePool",
        "resourcePoolBuckets",
    ]
)
V4_DEFAULT_SIGNED = ("content-type", "content-md5")


@dataclass(frozen=True)
class Credential:
    access_key_id: str
    access_key_secret: str
    security_token: str | None = None  # set for STS credentials: requests must carry the same token
    role: Role | None = None  # STS credentials of a RAM role: its policies decide; None: the account's own

    @classmethod
    def parse(cls, spec: str) -> Credential:
        """`AK:SK` or `AK:SK:STS_TOKEN` (the token may itself contain colons)."""
        parts = spec.split(":", 2)
        if len(parts) < 2 or not parts[0] or not parts[1]:
            raise ValueError(f"credential {spec!r} is not AK:SK or AK:SK:STS_TOKEN")
        return cls(parts[0], parts[1], parts[2] if len(parts) == 3 and parts[2] else None)


DEFAULT_CREDENTIALS = (
    Credential("local-access-key", "local-secret-key"),
    Credential("STS.local-sts-key", "local-sts-secret", "local-sts-token"),
)


def _access_denied(message: str) -> OssError:
    return OssError(403, "AccessDenied", message)


def _lookup(credentials: dict[str, Credential], access_key_id: str) -> Credential:
    credential = credentials.get(access_key_id)
    if credential is None:
        raise OssError(
            403,
            "InvalidAccessKeyId",
            "The OSS Access Key Id you provided does not exist in our records.",
            OSSAccessKeyId=access_key_id,
        )
    return credential


def _check_token(credential: Credential, presented: str | None) -> None:
    if credential.security_token is None and presented:
        raise OssError(
            403,
            "InvalidAccessKeyId",
            "A security token was sent with a long-term access key.",
            OSSAccessKeyId=credential.access_key_id,
        )
    if credential.security_token is not None and not hmac.compare_digest(
        (presented or "").encode(), credential.security_token.encode()
    ):
        what = "is missing" if not presented else "does not match the access key"
        raise OssError(
            403,
            "InvalidSecurityToken",
            f"The security token {what}.",
            OSSAccessKeyId=credential.access_key_id,
        )


def _check_skew(request_time: datetime, now: float) -> None:
    if abs(request_time.timestamp() - now) > MAX_CLOCK_SKEW_SECONDS:
        raise OssError(
            403,
            "RequestTimeTooSkewed",
            "The difference between the request time and the current time is too large.",
            RequestTime=request_time.strftime("%Y-%m-%dT%H:%M:%SZ"),
            ServerTime=datetime.fromtimestamp(now, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        )


def _raw(value: str) -> bytes:
    return value.encode("latin-1", errors="replace")


def _signature_mismatch(string_to_sign: bytes, access_key_id: str) -> OssError:
    return OssError(
        403,
        "SignatureDoesNotMatch",
        "The request signature we calculated does not match the signature you provided. "
        "Check your key and signing method.",
        OSSAccessKeyId=access_key_id,
        StringToSign=string_to_sign.decode("utf-8", errors="replace"),
    )


# ---- V1 -----------------------------------------------------------------------------------------------


def v1_canonical_resource(req: OssRequest) -> str:
    resource = f"/{req.bucket}/{req.key}" if req.bucket else "/"
    subresources = sorted((k, v) for k, v in req.query.items() if k in V1_SUBRESOURCES)
    if subresources:
        resource += "?" + "&".join(f"{k}={v}" if v else k for k, v in subresources)
    return resource


def v1_string_to_sign(req: OssRequest, date: str) -> bytes:
    oss_headers = sorted((k, v) for k, v in req.headers.items() if k.startswith("x-oss-"))
    return b"".join(
        [
            req.method.encode(),
            b"\n",
            _raw(req.header("content-md5")),
            b"\n",
            _raw(req.header("content-type")),
            b"\n",
            _raw(date),
            b"\n",
            *(k.encode() + b":" + _raw(v) + b"\n" for k, v in oss_headers),
            v1_canonical_resource(req).encode("utf-8"),
        ]
    )


def _v1_sign(secret: str, string_to_sign: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), string_to_sign, hashlib.sha1).digest()).decode()


def _verify_v1_header(req: OssRequest, credentials: dict[str, Credential], now: float) -> Credential:
    access_key_id, _, signature = req.header("authorization")[4:].strip().rpartition(":")
    credential = _lookup(credentials, access_key_id)
    date = req.header("x-oss-date") or req.header("date")
    try:
        request_time = parsedate_to_datetime(date)
    except (TypeError, ValueError) as exc:
        raise _access_denied(f"The Date header {date!r} is missing or not an RFC 1123 date.") from exc
    _check_skew(request_time, now)
    _check_token(credential, req.header("x-oss-security-token") or None)
    string_to_sign = v1_string_to_sign(req, date)
    if not hmac.compare_digest(_v1_sign(credential.access_key_secret, string_to_sign), signature):
        raise _signature_mismatch(string_to_sign, access_key_id)
    return credential


def _verify_v1_presigned(req: OssRequest, credentials: dict[str, Credential], now: float) -> Credential:
    credential = _lookup(credentials, req.query["OSSAccessKeyId"])
    expires = req.query.get("Expires", "")
    if not is_decimal(expires):
        raise _access_denied(f"Expires {expires!r} is not a number of seconds since the epoch.")
    if int(expires) < now:
        raise _access_denied("Request has expired.")
    _check_token(credential, req.query.get("security-token") or req.header("x-oss-security-token") or None)
    string_to_sign = v1_string_to_sign(req, expires)
    if not hmac.compare_digest(
        _v1_sign(credential.access_key_secret, string_to_sign), req.query.get("Signature", "")
    ):
        raise _signature_mismatch(string_to_sign, credential.access_key_id)
    return credential


# ---- V4 -----------------------------------------------------------------------------------------------


def _v4_encode(value: str, keep_slash: bool) -> str:
    return quote(value, safe="/~" if keep_slash else "~")


def v4_canonical_request(req: OssRequest, additional_headers: list[str], exclude: str = "") -> bytes:
    uri = _v4_encode(f"/{req.bucket}/{req.key}" if req.bucket else "/", keep_slash=True)
    params = sorted(
        (_v4_encode(k, False), _v4_encode(v, False)) for k, v in req.query.items() if k != exclude
    )
    query = "&".join(f"{k}={v}" if v else k for k, v in params)
    signed = sorted(
        (k, v)
        for k, v in req.headers.items()
        if k.startswith("x-oss-") or k in V4_DEFAULT_SIGNED or k in additional_headers
    )
    return b"\n".join(
        [
            req.method.encode(),
            uri.encode(),
            query.encode(),
            b"".join(k.encode() + b":" + _raw(v) + b"\n" for k, v in signed),
            ";".join(additional_headers).encode(),
            _raw(req.header("x-oss-content-sha256", "UNSIGNED-PAYLOAD")),
        ]
    )


def _v4_signature(
    secret: str, scope: list[str], date_time: str, canonical_request: bytes
) -> tuple[str, bytes]:
    day, region, product, terminator = scope
    string_to_sign = "\n".join(
        [
            "OSS4-HMAC-SHA256",
            date_time,
            "/".join(scope),
            hashlib.sha256(canonical_request).hexdigest(),
        ]
    ).encode()
    key = ("aliyun_v4" + secret).encode()
    for part in (day, region, product, terminator):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, string_to_sign, hashlib.sha256).hexdigest(), string_to_sign


def _parse_v4_time(value: str) -> datetime:
    try:
        return datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    except ValueError as exc:
        raise _access_denied(f"x-oss-date {value!r} is not yyyymmddTHHMMSSZ.") from exc


def _split_v4_credential(
    value: str,
    credentials: dict[str, Credential],
    region: str,
) -> tuple[Credential, list[str]]:
    parts = value.split("/")
    if len(parts) != 5 or parts[3] != "oss" or parts[4] != "aliyun_v4_request":
        raise OssError(
            400,
            "InvalidArgument",
            f"Credential {value!r} is not <AccessKeyId>/<yyyymmdd>/<region>/oss/aliyun_v4_request.",
        )
    if parts[2] != region:
        raise OssError(
            400,
            "InvalidArgument",
            "The signing region in credential is invalid.",
            ArgumentName="x-oss-credential",
            ArgumentValue=value,
        )
    return _lookup(credentials, parts[0]), parts[1:]


def _verify_v4_header(
    req: OssRequest,
    credentials: dict[str, Credential],
    now: float,
    region: str,
) -> Credential:
    fields: dict[str, str] = {}
    for part in req.header("authorization")[len("OSS4-HMAC-SHA256") :].split(","):
        name, _, value = part.strip().partition("=")
        fields[name] = value
    credential, scope = _split_v4_credential(fields.get("Credential", ""), credentials, region)
    date_time = req.header("x-oss-date")
    _check_skew(_parse_v4_time(date_time), now)
    if not date_time.startswith(scope[0]):
        raise _access_denied("The Credential date does not match x-oss-date.")
    _check_token(credential, req.header("x-oss-security-token") or None)
    additional = sorted(h for h in fields.get("AdditionalHeaders", "").lower().split(";") if h)
    canonical = v4_canonical_request(req, additional)
    expected, string_to_sign = _v4_signature(credential.access_key_secret, scope, date_time, canonical)
    if not hmac.compare_digest(expected, fields.get("Signature", "")):
        raise _signature_mismatch(string_to_sign, credential.access_key_id)
    return credential


def _verify_v4_presigned(
    req: OssRequest,
    credentials: dict[str, Credential],
    now: float,
    region: str,
) -> Credential:
    credential, scope = _split_v4_credential(req.query.get("x-oss-credential", ""), credentials, region)
    date_time = req.query.get("x-oss-date", "")
    expires = req.query.get("x-oss-expires", "")
    if not is_decimal(expires):
        raise _access_denied(f"x-oss-expires {expires!r} is not a number of seconds.")
    if not 1 <= int(expires) <= MAX_V4_PRESIGN_SECONDS:
        raise OssError(
            400,
            "InvalidArgument",
            f"x-oss-expires {expires} is outside 1 to {MAX_V4_PRESIGN_SECONDS} seconds (7 days).",
            ec="0002-00000232",
            ArgumentName="x-oss-expires",
            ArgumentValue=expires,
        )
    if _parse_v4_time(date_time).timestamp() + int(expires) < now:
        raise _access_denied("Request has expired.")
    _check_token(credential, req.query.get("x-oss-security-token") or None)
    additional = sorted(h for h in req.query.get("x-oss-additional-headers", "").lower().split(";") if h)
    canonical = v4_canonical_request(req, additional, exclude="x-oss-signature")
    expected, string_to_sign = _v4_signature(credential.access_key_secret, scope, date_time, canonical)
    if not hmac.compare_digest(expected, req.query.get("x-oss-signature", "")):
        raise _signature_mismatch(string_to_sign, credential.access_key_id)
    return credential


def authenticate(
    req: OssRequest, credentials: dict[str, Credential], *, region: str, now: float | None = None
) -> Credential:
    """The credential that signed `req` for this `region`, or the OssError OSS would answer with."""
    now = time.time() if now is None else now
    authorization = req.header("authorization")
    if authorization.startswith("OSS4-HMAC-SHA256 "):
        return _verify_v4_header(req, credentials, now, region)
    if authorization.startswith("OSS "):
        return _verify_v1_header(req, credentials, now)
    if authorization:
        raise OssError(
            400, "InvalidArgument", "Authorization header is not `OSS ...` or `OSS4-HMAC-SHA256 ...`."
        )
    if req.query.get("x-oss-signature-version") == "OSS4-HMAC-SHA256":
        return _verify_v4_presigned(req, credentials, now, region)
    if "OSSAccessKeyId" in req.query:
        return _verify_v1_presigned(req, credentials, now)
    raise _access_denied("Anonymous access is forbidden for this operation.")
