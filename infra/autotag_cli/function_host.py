"""Running template.yml's functions from the CLI (`invoke`, `replay`, `local up`) where the
command points: each function gets the template's environment, with the command's OSS and FC endpoints,
`--rules` when given, and `--env-vars FILE` over all of it (SAM's JSON shape: an object per function name,
or `Parameters` for every function). On the local cloud a function runs with its service role's
credentials, so the template's policies are enforced; against Alibaba Cloud, with the command's own."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import click

from localcloud.fc import Credentials, DeadLetterStore, LocalFC, Template, TemplateError, load_template

from .errors import BadInput
from .options import rules_from
from .target import Target

F = TypeVar("F", bound=Callable[..., Any])
DEFAULT_TEMPLATE = Path("template.yml")
LOCAL_STATE = Path(".localcloud")
DEFAULT_DEAD_LETTERS = LOCAL_STATE / "dead-letters.jsonl"


def template_option(command: F) -> F:
    return click.option(
        "--template",
        "template_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=DEFAULT_TEMPLATE,
        show_default=True,
        help="The Funcraft/ROS template declaring the functions.",
    )(command)


def environment_options(command: F) -> F:
    """--rules and --env-vars: what the functions run with, besides the template's environment."""
    command = click.option(
        "--env-vars",
        "env_vars",
        type=click.Path(dir_okay=False, path_type=Path),
        help='JSON of environment overrides: {"<function>": {"NAME": "value"}, "Parameters": {...}} for all '
        "(SAM's shape). Default: none.",
    )(command)
    return click.option(
        "--rules",
        "rules",
        envvar="AUTOTAG_RULES",
        show_envvar=True,
        help="Rules file the functions use instead of the template's AUTOTAG_RULES (`default`: the "
        "shipped rules). Default: the template's.",
    )(command)


def read_template(path: Path) -> Template:
    if not path.exists():
        raise BadInput(f"no template at {path}: run from the project's folder or pass --template PATH")
    try:
        return load_template(path)
    except TemplateError as error:
        raise BadInput(str(error)) from None


def _env_vars(path: Path | None, template: Template) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """(for every function, per function) overrides from a SAM-shaped --env-vars file."""
    if path is None:
        return {}, {}
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise click.BadParameter(
            f"cannot read {path}: {error.strerror or error}", param_hint="--env-vars"
        ) from None
    except ValueError as error:
        raise click.BadParameter(f"{path} is not JSON: {error}", param_hint="--env-vars") from None
    if not isinstance(document, dict):
        raise click.BadParameter(f"{path}: an object of function names to variables", param_hint="--env-vars")
    shared: dict[str, str] = {}
    per_function: dict[str, dict[str, str]] = {}
    for name, variables in document.items():
        if name != "Parameters" and name not in template.functions:
            known = ", ".join(["Parameters", *template.functions])
            raise click.BadParameter(
                f"{path}: {name!r} is no function of the template ({known})", param_hint="--env-vars"
            )
        if not isinstance(variables, dict) or not all(
            isinstance(v, str | int | float | bool) for v in variables.values()
        ):
            raise click.BadParameter(
                f"{path}: {name!r} must map variable names to strings", param_hint="--env-vars"
            )
        values = {str(k): str(v).lower() if isinstance(v, bool) else str(v) for k, v in variables.items()}
        if name == "Parameters":
            shared.update(values)
        else:
            per_function[name] = values
    return shared, per_function


def host_functions(
    template: Template,
    target: Target,
    *,
    rules: str | None = None,
    check_rules: bool = True,
    env_vars: Path | None = None,
    dead_letters: DeadLetterStore | None = None,
    **options: Any,
) -> LocalFC:
    """A local FC running the template's functions against the command's target."""
    shared, per_function = _env_vars(env_vars, template)
    functions = {
        name: replace(spec, environment={**spec.environment, **per_function.get(name, {})})
        for name, spec in template.functions.items()
    }
    overrides = {"AUTOTAG_OSS_ENDPOINT": target.oss_endpoint, "AUTOTAG_FC_ENDPOINT": target.fc_endpoint}
    if rules:
        if check_rules:
            # a bad rules file is one clear error now, not a failure per invocation; as the functions read it
            rules_from(rules, target, functions_read=True)
        overrides["AUTOTAG_RULES"] = rules  # checked or not (rules in OSS may be pushed only later)
        # and in each function's configuration, as a deploy would set it: what the FC API's GetFunction
        # answers is what the function runs with (`autotag reconcile` reads the upload function's rules there)
        functions = {
            name: replace(spec, environment={**spec.environment, "AUTOTAG_RULES": rules})
            if "AUTOTAG_RULES" in spec.environment
            else spec
            for name, spec in functions.items()
        }
    overrides.update(shared)
    credentials = None
    if not target.local:  # Alibaba Cloud: no local roles to assume; the command's own credentials
        given = target.credentials
        credentials = Credentials(given.access_key_id, given.access_key_secret, given.security_token)
    try:
        return LocalFC(
            replace(template, functions=functions),
            environment=overrides,
            dead_letters=dead_letters,
            credentials=credentials,
            **options,
        )
    except TemplateError as error:
        conflicting = [
            n for variables in per_function.values() for n in variables if str(error).startswith(f"{n} is ")
        ]
        hint = (
            f"; {env_vars}: give {conflicting[0]} under Parameters, for every function"
            if conflicting and env_vars
            else ""
        )
        raise BadInput(f"{error}{hint}") from None
