"""`autotag invoke`: one synchronous invocation, in-process as FC would run it, or remotely via aliyun-fc2."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from .fc_options import in_process_fc, read_template, template_option
from .options import credential_options


def _read_event(source: str) -> bytes:
    if source == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(source).read_bytes()
    except OSError as error:
        raise click.BadParameter(
            f"cannot read {source}: {error.strerror or error}", param_hint="--event"
        ) from error


@click.command()
@click.argument("function")
@click.option("--event", "event_source", required=True, help="Event file, or - for standard input.")
@template_option
@click.option(
    "--endpoint", envvar="AUTOTAG_FC_ENDPOINT", help="FC endpoint: invoke remotely through aliyun-fc2."
)
@credential_options(required=False)
def invoke(
    function: str,
    event_source: str,
    template_path: Path,
    endpoint: str | None,
    access_key_id: str,
    access_key_secret: str,
    security_token: str,
) -> None:
    """Invoke FUNCTION (a function name in the template) with an event; print what it returned."""
    template = read_template(template_path)
    spec = template.functions.get(function)
    if spec is None:
        raise click.BadParameter(
            f"no function {function!r} in {template_path}; it has {', '.join(template.functions)}"
        )
    event = _read_event(event_source)
    if endpoint:
        import fc2

        if not access_key_id:
            raise click.UsageError("remote invocation needs ALIBABA_CLOUD_ACCESS_KEY_ID / _SECRET")
        client = fc2.Client(
            endpoint=endpoint,
            accessKeyID=access_key_id,
            accessKeySecret=access_key_secret,
            securityToken=security_token,
        )
        try:
            response = client.invoke_function(spec.service, spec.name, payload=event)
        except fc2.fc_exceptions.FcError as error:
            raise click.ClickException(f"{spec.name} failed: {error}") from error
        click.echo(
            response.data.decode("utf-8", errors="replace")
            if isinstance(response.data, bytes)
            else response.data
        )
        return
    fc = in_process_fc(template)
    with fc:
        result = fc.invoke(spec.name, event)
    if not result.ok:
        raise click.ClickException(f"{spec.name} failed ({result.error_type}): {result.error_message}")
    try:
        click.echo(json.dumps(json.loads(result.payload or "null"), indent=2, ensure_ascii=False))
    except json.JSONDecodeError:
        click.echo(result.payload)
