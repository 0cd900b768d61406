"""The local Function Compute: template.yml's functions loaded from their CodeUri, FC-shaped invocation
contexts, OSS, timer and EventBridge triggers, asynchronous retries and the dead-letter store, and FC's
HTTP API over them (`api`)."""

from .context import Credentials, FCContext, FunctionMeta, ServiceMeta, fc_context
from .deadletters import DeadLetter, DeadLetterError, DeadLetterStore, read_dead_letters
from .loader import load_handler
from .runtime import InvocationResult, LocalFC, role_credentials, timer_event
from .schedule import ScheduleError, parse_schedule
from .template import FunctionSpec, Template, TemplateError, TriggerSpec, load_template

__all__ = [
    "Credentials",
    "DeadLetter",
    "DeadLetterError",
    "DeadLetterStore",
    "FCContext",
    "FunctionMeta",
    "FunctionSpec",
    "InvocationResult",
    "LocalFC",
    "ScheduleError",
    "ServiceMeta",
    "Template",
    "TemplateError",
    "TriggerSpec",
    "fc_context",
    "load_handler",
    "load_template",
    "parse_schedule",
    "read_dead_letters",
    "role_credentials",
    "timer_event",
]
