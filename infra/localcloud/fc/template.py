"""Read template.yml (`Aliyun::Serverless-2018-04-03`) into plain function and trigger specs.

Only what the local FC and `autotag deploy` act on is read: services (their RAM `Policies`, checked
statement by statement), functions (CodeUri, Handler, Initializer, Runtime, Timeout, MemorySize,
EnvironmentVariables, AsyncConfiguration) and their OSS and Timer triggers, and the OSS buckets the
template declares (`ALIYUN::OSS::Bucket`: the sweep's state bucket), which the local cloud and a deploy
create, and CloudFlow flows (`ALIYUN::FNF::Flow`) with their roles (`ALIYUN::RAM::Role`, inline policies).
Anything malformed is a TemplateError naming the resource path and what is wrong, as is a trigger
naming a bucket its function's AUTOTAG_BUCKETS leaves out (scope.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..ram import PolicyError, Role, parse_policies, role_arn
from .eventbridge import EventBridgeConfig, QueueRoute
from .scope import check_scope
from .specs import DEFAULT_ASYNC_RETRIES, FunctionSpec, TriggerSpec
from .template_errors import TemplateError

SERVICE = "Aliyun::Serverless::Service"
FUNCTION = "Aliyun::Serverless::Function"
FLOW = "ALIYUN::FNF::Flow"  # a CloudFlow flow (ROS resource type; docs/backfill.md cites it)
RAM_ROLE = "ALIYUN::RAM::Role"  # a RAM role of its own, for a flow
FLOW_PRINCIPAL = "fnf.aliyuncs.com"  # the service a flow's role must trust
EVENT_RULE = "ALIYUN::EventBridge::Rule"  # an EventBridge rule routing OSS's events to a queue
BUCKET = "ALIYUN::OSS::Bucket"  # a bucket the template creates (ROS resource type)
BUCKET_ACLS = ("private", "public-read", "public-read-write")
TRANSFORM = "Aliyun::Serverless-2018-04-03"


@dataclass(frozen=True)
class BucketSpec:
    """A bucket the template declares: created, if missing, by the local cloud and by a deploy."""

    name: str
    acl: str = "private"


@dataclass(frozen=True)
class FlowSpec:
    """A CloudFlow flow the template declares: created or updated by `autotag deploy` and `autotag local
    up`, run as `role`. The definition is checked by whoever creates the flow (CloudFlow refuses what it
    does not run), not here."""

    name: str
    definition: str
    role: str  # the ARN of its RAM role
    description: str = ""


@dataclass(frozen=True)
class Template:
    path: Path
    functions: dict[str, FunctionSpec]  # by function name (unique across services here)
    roles: dict[str, Role] = field(default_factory=dict)  # by ARN: each service's role and its policies
    routes: tuple[QueueRoute, ...] = ()  # EventBridge rules that route OSS events to queues
    buckets: tuple[BucketSpec, ...] = ()  # ALIYUN::OSS::Bucket resources
    flows: tuple[FlowSpec, ...] = ()  # ALIYUN::FNF::Flow resources
    # by ARN: the roles the flows run as (ALIYUN::RAM::Role), apart from the functions' `roles`
    flow_roles: dict[str, Role] = field(default_factory=dict)

    def function(self, name: str) -> FunctionSpec:
        if name not in self.functions:
            raise TemplateError(
                f"{self.path}: no function {name!r}; it has {', '.join(sorted(self.functions))}"
            )
        return self.functions[name]


def _require(mapping: Any, key: str, where: str, kind: type | tuple[type, ...]) -> Any:
    if not isinstance(mapping, dict) or key not in mapping:
        raise TemplateError(f"{where}: `{key}` is required")
    value = mapping[key]
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise TemplateError(f"{where}.{key}: {value!r} is not a {names}")
    return value


def _trigger(name: str, body: Any, where: str) -> TriggerSpec:
    kind = _require(body, "Type", where, str)
    properties = _require(body, "Properties", where, dict)
    if kind == "OSS":
        _require(properties, "BucketName", f"{where}.Properties", str)
        events = _require(properties, "Events", f"{where}.Properties", list)
        if not events or not all(isinstance(e, str) and e.startswith("oss:") for e in events):
            raise TemplateError(f"{where}.Properties.Events: a list of `oss:...` event names, got {events!r}")
        if "Enable" in properties:
            raise TemplateError(
                f"{where}.Properties.Enable: an OSS trigger cannot be disabled (FC's has no such setting); "
                "delete the trigger to stop it"
            )
    elif kind == "Timer":
        _require(properties, "CronExpression", f"{where}.Properties", str)
    elif kind == "EventBridge":
        EventBridgeConfig.from_properties(properties, f"{where}.Properties")  # refuse a bad one now
    else:
        raise TemplateError(
            f"{where}.Type: {kind!r} triggers are not supported here (OSS, Timer, EventBridge)"
        )
    return TriggerSpec(name, kind, dict(properties))


def _function(root: Path, service: str, name: str, body: dict[str, Any], where: str) -> FunctionSpec:
    properties = _require(body, "Properties", where, dict)
    at = f"{where}.Properties"
    handler = _require(properties, "Handler", at, str)
    code_uri = root / _require(properties, "CodeUri", at, str)
    if not code_uri.is_dir():
        raise TemplateError(f"{at}.CodeUri: {code_uri} is not a folder")
    environment = properties.get("EnvironmentVariables") or {}
    if not isinstance(environment, dict):
        raise TemplateError(f"{at}.EnvironmentVariables: a mapping of names to strings, got {environment!r}")
    async_config = properties.get("AsyncConfiguration") or {}
    destination = (async_config.get("Destination") or {}).get("OnFailure", "")
    events = body.get("Events") or {}
    if not isinstance(events, dict):
        raise TemplateError(f"{where}.Events: a mapping of trigger names to triggers, got {events!r}")
    for number in ("Timeout", "MemorySize", "InitializationTimeout"):
        if number in properties and not isinstance(properties[number], int):
            raise TemplateError(f"{at}.{number}: {properties[number]!r} is not an integer")
    return FunctionSpec(
        service=service,
        name=name,
        handler=handler,
        code_uri=code_uri,
        runtime=str(properties.get("Runtime", "")),
        timeout=properties.get("Timeout", 3),
        memory=properties.get("MemorySize", 128),
        initializer=str(properties.get("Initializer", "")),
        initialization_timeout=properties.get("InitializationTimeout", 3),
        environment={str(k): "" if v is None else str(v) for k, v in environment.items()},
        max_async_retries=int(async_config.get("MaxAsyncRetryAttempts", DEFAULT_ASYNC_RETRIES)),
        max_async_event_age=int(async_config.get("MaxAsyncEventAgeInSeconds", 86400)),
        on_failure=str(destination),
        description=str(properties.get("Description", "")),
        triggers=tuple(_trigger(n, t, f"{where}.Events.{n}") for n, t in events.items()),
    )


def load_template(path: Path | str) -> Template:
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise TemplateError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise TemplateError(f"{path}: not valid YAML: {exc}") from exc
    try:
        return _template_from(document, path)
    except TemplateError as exc:  # every error names the file, as well as the place in it
        if str(exc).startswith(f"{path}:"):
            raise
        raise TemplateError(f"{path}: {exc}") from None


def _template_from(document: Any, path: Path) -> Template:
    if not isinstance(document, dict):
        raise TemplateError(f"{path}: not a template (a YAML mapping with Resources)")
    if document.get("Transform") != TRANSFORM:
        raise TemplateError(f"{path}: Transform must be {TRANSFORM!r}, got {document.get('Transform')!r}")
    resources = _require(document, "Resources", str(path), dict)
    functions: dict[str, FunctionSpec] = {}
    roles: dict[str, Role] = {}
    routes: list[QueueRoute] = []
    buckets: list[BucketSpec] = []
    flow_roles: dict[str, Role] = {}  # by resource name: ALIYUN::RAM::Role resources
    for service, body in resources.items():
        if isinstance(body, dict) and body.get("Type") == RAM_ROLE:
            flow_roles[service] = _ram_role(body, f"Resources.{service}")
        if isinstance(body, dict) and body.get("Type") == BUCKET:
            buckets.append(_bucket(body, f"Resources.{service}"))
        if isinstance(body, dict) and body.get("Type") == EVENT_RULE:
            routes.append(QueueRoute.from_resource(service, body, f"Resources.{service}"))
        if not isinstance(body, dict) or body.get("Type") != SERVICE:
            continue
        service_properties = body.get("Properties") or {}
        role = _service_role(service, service_properties, f"Resources.{service}.Properties")
        if role is not None:
            roles[role.arn] = role
        for name, resource in body.items():
            if not isinstance(resource, dict) or resource.get("Type") != FUNCTION:
                continue
            where = f"Resources.{service}.{name}"
            if name in functions:
                raise TemplateError(f"{where}: another service already has a function {name!r}")
            spec = _function(path.parent, service, name, resource, where)
            functions[name] = FunctionSpec(
                **{
                    **spec.__dict__,
                    "service_properties": dict(service_properties),
                    "role": role.arn if role else "",
                }
            )
    if not functions:
        raise TemplateError(f"{path}: no {FUNCTION} under any {SERVICE}")
    check_scope(functions, tuple(routes))
    flows = tuple(
        _flow(body, f"Resources.{name}", flow_roles)
        for name, body in resources.items()
        if isinstance(body, dict) and body.get("Type") == FLOW
    )
    used = {flow.role for flow in flows}
    return Template(
        path,
        functions,
        roles,
        tuple(routes),
        tuple(buckets),
        flows,
        {role.arn: role for role in flow_roles.values() if role.arn in used},
    )


def _ram_role(body: dict[str, Any], where: str) -> Role:
    """A role the template creates, with the policies it declares inline (ROS ALIYUN::RAM::Role:
    RoleName, AssumeRolePolicyDocument, Policies of PolicyName and PolicyDocument)."""
    properties = _require(body, "Properties", where, dict)
    name = _require(properties, "RoleName", f"{where}.Properties", str)
    if not re.fullmatch(r"[A-Za-z0-9.-]{1,64}", name):
        raise TemplateError(f"{where}.Properties.RoleName: {name[:70]!r} is not a RAM role name")
    trust = _require(properties, "AssumeRolePolicyDocument", f"{where}.Properties", dict)
    trusted = [
        service
        for statement in trust.get("Statement") or []
        if isinstance(statement, dict) and statement.get("Effect") == "Allow"
        for service in ((statement.get("Principal") or {}).get("Service") or [])
    ]
    if trusted != [FLOW_PRINCIPAL]:
        raise TemplateError(
            f"{where}.Properties.AssumeRolePolicyDocument: the role must trust only {FLOW_PRINCIPAL} "
            f"(it trusts {', '.join(map(str, trusted)) or 'nothing'})"
        )
    listed = _require(properties, "Policies", f"{where}.Properties", list)
    documents = []
    for index, policy in enumerate(listed):
        at = f"{where}.Properties.Policies[{index}]"
        _require(policy, "PolicyName", at, str)
        documents.append(_require(policy, "PolicyDocument", at, dict))
    try:
        return Role(role_arn(name), parse_policies(documents, f"{where}.Properties.Policies"))
    except PolicyError as error:
        raise TemplateError(str(error)) from error


def _flow(body: dict[str, Any], where: str, roles: dict[str, Role]) -> FlowSpec:
    """A flow (ROS ALIYUN::FNF::Flow: Name, Definition, RoleArn, Description). Its role must be one the
    template declares, named by `Fn::GetAtt: [<role resource>, Arn]`, so its policy can be enforced."""
    properties = _require(body, "Properties", where, dict)
    name = _require(properties, "Name", f"{where}.Properties", str)
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]{0,127}", name):
        raise TemplateError(f"{where}.Properties.Name: {name[:70]!r} is not a flow name")
    definition = _require(properties, "Definition", f"{where}.Properties", str)
    reference = properties.get("RoleArn")
    target = reference.get("Fn::GetAtt") if isinstance(reference, dict) else None
    if not (isinstance(target, list) and len(target) == 2 and target[1] == "Arn" and target[0] in roles):
        raise TemplateError(
            f"{where}.Properties.RoleArn: must be `Fn::GetAtt: [<role>, Arn]` naming an {RAM_ROLE} of this "
            f"template (declared: {', '.join(sorted(roles)) or 'none'}), so that its policy is known"
        )
    description = properties.get("Description", "")
    return FlowSpec(name, definition, roles[target[0]].arn, str(description))


def _bucket(body: dict[str, Any], where: str) -> BucketSpec:
    properties = _require(body, "Properties", where, dict)
    name = _require(properties, "BucketName", f"{where}.Properties", str)
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]", name):
        raise TemplateError(
            f"{where}.Properties.BucketName: {name[:70]!r} is not a bucket name (3-63 lowercase letters, "
            "digits and hyphens, starting and ending with a letter or digit)"
        )
    acl = properties.get("AccessControl", "private")
    if acl not in BUCKET_ACLS:
        raise TemplateError(
            f"{where}.Properties.AccessControl: {acl!r} is not one of {', '.join(BUCKET_ACLS)}"
        )
    return BucketSpec(name, acl)


def _service_role(service: str, properties: Any, where: str) -> Role | None:
    """The RAM role a service's functions run under: its `Policies` on a role named after the service
    (or the `Role` given). A role the template does not describe cannot be enforced, so it is refused."""
    if not isinstance(properties, dict):
        raise TemplateError(f"{where}: a mapping, got {properties!r}")
    policies = properties.get("Policies")
    arn = str(properties.get("Role") or role_arn(service))
    if policies is None:
        if properties.get("Role"):
            raise TemplateError(
                f"{where}.Role: the local cloud cannot see what {arn} grants; declare the service's "
                "Policies in the template so they are enforced locally and deployed with it"
            )
        return None  # no role: FC hands the functions no credentials
    try:
        return Role(arn, parse_policies(policies, f"{where}.Policies"))
    except PolicyError as error:
        raise TemplateError(str(error)) from error
