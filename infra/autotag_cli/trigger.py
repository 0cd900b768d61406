"""`autotag trigger`: fire a template's timer trigger now, as the trigger itself would — its payload, at
OSS's clock (on the local cloud, its shifted one), through the FC API, so the function runs under its
service's role — synchronously with its answer and log tail, or queued (`--async`) as FC's timer does."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from autotag.sweep.clock import absurd
from autotag.timestamps import parse_timestamp
from localcloud.fc.runtime import timer_event
from localcloud.fc.template import FunctionSpec, Template, TriggerSpec

from .errors import BadInput, CliError, NotFound, doing
from .fc_invoke import invoke_function, show
from .function_host import read_template, template_option
from .sweep import unsuccessful_sweep
from .target import Target, target_options


def timer_trigger(template: Template, function: str, name: str | None, template_path: Path) -> TriggerSpec:
    """The function's timer trigger `name` (or its only one), or a bad-input error saying what it has."""
    spec: FunctionSpec | None = template.functions.get(function)
    if spec is None:
        raise NotFound(f"no function {function!r} in {template_path}; it has {', '.join(template.functions)}")
    timers = [t for t in spec.triggers if t.type == "Timer"]
    others = [t for t in spec.triggers if t.type != "Timer"]
    if name is not None:
        for trigger in spec.triggers:
            if trigger.name == name and trigger.type == "Timer":
                return trigger
            if trigger.name == name:
                raise BadInput(
                    f"{function}'s trigger {name} is an {trigger.type} trigger: it fires on uploads; "
                    "`autotag event oss` writes such an event for `autotag invoke`"
                )
        known = ", ".join(t.name for t in spec.triggers) or "none"
        raise BadInput(f"{function} has no trigger {name!r} in {template_path} (its triggers: {known})")
    if len(timers) == 1:
        return timers[0]
    if not timers:
        kinds = ", ".join(f"{t.name} ({t.type})" for t in others) or "none"
        raise BadInput(
            f"{function} has no timer trigger in {template_path} (its triggers: {kinds}); an upload's "
            "trigger fires on uploads: `autotag event oss` writes such an event for `autotag invoke`"
        )
    raise BadInput(f"{function} has {len(timers)} timers: name one ({', '.join(t.name for t in timers)})")


def trigger_time(at: str | None, target: Target) -> tuple[datetime, str]:
    """(when the trigger fires, whose clock that is): --at, else OSS's clock."""
    if at is None:
        doing(f"reading OSS's clock at {target.oss_endpoint}")
        return target.oss_time(), "OSS's clock"
    moment = parse_timestamp(at)
    if moment is None:
        raise click.BadParameter(
            f"{at!r} is not an ISO-8601 time such as 2026-12-01T03:00:00Z", param_hint="--at"
        )
    if absurd(moment):
        raise click.BadParameter(f"{at} {absurd(moment)}: no timer fires then", param_hint="--at")
    return moment, "--at"


@click.command()
@click.argument("function")
@click.argument("trigger_name", metavar="[TRIGGER]", required=False)
@click.option(
    "--at",
    help="When the trigger fires (ISO-8601, UTC), as its triggerTime. Default: OSS's clock (the local "
    "cloud's, shifted by --clock-offset or its admin API).",
)
@click.option(
    "--async",
    "asynchronous",
    is_flag=True,
    help="Queue the invocation as FC's timer does (retries, then the on-failure destination) and print its "
    "request id. Default: wait, and print its answer and log tail.",
)
@template_option
@target_options(oss=True, fc=True)
def trigger(
    function: str,
    trigger_name: str | None,
    at: str | None,
    asynchronous: bool,
    template_path: Path,
    target: Target,
) -> None:
    """Fire FUNCTION's timer TRIGGER (its only one when not named) now, as the trigger would: the
    template's payload, OSS's clock as the trigger time, through the FC API at --fc-endpoint, where the
    function runs under its service's role.

    \b
    Examples:
      autotag trigger tag-expiry
      autotag trigger tag-expiry nightly-expiry --async
    """
    template = read_template(template_path)
    timer = timer_trigger(template, function, trigger_name, template_path)
    spec = template.function(function)
    moment, whose = trigger_time(at, target)
    event = timer_event(timer, moment)
    when = json.loads(event)["triggerTime"]
    doing(f"firing {function}'s {timer.name} through FC at {target.fc_endpoint}")
    client = target.fc_client()
    answer = invoke_function(client, spec.service, spec.name, event, asynchronous=asynchronous)
    fired = f"{function}'s timer {timer.name} fired at {when} ({whose}), payload {timer.payload}"
    if asynchronous:
        click.echo(f"{fired}: queued, request id {answer.request_id}", err=True)
        return
    click.echo(f"{fired}: request id {answer.request_id}", err=True)
    show(answer, spec.name)
    refused = unsuccessful_run(answer.payload)
    if refused:
        raise CliError(f"{function}'s timer {timer.name} (request id {answer.request_id}): {refused}")


def unsuccessful_run(payload: str) -> str:
    """Why a timer's run, as the function's answer tells it, ends in an error ("" when it does not): a
    sweep refused or stopped before its end, or failed objects (as `autotag sweep` decides), a bucket the
    function refused or could not dispatch."""
    try:
        answer = json.loads(payload)
    except json.JSONDecodeError:
        return ""
    if not isinstance(answer, dict):
        return ""
    reasons = [why for why in map(unsuccessful_sweep, _entries(answer, "sweeps")) if why]
    reasons += [
        f"oss://{r.get('bucket', '')}: {r.get('reason', 'refused')}" for r in _entries(answer, "rejected")
    ]
    reasons += [
        f"oss://{d.get('bucket', '')}: {d['error']}" for d in _entries(answer, "dispatched") if d.get("error")
    ]
    return "; ".join(reasons)


def _entries(answer: dict[str, Any], name: str) -> list[dict[str, Any]]:
    found = answer.get(name)
    return [entry for entry in found if isinstance(entry, dict)] if isinstance(found, list) else []
