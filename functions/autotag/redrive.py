"""Re-driving a batch's failing elements, each as an asynchronous invocation of its own.

EventBridge redelivers a failed push whole and, once its retries are used, dead-letters it whole: one
element OSS keeps refusing would hold back its whole batch on every retry and replay. Neither EventBridge
nor FC takes a per-element result, and a function is not told which attempt it is on
(docs/tag-on-upload.md, with sources). So a batch whose elements failed is not failed: each failing
element goes, alone (a one-element batch, its CloudEvent as delivered), to an asynchronous invocation of
this same function, and the push succeeds. FC retries each of those invocations (MaxAsyncRetryAttempts)
and then sends it to the function's on-failure destination: only failing elements reach the dead-letter
queue, each a letter `autotag replay` re-drives on its own.

`alone` is pure; `Redriver` does the invoking, through FC's API (version 2016-08-15, FC's signature) with
`requests`, which oss2 brings: the upload path imports no aliyun-fc2."""

from __future__ import annotations

import base64
import email.utils
import hashlib
import hmac
import json
import os
from typing import Any
from urllib.parse import quote

from .settings import ConfigurationError, Credentials

API_VERSION = "2016-08-15"
MAX_ASYNC_PAYLOAD = 128 * 1024  # FC's limit for an asynchronous invocation's payload
TIMEOUTS = (3.0, 10.0)  # connect, read (seconds)


class RedriveError(RuntimeError):
    """FC did not take an element's invocation; the message names the call, never credentials."""


def alone(document: list[Any], element: int) -> bytes:
    """A batch element as a delivery of its own: a batch of one, so it is read exactly as it was."""
    return json.dumps([document[element]], ensure_ascii=False).encode()


def string_to_sign(method: str, path: str, headers: dict[str, str]) -> str:
    """What FC's signature covers: method, Content-MD5, Content-Type, Date, the x-fc-* headers, the path."""
    fc_headers = sorted((k.lower(), v) for k, v in headers.items() if k.lower().startswith("x-fc-"))
    canonical = "".join(f"{k}:{v}\n" for k, v in fc_headers)
    lines = [method, headers.get("content-md5", ""), headers.get("content-type", ""), headers["date"]]
    return "\n".join([*lines, canonical + path])


class _FcClient:
    def __init__(self, endpoint: str, credentials: Credentials) -> None:
        self.endpoint, self.credentials = endpoint.rstrip("/"), credentials

    def invoke_function(self, service: str, function: str, payload: bytes) -> str:
        """An asynchronous invocation (`x-fc-invocation-type: Async`); FC's request id."""
        import requests

        path = f"/{API_VERSION}/services/{quote(service)}/functions/{quote(function)}/invocations"
        headers = {
            "content-type": "application/octet-stream",
            "date": email.utils.formatdate(usegmt=True),
            "x-fc-invocation-type": "Async",
        }
        if self.credentials.security_token:
            headers["x-fc-security-token"] = self.credentials.security_token
        signature = hmac.new(
            self.credentials.access_key_secret.encode(),
            string_to_sign("POST", path, headers).encode(),
            hashlib.sha256,
        ).digest()
        headers["authorization"] = (
            f"FC {self.credentials.access_key_id}:{base64.b64encode(signature).decode()}"
        )
        what = f"the asynchronous invocation of {service}/{function}"
        try:
            answer = requests.post(self.endpoint + path, data=payload, headers=headers, timeout=TIMEOUTS)
        except requests.RequestException as error:
            raise RedriveError(f"{what} could not reach FC: {type(error).__name__}") from None
        if answer.status_code != 202:
            try:
                code = str(answer.json().get("ErrorCode", ""))
            except ValueError:
                code = ""
            request_id = answer.headers.get("x-fc-request-id", "none")
            raise RedriveError(
                f"FC refused {what}: {code or 'error'} (HTTP {answer.status_code}, request id {request_id})"
            )
        return str(answer.headers.get("x-fc-request-id", ""))


class Redriver:
    """Sends elements to AUTOTAG_REDRIVE_FUNCTION (`service/function`: this one) at AUTOTAG_FC_ENDPOINT
    (empty: the region's internal endpoint)."""

    def __init__(self, context: Any, credentials: Credentials) -> None:
        target = os.environ.get("AUTOTAG_REDRIVE_FUNCTION") or ""
        service, _, function = target.partition("/")
        if not service or not function:
            raise ConfigurationError(
                f"AUTOTAG_REDRIVE_FUNCTION {target!r}: service/function, this function's (a batch's "
                "failing elements are re-driven there)"
            )
        region = getattr(context, "region", "") or ""
        endpoint = os.environ.get("AUTOTAG_FC_ENDPOINT") or (
            f"https://{getattr(context, 'account_id', '')}.{region}-internal.fc.aliyuncs.com"
        )
        self.service, self.function = service, function
        self.client = _FcClient(endpoint, credentials)

    def send(self, payload: bytes) -> str:
        if len(payload) > MAX_ASYNC_PAYLOAD:
            raise RedriveError(
                f"an element of {len(payload)} bytes is over FC's {MAX_ASYNC_PAYLOAD} for an asynchronous "
                "invocation"
            )
        return self.client.invoke_function(self.service, self.function, payload)
