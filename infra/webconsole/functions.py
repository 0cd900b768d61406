"""The functions of template.yml as the console shows them: name, service, handler, role, and each
trigger's kind and settings (what `autotag local up` read from the template and hands the console)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TriggerInfo:
    name: str
    type: str  # OSS, Timer, EventBridge
    summary: str  # its settings in one line: bucket and events, cron, event source
    payload: str = ""  # a timer's payload, the sweep's input
    bucket: str = ""  # an OSS trigger's bucket


@dataclass(frozen=True)
class FunctionInfo:
    name: str
    service: str
    handler: str
    role: str
    description: str = ""
    triggers: tuple[TriggerInfo, ...] = ()

    @property
    def timer_payloads(self) -> list[str]:
        return [t.payload for t in self.triggers if t.type == "Timer" and t.payload]

    @property
    def timers(self) -> list[TriggerInfo]:
        return [t for t in self.triggers if t.type == "Timer"]
