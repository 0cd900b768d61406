"""The `context` FC's Python runtimes pass to handlers, with the same attribute names.

The python3.12 runtime's context has no `service` (FC 3.0 has no services), which the local FC mirrors
with `service=None`. It also has no `credentials` there (FC 3.0 puts them in ALIBABA_CLOUD_* environment
variables); the local FC still hands them on the context, because its functions share one process and
its environment, and each runs with its own role's credentials."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from ..oss.auth import DEFAULT_CREDENTIALS

FC3_ONLY_RUNTIMES = ("python3.12",)  # runtimes whose context is FC 3.0's


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    access_key_secret: str
    security_token: str


@dataclass(frozen=True)
class FunctionMeta:
    name: str
    handler: str
    memory: int = 256
    timeout: int = 60
    initializer: str = ""
    initialization_timeout: int = 30


@dataclass(frozen=True)
class ServiceMeta:
    name: str
    log_project: str = ""
    log_store: str = ""
    qualifier: str = "LATEST"
    version_id: str = ""


@dataclass(frozen=True)
class FCContext:
    request_id: str
    credentials: Credentials | None
    function: FunctionMeta
    service: ServiceMeta | None  # None on python3.12 (FC 3.0)
    region: str
    account_id: str
    tracing: object = None
    extra: dict[str, str] = field(default_factory=dict)


def fc_context(
    function: str = "tag-on-upload",
    handler: str = "tag_on_upload.handler",
    service: str = "oss-autotag",
    region: str = "cn-hangzhou",
    timeout: int = 60,
    with_credentials: bool = True,
) -> FCContext:
    """A context as FC builds it for one invocation, with the local OSS's STS credential."""
    sts = DEFAULT_CREDENTIALS[1]
    credentials = Credentials(sts.access_key_id, sts.access_key_secret, sts.security_token or "")
    return FCContext(
        request_id=str(uuid.uuid4()),
        credentials=credentials if with_credentials else None,
        function=FunctionMeta(function, handler, timeout=timeout),
        service=ServiceMeta(service),
        region=region,
        account_id="1234567890123456",
    )
