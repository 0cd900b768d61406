"""What a deploy must change: desired resources from template.yml against what FC has (pure: deployer.apply
reads what FC has through aliyun-fc2 and hands it over)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from localcloud.fc.eventbridge import api_trigger_config
from localcloud.fc.template import FunctionSpec, TriggerSpec

CREATE, UPDATE, UNCHANGED, SKIPPED, DELETE = "create", "update", "unchanged", "skipped", "delete"
CHANGES = (CREATE, UPDATE, DELETE)


@dataclass(frozen=True)
class Target:
    region: str
    account_id: str
    roles: dict[str, str] = field(default_factory=dict)  # service -> RAM role ARN, when not the default
    trigger_role: str = ""  # the role OSS uses to invoke the function

    def role_for(self, service: str, spec: FunctionSpec) -> str:
        """The role a service runs under: as given, as the template names it, or the role named after the
        service (`acs:ram::<account-id>:role/<service>`), which carries the service's Policies."""
        named = self.roles.get(service) or str(spec.service_properties.get("Role") or "")
        return named or f"acs:ram::{self.account_id}:role/{service}"

    def arn(self, template_arn: str) -> str:
        """Fill an ARN's empty region and account (`acs:mns:::/queues/q`) for this target."""
        parts = template_arn.split(":", 4)
        if len(parts) == 5 and parts[0] == "acs":
            parts[2] = parts[2] or self.region
            parts[3] = parts[3] or self.account_id
        return ":".join(parts)


@dataclass
class Action:
    resource: str  # e.g. function oss-autotag/tag-on-upload
    verb: str  # create, update or unchanged
    reason: str
    apply: Callable[[], Any] | None = field(default=None, repr=False)


def desired_service(name: str, spec: FunctionSpec, target: Target) -> dict[str, Any]:
    return {
        "description": spec.service_properties.get("Description", ""),
        "role": target.role_for(name, spec),
    }


def desired_function(spec: FunctionSpec, checksum: str) -> dict[str, Any]:
    return {
        "handler": spec.handler,
        "runtime": spec.runtime,
        "timeout": spec.timeout,
        "memorySize": spec.memory,
        "initializer": spec.initializer or None,
        "initializationTimeout": spec.initialization_timeout,
        "environmentVariables": spec.environment,
        "description": spec.description,
        "codeChecksum": checksum,
    }


def desired_async_config(spec: FunctionSpec, target: Target) -> dict[str, Any]:
    config: dict[str, Any] = {
        "maxAsyncRetryAttempts": spec.max_async_retries,
        "maxAsyncEventAgeInSeconds": spec.max_async_event_age,
    }
    if spec.on_failure:
        config["destinationConfig"] = {"onFailure": {"destination": target.arn(spec.on_failure)}}
    return config


def desired_trigger(trigger: TriggerSpec, target: Target) -> dict[str, Any]:
    if trigger.type == "EventBridge":
        return {"triggerType": "eventbridge", "triggerConfig": api_trigger_config(trigger.properties)}
    if trigger.type == "OSS":
        prefix, suffix = trigger.key_filter
        return {
            "triggerType": "oss",
            "triggerConfig": {
                "events": trigger.events,
                "filter": {"key": {"prefix": prefix, "suffix": suffix}},
            },
            "sourceArn": f"acs:oss:{target.region}:{target.account_id}:{trigger.bucket}",
            "invocationRole": target.trigger_role,
        }
    return {
        "triggerType": "timer",
        "triggerConfig": {
            "payload": trigger.payload,
            "cronExpression": trigger.cron,
            "enable": trigger.enabled,
        },
    }


def differences(current: dict[str, Any] | None, desired: dict[str, Any]) -> list[str]:
    """The desired fields the current resource lacks or has otherwise (fields FC adds are ignored)."""
    if current is None:
        return ["does not exist"]
    return [name for name, value in desired.items() if _normal(current.get(name)) != _normal(value)]


def _normal(value: Any) -> Any:
    if value in ("", None, {}):
        return None
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items() if _normal(v) is not None}
    return value


def verb_for(current: dict[str, Any] | None, desired: dict[str, Any]) -> tuple[str, str]:
    changed = differences(current, desired)
    if current is None:
        return CREATE, "does not exist"
    if changed:
        return UPDATE, "differs in " + ", ".join(changed)
    return UNCHANGED, "as in the template"


RECORD_SECRET = "AUTOTAG_RECORD_SECRET"


def record_secret(deployed: dict[str, str], given: str, generate: Callable[[], str]) -> tuple[str, str]:
    """The AUTOTAG_RECORD_SECRET a deploy to Alibaba Cloud gives every function, and where it came from.

    The secret keys every seal the functions write (ownership records, the sweep's state): functions that
    disagree do not believe each other, and a new secret disbelieves everything sealed before. So: the
    deploying shell's AUTOTAG_RECORD_SECRET when it is set (an explicit choice, e.g. `new,old` to rotate);
    else the one the deployed functions already hold (`deployed`: function -> its value, "" when none),
    which must be one; else a new random one. Never written in template.yml, never shown."""
    if given:
        return given, "this shell's AUTOTAG_RECORD_SECRET"
    held = {value for value in deployed.values() if value}
    if len(held) > 1:
        names = ", ".join(sorted(name for name, value in deployed.items() if value))
        raise ValueError(
            f"the deployed functions ({names}) hold different {RECORD_SECRET}s: set the one to keep in this "
            f"shell's {RECORD_SECRET} (several, comma-separated, to accept the others while they are "
            "replaced), then deploy again"
        )
    if held:
        return held.pop(), "kept from the deployed functions"
    return generate(), "generated by this deploy (the functions keep it; later deploys keep it too)"
