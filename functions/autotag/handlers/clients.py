"""oss2 clients for one invocation: auth from that invocation's credentials (STS tokens expire, so they
are never cached across invocations), one Bucket per bucket name sharing a connection pool."""

from __future__ import annotations

from typing import Any

import oss2

from ..settings import Credentials


def oss_auth(credentials: Credentials) -> Any:
    if credentials.security_token:
        return oss2.StsAuth(
            credentials.access_key_id, credentials.access_key_secret, credentials.security_token
        )
    return oss2.Auth(credentials.access_key_id, credentials.access_key_secret)


def open_bucket(auth: Any, endpoint: str, name: str, pool_size: int | None = None) -> Any:
    session = oss2.Session(pool_size=pool_size) if pool_size else None
    return oss2.Bucket(auth, endpoint, name, session=session)
