"""What template.yml says of one function and of one of its triggers, as plain data: what the local FC runs
and `autotag deploy` creates (template.py reads them; scope.py checks them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .eventbridge import EventBridgeConfig

DEFAULT_ASYNC_RETRIES = 3  # FC's default for asynchronous invocations


@dataclass(frozen=True)
class TriggerSpec:
    name: str
    type: str  # OSS or Timer
    properties: dict[str, Any]

    @property
    def bucket(self) -> str:
        return str(self.properties.get("BucketName", ""))

    @property
    def events(self) -> list[str]:
        return list(self.properties.get("Events", []))

    @property
    def key_filter(self) -> tuple[str, str]:
        key = (self.properties.get("Filter") or {}).get("Key") or {}
        return str(key.get("Prefix", "")), str(key.get("Suffix", ""))

    @property
    def cron(self) -> str:
        return str(self.properties.get("CronExpression", ""))

    @property
    def payload(self) -> str:
        return str(self.properties.get("Payload", ""))

    @property
    def enabled(self) -> bool:
        return bool(self.properties.get("Enable", True))

    @property
    def created_disabled(self) -> bool:
        """Whether a deploy creates this trigger although it is disabled: not an EventBridge one, an
        alternative whose queue or rule the account may not have."""
        return self.type != "EventBridge"

    @property
    def eventbridge(self) -> EventBridgeConfig:
        return EventBridgeConfig.from_properties(self.properties, self.name)


@dataclass(frozen=True)
class FunctionSpec:
    service: str
    name: str
    handler: str
    code_uri: Path
    runtime: str
    timeout: int = 3
    memory: int = 128
    initializer: str = ""
    initialization_timeout: int = 3
    environment: dict[str, str] = field(default_factory=dict)
    max_async_retries: int = DEFAULT_ASYNC_RETRIES
    max_async_event_age: int = 86400
    on_failure: str = ""
    description: str = ""
    triggers: tuple[TriggerSpec, ...] = ()
    service_properties: dict[str, Any] = field(default_factory=dict)
    role: str = ""  # the ARN of the RAM role the function runs under; "" for none (no credentials)
