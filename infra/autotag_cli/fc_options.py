"""What the commands that invoke functions share: the template, and a local FC built from it."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from localcloud.fc import Credentials, DeadLetterStore, LocalFC, Template, TemplateError, load_template

F = TypeVar("F", bound=Callable[..., Any])
DEFAULT_TEMPLATE = Path("template.yml")
DEFAULT_DEAD_LETTERS = Path(".localcloud/dead-letters.jsonl")


def template_option(command: F) -> F:
    return click.option(
        "--template",
        "template_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=DEFAULT_TEMPLATE,
        show_default=True,
        help="The Funcraft/ROS template declaring the functions.",
    )(command)


def read_template(path: Path) -> Template:
    try:
        return load_template(path)
    except TemplateError as error:
        raise click.ClickException(str(error)) from error


def in_process_fc(template: Template, dead_letters: DeadLetterStore | None = None) -> LocalFC:
    """A local FC for one-off invocations from this process: OSS endpoint and credentials from the usual
    environment variables (defaults: the local cloud's)."""
    environment = {"AUTOTAG_FANOUT": "in-process"}
    if os.environ.get("AUTOTAG_OSS_ENDPOINT"):
        environment["AUTOTAG_OSS_ENDPOINT"] = os.environ["AUTOTAG_OSS_ENDPOINT"]
    key_id = os.environ.get("ALIBABA_CLOUD_ACCESS_KEY_ID")
    credentials = (
        Credentials(
            key_id,
            os.environ.get("ALIBABA_CLOUD_ACCESS_KEY_SECRET", ""),
            os.environ.get("ALIBABA_CLOUD_SECURITY_TOKEN", ""),
        )
        if key_id
        else None
    )
    try:
        return LocalFC(template, environment=environment, dead_letters=dead_letters, credentials=credentials)
    except TemplateError as error:
        raise click.ClickException(str(error)) from error
