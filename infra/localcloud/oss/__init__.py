"""The local OSS: an OSS-compatible HTTP server that real oss2 talks to."""

from .auth import DEFAULT_CREDENTIALS, Credential
from .faults import FaultRule
from .server import LocalOSS

__all__ = ["DEFAULT_CREDENTIALS", "Credential", "FaultRule", "LocalOSS"]
