"""Options of the commands that evaluate rules here (plan, sweep): the rules, and the sweep's state prefix."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from autotag.rules import RulesError, RuleSet, load_rules
from autotag.settings import DEFAULT_STATE_PREFIX, Settings

F = TypeVar("F", bound=Callable[..., Any])


def rules_option(command: F) -> F:
    return click.option(
        "--rules",
        "rules_path",
        envvar="AUTOTAG_RULES",
        show_envvar=True,
        default="default",
        show_default=True,
        help="Rules file, or `default` for the shipped rules.",
    )(command)


def rules_from(path: str) -> RuleSet:
    try:
        # the functions' own record secrets (AUTOTAG_RECORD_SECRET), so the CLI trusts the same records
        secrets = Settings.from_environment().record_secrets
        return load_rules(Settings(rules=path, endpoint=None).rules_path(), secrets)
    except RulesError as error:
        raise click.ClickException(str(error)) from None


def state_prefix_option(why: str) -> Callable[[F], F]:
    return click.option(
        "--state-prefix",
        envvar="AUTOTAG_STATE_PREFIX",
        show_envvar=True,
        default=DEFAULT_STATE_PREFIX,
        show_default=True,
        help=f"Where the sweep keeps its checkpoints and leases: {why}",
    )
