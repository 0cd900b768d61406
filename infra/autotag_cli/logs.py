"""`autotag logs`: the local FC's invocations, from the invocation log `autotag local up` keeps in the
folder it runs in (invocation_file.py): each invocation's line, as local up prints it, with what the
function logged under it; `--follow` goes on as new ones come. The upload function ignoring the system's
own state objects is counted, not shown, unless `-v`. On Alibaba Cloud, FC sends functions' logs to the
Log Service store of the service's log configuration (docs/cli.md has the query)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import click

from .errors import VERBOSE, BadInput, NotFound
from .function_host import DEFAULT_TEMPLATE, LOCAL_STATE, read_template
from .invocation_file import latest_log, parse_record, read_records
from .local_cloud_file import LocalCloudFileError, choose, running_local_clouds

FOLLOW_POLL_SECONDS = 0.5


class _Shown:
    """Prints the records it is given that match, and counts the ignored state writes it leaves out."""

    def __init__(self, function: str | None, request_id: str | None, as_json: bool, verbose: bool) -> None:
        self.function, self.request_id, self.as_json, self.verbose = function, request_id, as_json, verbose
        self.ignored = 0
        self.matched = 0  # records of the function and request id asked for, shown or counted

    def __call__(self, records: Iterable[dict[str, Any]]) -> None:
        for record in records:
            if self.function and record.get("function") != self.function:
                continue
            if self.request_id and record.get("requestId") != self.request_id:
                continue
            self.matched += 1
            if record.get("ignored") and not self.verbose:
                self.ignored += 1
                continue
            if self.as_json:
                click.echo(json.dumps(record, ensure_ascii=False))
                continue
            click.echo(str(record.get("line", "")))
            for line in record.get("log") or []:
                click.echo(f"    {line}")

    def close(self) -> None:
        if self.ignored:
            click.echo(
                f"{self.ignored:,} ignored state writes not shown (upload events of the system's own state "
                "objects; -v shows them)",
                err=True,
            )


@click.command()
@click.argument("function", required=False)
@click.option("--follow", "-f", is_flag=True, help="Go on showing invocations as they come (Ctrl-C stops).")
@click.option("--request-id", help="Only the invocation with this request id. Default: every one.")
@click.option(
    "--file",
    "path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="An invocation log. Default: the one the `autotag local up` of this folder serving --fc-endpoint "
    "keeps (the only one running here when not given; when none runs, the log written last).",
)
@click.option(
    "--fc-endpoint",
    envvar="AUTOTAG_FC_ENDPOINT",
    show_envvar=True,
    help="The FC API of the local cloud whose invocations to show, when several run here. Default: the "
    "only one running here.",
)
@click.option(
    "--template",
    "template_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_TEMPLATE,
    show_default=True,
    help="The template whose functions FUNCTION names (checked when the file exists).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON record per invocation instead of lines.")
@click.pass_context
def logs(
    ctx: click.Context,
    function: str | None,
    follow: bool,
    request_id: str | None,
    path: Path | None,
    fc_endpoint: str | None,
    template_path: Path,
    as_json: bool,
) -> None:
    """Show the local FC's invocations (of FUNCTION only, when given), each with what the function logged.

    \b
    Examples:
      autotag logs
      autotag logs tag-on-upload --follow
    """
    if function is not None and (template_path.exists() or _given(ctx, "template_path")):
        template = read_template(template_path)
        if function not in template.functions:
            known = ", ".join(template.functions)
            raise NotFound(f"no function {function!r} in {template_path}; it has {known}")
    path = path if path is not None else _log_of_this_folder(fc_endpoint)
    if not path.exists() and not follow:
        raise BadInput(
            f"no invocation log at {path}: `autotag local up` keeps one in the folder it runs in; run this "
            "there, or pass --file"
        )
    shown = _Shown(function, request_id, as_json, bool(ctx.meta.get(VERBOSE)))
    try:
        if follow:
            _follow(path, shown)
        else:
            shown(read_records(path))
    except KeyboardInterrupt:  # --follow ends so
        pass
    finally:
        shown.close()
    if request_id and not follow and not shown.matched:
        raise NotFound(
            f"no invocation{f' of {function}' if function else ''} with request id {request_id} in {path}: "
            "one still running or queued is written when it ends (--follow waits for it); another folder's "
            "local up keeps its own log"
        )


def _log_of_this_folder(fc_endpoint: str | None) -> Path:
    """The invocation log of the local cloud running here that serves `fc_endpoint` (the only one, when
    not given); with none running, the log written last."""
    try:
        running = running_local_clouds()
        if running:
            cloud = choose(running, fc_endpoint or "", fc_endpoint is not None, fc=True)
            if cloud.invocation_log:
                return LOCAL_STATE / Path(cloud.invocation_log).name  # in this folder, whatever it says
    except LocalCloudFileError as error:
        raise BadInput(str(error)) from None
    return latest_log() or LOCAL_STATE / "invocations.jsonl"


def _given(ctx: click.Context, parameter: str) -> bool:
    return ctx.get_parameter_source(parameter) not in (None, click.core.ParameterSource.DEFAULT)


def _follow(path: Path, shown: _Shown) -> None:
    """What the log holds, then what is appended to it, until interrupted; a log begun anew (local up
    started again) is read from its start."""
    position, pending, inode = 0, "", None
    while True:
        try:
            status = path.stat()
        except FileNotFoundError:
            time.sleep(FOLLOW_POLL_SECONDS)
            continue
        if status.st_ino != inode or status.st_size < position:
            position, pending, inode = 0, "", status.st_ino
        if status.st_size > position:
            with path.open("rb") as file:
                file.seek(position)
                data = file.read()
            position += len(data)
            *complete, pending = (pending + data.decode("utf-8", errors="replace")).split("\n")
            shown(record for record in map(parse_record, complete) if record is not None)
        else:
            time.sleep(FOLLOW_POLL_SECONDS)
