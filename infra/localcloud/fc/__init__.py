"""The local Function Compute: FC-shaped invocation contexts and handler loading (the local FC server and
its triggers come with the event-replay work)."""

from .context import Credentials, FCContext, FunctionMeta, ServiceMeta, fc_context
from .loader import load_handler

__all__ = ["Credentials", "FCContext", "FunctionMeta", "ServiceMeta", "fc_context", "load_handler"]
