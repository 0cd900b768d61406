"""What a browser sends for a PostObject upload: the form fields of a V1-signed policy.

oss2 has no PostObject call (browsers make these uploads), so tests and the demo build the form here."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

from .auth import Credential


def signed_form(
    credential: Credential,
    key: str,
    *,
    conditions: list[Any] | None = None,
    expires_in: float = 600,
    fields: dict[str, str] | None = None,
) -> dict[str, str]:
    """Form fields (everything but `file`) for uploading `key`, signed by `credential`."""
    expiration = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(time.time() + expires_in))
    policy = base64.b64encode(json.dumps({"expiration": expiration, "conditions": conditions or []}).encode())
    signature = hmac.new(credential.access_key_secret.encode(), policy, hashlib.sha1).digest()
    form = {
        "key": key,
        "OSSAccessKeyId": credential.access_key_id,
        "policy": policy.decode(),
        "Signature": base64.b64encode(signature).decode(),
        **(fields or {}),
    }
    if credential.security_token:
        form["x-oss-security-token"] = credential.security_token
    return form
