"""Invoking a deployed function through the FC API (`invoke --remote`, `trigger`), keeping what aliyun-fc2's
invoke_function drops when a function raises: FC's answer headers, among them the tail of the
invocation's log (`x-fc-log-result`, the last 4 KB, base64, when asked for with `x-fc-log-type: Tail`)."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

import click

from autotag.output import to_json

from .errors import DOING, CliError


@dataclass(frozen=True)
class Answer:
    request_id: str
    payload: str  # what the function returned, or FC's document of its error
    error_type: str  # "" when the function returned
    log: str  # the tail of its log ("" when not asked for, or for an asynchronous invocation)

    @property
    def error_message(self) -> str:
        try:
            document = json.loads(self.payload)
        except ValueError:
            return self.payload[:1000]
        if isinstance(document, dict) and document.get("errorMessage"):
            return str(document["errorMessage"])[:1000]
        return self.payload[:1000]


def invoke_function(
    client: Any, service: str, function: str, payload: bytes, *, asynchronous: bool = False
) -> Answer:
    """One invocation, synchronous with its log tail, or queued (`asynchronous`) as a trigger does. FC's
    refusals (a wrong key, an unknown function) raise fc2's error, which the error boundary describes."""
    path = f"/{client.api_version}/services/{service}/functions/{function}/invocations"
    headers = {"x-fc-invocation-type": "Async" if asynchronous else "Sync"}
    if not asynchronous:
        headers["x-fc-log-type"] = "Tail"
    # fc2's own signing and request: its invoke_function raises on a function's error with the headers lost
    signed = client._build_common_headers("POST", path, headers)
    response = client._do_request("POST", path, signed, body=payload)
    return Answer(
        str(response.headers.get("x-fc-request-id", "")),
        response.content.decode("utf-8", errors="replace"),
        str(response.headers.get("x-fc-error-type", "")),
        _log_tail(str(response.headers.get("x-fc-log-result", ""))),
    )


def _log_tail(encoded: str) -> str:
    try:
        return base64.b64decode(encoded, validate=True).decode("utf-8", errors="replace")
    except (binascii.Error, ValueError):
        return ""


def show(answer: Answer, function: str) -> None:
    """The log tail on standard error, the function's answer on standard output (indented when JSON); a
    function that raised is an error (exit code 1) naming what it raised."""
    if answer.log:
        click.echo(f"--- log tail of {function} (request id {answer.request_id}) ---", err=True)
        click.echo(answer.log.rstrip("\n"), err=True)
        click.echo("---", err=True)
    if answer.error_type:
        context = click.get_current_context(silent=True)
        what = (context.meta.get(DOING) if context is not None else "") or f"invoking {function}"
        failed = f"{what}: the function failed: {answer.error_message}"
        raise CliError(f"{failed} (request id {answer.request_id})")
    try:
        click.echo(to_json(json.loads(answer.payload), indent=2))
    except json.JSONDecodeError:
        click.echo(answer.payload.encode("utf-8", errors="backslashreplace").decode("utf-8"))
