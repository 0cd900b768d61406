"""Deploy template.yml: through oss2, create the buckets it declares (the sweep's state bucket, private);
through aliyun-fc2, create or update services, functions (zipped CodeUri with the vendored dependencies),
async-invoke configs and triggers. Each resource is read first and written only when it differs, so a
second deploy of the same template and code changes nothing. A deploy to Alibaba Cloud gives every function
one AUTOTAG_RECORD_SECRET (plan.record_secret), never shown."""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import fc2
import oss2

from cloudformats.checksums import crc64
from localcloud.fc.template import FunctionSpec, Template

from .plan import (
    CHANGES,
    CREATE,
    DELETE,
    RECORD_SECRET,
    SKIPPED,
    UNCHANGED,
    UPDATE,
    Action,
    Target,
    desired_async_config,
    desired_function,
    desired_service,
    desired_trigger,
    verb_for,
)

QUALIFIER = "LATEST"


def _read(call: Callable[[], Any]) -> dict[str, Any] | None:
    try:
        return dict(call().data)
    except fc2.fc_exceptions.FcError as error:
        if error.status_code == 404:
            return None
        raise


class Deployer:
    def __init__(
        self,
        client: fc2.Client,
        template: Template,
        target: Target,
        package: Callable[[Path, str], bytes],
        prune: bool = False,
        secret: str | None = None,
    ) -> None:
        """`package(code_uri, runtime)` builds a function's zip (its code, and what its runtime lacks);
        `prune` deletes the functions' triggers the template no longer declares; `secret`, when given,
        is the AUTOTAG_RECORD_SECRET of every function that declares one."""
        self.client, self.template, self.target, self.package = client, template, target, package
        self.prune, self.secret = prune, secret
        self._packages: dict[tuple[Path, str], bytes] = {}
        self._scratch = tempfile.TemporaryDirectory(prefix="autotag-deploy-")

    def _zip(self, spec: FunctionSpec) -> tuple[bytes, str]:
        key = (spec.code_uri, spec.runtime)
        if key not in self._packages:
            self._packages[key] = self.package(spec.code_uri, spec.runtime)
        data = self._packages[key]
        path = Path(self._scratch.name) / f"{crc64(data)}.zip"
        path.write_bytes(data)
        return data, str(path)

    def plan(self) -> list[Action]:
        actions: list[Action] = []
        services: set[str] = set()
        for spec in self.template.functions.values():
            if spec.service not in services:
                services.add(spec.service)
                actions.append(self._service_action(spec))
                actions.append(
                    Action(
                        f"RAM role {self.target.role_for(spec.service, spec)}",
                        SKIPPED,
                        "not managed here: deploy creates no RAM role or policy (README: Deploying to "
                        "Alibaba Cloud)",
                    )
                )
            actions.append(self._function_action(spec))
            actions.append(self._async_action(spec))
            actions += [self._trigger_action(spec, trigger) for trigger in spec.triggers]
            actions += self._stray_trigger_actions(spec)
        actions += [
            Action(
                f"eventbridge rule {route.name}",
                SKIPPED,
                "not managed here: create it, and the queue it targets, with ROS or the EventBridge "
                "console (docs/tag-on-upload.md)"
                if route.enabled
                else "disabled in the template",
            )
            for route in self.template.routes
        ]
        return actions

    def _service_action(self, spec: FunctionSpec) -> Action:
        client, name = self.client, spec.service
        desired = desired_service(name, spec, self.target)
        current = _read(lambda: client.get_service(name))
        verb, why = verb_for(current, desired)
        if verb == CREATE:
            return Action(f"service {name}", verb, why, lambda: client.create_service(name, **desired))
        return Action(f"service {name}", verb, why, lambda: client.update_service(name, **desired))

    def deployed_secrets(self) -> dict[str, str]:
        """Each deployed function's AUTOTAG_RECORD_SECRET ("" when it has none or is not deployed)."""
        found = {}
        for spec in self.template.functions.values():
            if RECORD_SECRET in spec.environment:
                current = _read(functools.partial(self.client.get_function, spec.service, spec.name)) or {}
                found[spec.name] = str((current.get("environmentVariables") or {}).get(RECORD_SECRET, ""))
        return found

    def bucket_actions(self, open_bucket: Callable[[str], Any]) -> list[Action]:
        """The buckets the template declares: created (with their ACL) where missing; `open_bucket(name)`
        is an oss2 Bucket of the target."""
        actions = []
        for declared in self.template.buckets:
            bucket = open_bucket(declared.name)
            resource = f"OSS bucket {declared.name} ({declared.acl})"
            try:
                acl = bucket.get_bucket_acl().acl
            except oss2.exceptions.NoSuchBucket:
                create = lambda bucket=bucket, acl=declared.acl: bucket.create_bucket(acl)  # noqa: E731
                actions.append(Action(resource, CREATE, "does not exist", create))
                continue
            if acl != declared.acl:
                change = lambda bucket=bucket, acl=declared.acl: bucket.put_bucket_acl(acl)  # noqa: E731
                actions.append(Action(resource, UPDATE, f"differs in its ACL ({acl})", change))
            else:
                actions.append(Action(resource, UNCHANGED, "as in the template"))
        return actions

    def _function_action(self, spec: FunctionSpec) -> Action:
        client = self.client
        data, path = self._zip(spec)
        if self.secret is not None and RECORD_SECRET in spec.environment:
            spec = replace(spec, environment={**spec.environment, RECORD_SECRET: self.secret})
        desired = desired_function(spec, str(crc64(data)))
        current = _read(lambda: client.get_function(spec.service, spec.name))
        verb, why = verb_for(current, desired)
        arguments = {
            "initializer": spec.initializer or None,
            "initializationTimeout": spec.initialization_timeout,
            "codeZipFile": path,
            "description": spec.description,
            "memorySize": spec.memory,
            "timeout": spec.timeout,
            "environmentVariables": spec.environment,
        }
        resource = f"function {spec.service}/{spec.name} ({len(data) / 2**20:.1f} MiB zip)"
        if verb == CREATE:
            return Action(
                resource,
                verb,
                why,
                lambda: client.create_function(
                    spec.service, spec.name, spec.runtime, spec.handler, **arguments
                ),
            )
        return Action(
            resource,
            verb,
            why,
            lambda: client.update_function(
                spec.service, spec.name, handler=spec.handler, runtime=spec.runtime, **arguments
            ),
        )

    def _async_action(self, spec: FunctionSpec) -> Action:
        client = self.client
        desired = desired_async_config(spec, self.target)
        current = _read(lambda: client.get_function_async_invoke_config(spec.service, QUALIFIER, spec.name))
        verb, why = verb_for(current, desired)
        return Action(
            f"async config {spec.service}/{spec.name}",
            verb,
            why,
            lambda: client.put_function_async_invoke_config(spec.service, QUALIFIER, spec.name, desired),
        )

    def _stray_trigger_actions(self, spec: FunctionSpec) -> list[Action]:
        """Triggers FC has for the function that the template does not declare (the native OSS trigger
        after a move to EventBridge, say): both would deliver every event. Deleted only with `prune`."""
        client = self.client
        listed = _read(lambda: client.list_triggers(spec.service, spec.name, limit=100))
        declared = {t.name for t in spec.triggers}
        actions = []
        for trigger in (listed or {}).get("triggers") or []:
            name = trigger["triggerName"]
            if name in declared:
                continue
            resource = f"{trigger.get('triggerType', '')} trigger {spec.name}/{name}"
            if not self.prune:
                actions.append(Action(resource, SKIPPED, "not in the template; --prune deletes it"))
                continue
            actions.append(
                Action(
                    resource,
                    DELETE,
                    "not in the template",
                    lambda n=name: client.delete_trigger(spec.service, spec.name, n),
                )
            )
        return actions

    def _trigger_action(self, spec: FunctionSpec, trigger: Any) -> Action:
        client = self.client
        desired = desired_trigger(trigger, self.target)
        current = _read(lambda: client.get_trigger(spec.service, spec.name, trigger.name))
        verb, why = verb_for(current, desired)
        resource = f"{trigger.type.lower()} trigger {spec.name}/{trigger.name}"
        if verb == CREATE and not trigger.created_disabled and not trigger.eventbridge.enabled:
            # A disabled alternative is not created: its queue or rule may not exist in this account.
            return Action(resource, SKIPPED, "disabled in the template (TriggerEnable: false)")
        if verb == CREATE:
            return Action(
                resource,
                verb,
                why,
                lambda: client.create_trigger(
                    spec.service,
                    spec.name,
                    trigger.name,
                    desired["triggerType"],
                    desired["triggerConfig"],
                    desired.get("sourceArn", ""),
                    desired.get("invocationRole", ""),
                ),
            )
        return Action(
            resource,
            verb,
            why,
            lambda: client.update_trigger(
                spec.service,
                spec.name,
                trigger.name,
                triggerConfig=desired["triggerConfig"],
                invocationRole=desired.get("invocationRole") or None,
            ),
        )

    def apply(self, actions: list[Action]) -> int:
        """Carry out the actions that change something; how many did."""
        changed = 0
        for action in actions:
            if action.verb in CHANGES and action.apply is not None:
                action.apply()
                changed += 1
        return changed

    def close(self) -> None:
        self._scratch.cleanup()
