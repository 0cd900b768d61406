"""`autotag invoke`: one synchronous invocation of a template function, run here as FC would run it, against
the OSS the command points at (or, with `--remote`, through the FC API it points at)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from autotag.output import to_json
from localcloud.fc.runtime import MAX_SYNC_PAYLOAD

from .errors import NotFound, doing
from .fc_invoke import invoke_function, show
from .function_host import environment_options, host_functions, read_template, template_option
from .target import Target, require_reachable, target_options


def read_event(source: str) -> bytes:
    """The event file's bytes (`-`: standard input), or a usage error that says what is wrong with it.
    At most FC's payload limit + 1 bytes are read, whatever the file is (a device or a pipe has no size)."""
    limit = MAX_SYNC_PAYLOAD
    if source == "-":
        data = sys.stdin.buffer.read(limit + 1)
        where = "standard input"
    else:
        try:
            with Path(source).open("rb") as file:
                data = file.read(limit + 1)
        except OSError as error:
            raise click.BadParameter(
                f"cannot read {source}: {error.strerror or error}", param_hint="--event"
            ) from None
        where = source
    if len(data) > limit:
        raise click.BadParameter(
            f"{where} is over {limit // (1024 * 1024)} MiB, FC's limit for an event (a synchronous "
            "invocation's payload)",
            param_hint="--event",
        )
    if not data.strip():
        how = (
            "autotag event oss --bucket B --key K | autotag invoke FUNCTION -e -"
            if source == "-"
            else f"autotag event oss --bucket B --key K -o {source}"
        )
        raise click.BadParameter(f"{where} is empty; write an event with `{how}`", param_hint="--event")
    return data


@click.command()
@click.argument("function")
@click.option(
    "-e",
    "--event",
    "event_source",
    required=True,
    metavar="FILE",
    help="The event: a file, or - for standard input (`autotag event` writes them).",
)
@click.option(
    "--remote",
    is_flag=True,
    help="Invoke the deployed function through the FC API at --fc-endpoint instead of running it here "
    "(its log tail on standard error).",
)
@template_option
@environment_options
@target_options(oss=True, fc=True)
def invoke(
    function: str,
    event_source: str,
    remote: bool,
    template_path: Path,
    rules: str | None,
    env_vars: Path | None,
    target: Target,
) -> None:
    """Invoke FUNCTION (a function of the template) once with an event and print what it returned.

    \b
    Examples:
      autotag event oss --bucket autotag-demo --key a.jpg -o event.json
      autotag invoke tag-on-upload -e event.json
      autotag invoke tag-on-upload -e event.json --remote --fc-endpoint https://<account>.<region>.fc.aliyuncs.com
    """
    template = read_template(template_path)
    spec = template.functions.get(function)
    if spec is None:
        raise NotFound(f"no function {function!r} in {template_path}; it has {', '.join(template.functions)}")
    event = read_event(event_source)
    if remote:
        doing(f"invoking {spec.service}/{spec.name} through FC at {target.fc_endpoint}")
        show(invoke_function(target.fc_client(), spec.service, spec.name, event), spec.name)
        return
    require_reachable(target.oss_endpoint, "OSS")
    doing(f"running {spec.name} against OSS at {target.oss_endpoint}")
    fc = host_functions(template, target, rules=rules, env_vars=env_vars)
    with fc:
        result = fc.invoke(spec.name, event)
    if not result.ok:
        raise click.ClickException(f"{spec.name} failed: {result.error_message}")
    _print_result(result.payload or "null")


def _print_result(text: str) -> None:
    """The function's answer, indented when it is JSON; a key that is no UTF-8 (a lone surrogate) is
    printed escaped, as the function itself writes it."""
    try:
        click.echo(to_json(json.loads(text), indent=2))
    except json.JSONDecodeError:
        click.echo(text.encode("utf-8", errors="backslashreplace").decode("utf-8"))
