"""Alibaba Cloud's RPC request signature (signature version 1.0, HMAC-SHA1), as CloudFlow's API gateway
checks it (pure). The official SDK (alibabacloud-fnf20190315 on alibabacloud-tea-openapi) signs every
CloudFlow call this way: all parameters, query and form body together, sorted and percent-encoded, behind
the method and `%2F`; keyed with the AccessKey secret and `&`; the Signature parameter carries it in base64.

`verify` returns the credential that signed, or raises RpcError with the code and message the gateway
answers: an unknown AccessKey, a signature that does not match, a timestamp more than 15 minutes off, a
nonce used before, a security token that is missing or not the key's."""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
import time
from calendar import timegm
from collections.abc import Mapping
from urllib.parse import quote

from ..oss.auth import Credential

MAX_SKEW_SECONDS = 15 * 60


class RpcError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.status, self.code, self.message = status, code, message


def _encode(text: str) -> str:
    return quote(text, safe="~")


def string_to_sign(method: str, parameters: Mapping[str, str]) -> str:
    canonical = "&".join(f"{_encode(k)}={_encode(parameters[k])}" for k in sorted(parameters))
    return f"{method.upper()}&%2F&{_encode(canonical)}"


def sign(secret: str, method: str, parameters: Mapping[str, str]) -> str:
    digest = hmac.new(
        f"{secret}&".encode(), string_to_sign(method, parameters).encode(), hashlib.sha1
    ).digest()
    return base64.b64encode(digest).decode()


class NonceWindow:
    """Nonces seen in the last 15 minutes: a request signed again with one is a replay."""

    def __init__(self) -> None:
        self.seen: dict[str, float] = {}
        self.lock = threading.Lock()

    def use(self, nonce: str, now: float) -> bool:
        with self.lock:
            if len(self.seen) > 100_000:
                self.seen = {n: t for n, t in self.seen.items() if now - t < MAX_SKEW_SECONDS}
            if nonce in self.seen and now - self.seen[nonce] < MAX_SKEW_SECONDS:
                return False
            self.seen[nonce] = now
            return True


def verify(
    method: str,
    parameters: Mapping[str, str],
    credentials: Mapping[str, Credential],
    nonces: NonceWindow,
    now: float | None = None,
) -> Credential:
    now = time.time() if now is None else now
    signed = {k: v for k, v in parameters.items() if k != "Signature"}
    for needed in (
        "AccessKeyId",
        "Signature",
        "SignatureMethod",
        "SignatureVersion",
        "SignatureNonce",
        "Timestamp",
    ):
        if not parameters.get(needed):
            raise RpcError(
                400,
                "MissingParameter",
                f'The input parameter "{needed}" that is mandatory for processing this request '
                "is not supplied.",
            )
    if parameters["SignatureMethod"] != "HMAC-SHA1" or parameters["SignatureVersion"] != "1.0":
        raise RpcError(400, "InvalidSignatureMethod", "Specified signature method is not supported.")
    credential = credentials.get(parameters["AccessKeyId"])
    if credential is None:
        raise RpcError(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
    expected = sign(credential.access_key_secret, method, signed)
    if not hmac.compare_digest(expected, parameters["Signature"]):
        raise RpcError(
            400,
            "SignatureDoesNotMatch",
            "Specified signature is not matched with our calculation. "
            f"server string to sign is:{string_to_sign(method, signed)}",
        )
    try:
        moment = timegm(time.strptime(parameters["Timestamp"], "%Y-%m-%dT%H:%M:%SZ"))
    except ValueError:
        raise RpcError(
            400, "InvalidTimeStamp.Format", "Specified time stamp or date value is not well formatted."
        ) from None
    if abs(now - moment) > MAX_SKEW_SECONDS:
        raise RpcError(400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.")
    if credential.security_token and parameters.get("SecurityToken") != credential.security_token:
        raise RpcError(
            400,
            "InvalidSecurityToken.MismatchWithAccessKey",
            "Specified SecurityToken mismatch with the AccessKey.",
        )
    if not nonces.use(parameters["SignatureNonce"], now):
        raise RpcError(400, "SignatureNonceUsed", "Specified signature nonce was used already.")
    return credential
