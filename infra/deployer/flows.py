"""The template's CloudFlow flows, deployed through CloudFlow's official SDK (alibabacloud-fnf20190315,
API 2019-03-15): each flow is read with DescribeFlow, then created (CreateFlow) or updated (UpdateFlow)
only when its definition, role or description differ, so a second deploy changes nothing.

A definition outside the part of the spec the project runs (flowspec) is refused before anything is sent,
naming the flow and the field: what the local cloud could not run is never deployed. The flows' roles are
RAM roles the operator creates from the template's `ALIYUN::RAM::Role` policies, as the services' are;
a deploy names them in the target account."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from alibabacloud_fnf20190315 import models
from alibabacloud_fnf20190315.client import Client
from alibabacloud_tea_openapi.exceptions import ClientException
from alibabacloud_tea_openapi.utils_models import Config
from darabonba.policy.retry import RetryOptions

from flowspec import DefinitionError, parse_definition
from localcloud.fc.template import FlowSpec, Template

from .plan import CREATE, UNCHANGED, UPDATE, Action

FLOW_TYPE = "FDL"


class FlowRefused(ValueError):
    """A flow of the template that must not be deployed; the message names the flow and the field."""


def check_flows(template: Template) -> None:
    """Refuse the first flow whose definition uses what the project's spec does not cover (pure)."""
    for flow in template.flows:
        try:
            parsed = parse_definition(flow.definition)
        except DefinitionError as error:
            raise FlowRefused(f"flow {flow.name}: {error}") from None
        if parsed.name and parsed.name != flow.name:
            raise FlowRefused(f"flow {flow.name}: Definition.Name is {parsed.name!r}; it must be the flow's")


def role_in(account_id: str, template_arn: str) -> str:
    """The template's role ARN (`acs:ram::<local account>:role/<name>`) in the target account."""
    return f"acs:ram::{account_id}:role/{template_arn.rpartition('/')[2]}"


def desired_flow(flow: FlowSpec, role_arn: str) -> dict[str, str]:
    return {"Definition": flow.definition, "RoleArn": role_arn, "Description": flow.description}


def flow_differences(current: dict[str, str] | None, desired: dict[str, str]) -> list[str]:
    """The fields that differ (pure); ["does not exist"] when there is no such flow."""
    if current is None:
        return ["does not exist"]
    return [name for name, value in desired.items() if (current.get(name) or "") != value]


def cloudflow_client(endpoint: str, region: str, key_id: str, secret: str, token: str = "") -> Client:
    """A client of CloudFlow's API at `endpoint` (a URL); empty: the region's public endpoint."""
    config = Config(
        access_key_id=key_id,
        access_key_secret=secret,
        security_token=token or None,
        region_id=region,
    )
    if endpoint:
        parts = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
        config.endpoint, config.protocol = parts.netloc, parts.scheme
    config.retry_options = RetryOptions({"retryable": False})  # a deploy reports; the operator reruns
    return Client(config)


def current_flow(client: Client, name: str) -> dict[str, str] | None:
    try:
        body = client.describe_flow(models.DescribeFlowRequest(name=name)).body
    except ClientException as error:
        if error.code == "FlowNotExists":
            return None
        raise
    return {
        "Definition": body.definition or "",
        "RoleArn": body.role_arn or "",
        "Description": body.description or "",
    }


def flow_actions(client: Client, template: Template, account_id: str) -> list[Action]:
    """One action per flow of the template: create, update or unchanged (reads only)."""
    check_flows(template)
    actions = []
    for flow in template.flows:
        desired = desired_flow(flow, role_in(account_id, flow.role))
        current = current_flow(client, flow.name)
        changed = flow_differences(current, desired)
        resource = f"CloudFlow flow {flow.name}"
        if current is None:
            actions.append(
                Action(resource, CREATE, "does not exist", _writer(client, flow.name, desired, True))
            )
        elif changed:
            reason = "differs in " + ", ".join(changed)
            actions.append(Action(resource, UPDATE, reason, _writer(client, flow.name, desired, False)))
        else:
            actions.append(Action(resource, UNCHANGED, "as in the template"))
    return actions


def _writer(client: Client, name: str, desired: dict[str, str], create: bool) -> Callable[[], Any]:
    fields = {
        "name": name,
        "definition": desired["Definition"],
        "description": desired["Description"],
        "role_arn": desired["RoleArn"],
        "type": FLOW_TYPE,
    }
    if create:
        return lambda: client.create_flow(models.CreateFlowRequest(**fields))
    return lambda: client.update_flow(models.UpdateFlowRequest(**fields))
