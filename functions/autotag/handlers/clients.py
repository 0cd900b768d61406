"""oss2 clients for one invocation: auth from that invocation's credentials (STS tokens expire, so they
are never cached across invocations), on HTTP connections kept for the life of the instance (a warm
instance reuses them, instead of a TCP and TLS handshake per event)."""

from __future__ import annotations

import threading
from typing import Any

import oss2

from ..gateway import CONNECT_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS
from ..sdk_logs import quiet_oss2
from ..settings import Credentials


def oss_auth(credentials: Credentials) -> Any:
    if credentials.security_token:
        return oss2.StsAuth(
            credentials.access_key_id, credentials.access_key_secret, credentials.security_token
        )
    return oss2.Auth(credentials.access_key_id, credentials.access_key_secret)


quiet_oss2()  # its DEBUG lines carry the security token

_sessions: dict[int | None, Any] = {}
_sessions_lock = threading.Lock()


def _session(pool_size: int | None) -> Any:
    with _sessions_lock:
        if pool_size not in _sessions:
            _sessions[pool_size] = oss2.Session(pool_size=pool_size)
        return _sessions[pool_size]


def open_bucket(
    auth: Any,
    endpoint: str,
    name: str,
    pool_size: int | None = None,
    timeouts: tuple[float, float] = (CONNECT_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS),
) -> Any:
    """A client whose requests give up on a silent endpoint after `timeouts` (connect, read) seconds
    (oss2 hands the pair to requests as its timeout)."""
    return oss2.Bucket(auth, endpoint, name, session=_session(pool_size), connect_timeout=timeouts)
