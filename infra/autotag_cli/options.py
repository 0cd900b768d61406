"""Options of the commands that evaluate rules here (plan, sweep, invoke, local up): the rules, and the
sweep's state prefix; and the CLI's reading of rules: a local file (JSON, or YAML, which only the CLI reads:
the functions read JSON) or an OSS object (`oss://bucket/key`, read with the command's credentials through
the functions' own loader)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from autotag.rules import RulesError, RuleSet, load_rules, parse_rules
from autotag.rules.checks import MAX_DEPTH
from autotag.rules.loader import decode_text, is_yaml_name, read_rules_file
from autotag.rules.remote import RulesCache, parse_location
from autotag.settings import DEFAULT_STATE_PREFIX, Settings

from .errors import BadInput, CliError, Unreachable

if TYPE_CHECKING:
    from .target import Target

F = TypeVar("F", bound=Callable[..., Any])


def rules_option(command: F) -> F:
    return click.option(
        "--rules",
        "rules_path",
        envvar="AUTOTAG_RULES",
        show_envvar=True,
        default="default",
        show_default=True,
        help="Rules file, `oss://BUCKET/KEY` for rules kept in OSS, or `default` for the shipped rules.",
    )(command)


def yaml_document(path: str) -> Any:
    """The document of a YAML rules file (bounded like any rules file; safe_load builds no objects)."""
    import yaml

    text = decode_text(read_rules_file(path), path)
    try:
        return yaml.safe_load(text)
    except RecursionError:
        raise RulesError(f"{path}: the document nests more than {MAX_DEPTH} levels deep") from None
    except yaml.YAMLError as exc:
        raise RulesError(f"{path}: not valid YAML: {' '.join(str(exc).split())[:200]}") from None


def rules_from(path: str, target: Target | None = None, *, functions_read: bool = False) -> RuleSet:
    """The rules `path` names: `default`, a local file, or `oss://bucket/key` read at `target` with its
    credentials, as the functions read it. `functions_read`: only what the functions themselves can load
    (JSON), for the commands that run them."""
    try:
        # the functions' own record secrets (AUTOTAG_RECORD_SECRET), so the CLI trusts the same records
        secrets = Settings.from_environment().record_secrets
        location = parse_location(path)
        if location is not None:
            if target is None:
                raise click.UsageError(f"{path}: rules in OSS are read by commands that take --oss-endpoint")
            from autotag.handlers.rules_source import fetch_from

            from .errors import doing

            doing(f"reading the rules {location} at {target.oss_endpoint}")
            try:
                return RulesCache(location, secrets).get(fetch_from(target.bucket(location.bucket), location))
            except RulesError as error:
                raise unread(error) from None
        file = Settings(rules=path, endpoint=None).rules_path()
        if is_yaml_name(file) and not functions_read:
            return parse_rules(yaml_document(file), file, secrets)
        return load_rules(file, secrets)
    except RulesError as error:
        raise BadInput(str(error)) from None


def unread(error: RulesError) -> CliError:
    """Rules in OSS that could not be read, with docs/cli.md's exit code: 3 when OSS (or whatever answers
    at the endpoint) cannot be reached, answers not as OSS does, refuses the credentials or a permission, or
    fails (5xx); otherwise 2, the rules named being wrong or missing (a missing object or bucket included,
    as a missing rules file is)."""
    from autotag.gateway import AccessRefused

    failure = getattr(error, "failure", None)
    if failure is not None and (
        not failure.status  # no answer
        or isinstance(failure, AccessRefused)
        or failure.status >= 500
        or not (failure.code or failure.request_id)  # not OSS's answer
    ):
        return Unreachable(str(error))
    return BadInput(str(error))


def pinned_rules(path: str, target: Target) -> dict[str, str]:
    """A backfill execution's own rules (`autotag backfill --cloud --rules oss://...`): read once here, so
    that rules which do not load are refused before anything starts, and pinned to the version read (its
    ETag), which every batch then checks it is given (docs/backfill.md)."""
    location = parse_location(path)
    if location is None:
        raise click.BadParameter(
            "with --cloud the function reads the rules from OSS: give oss://<bucket>/<key>",
            param_hint="--rules",
        )
    from autotag.handlers.rules_source import fetch_from

    from .errors import doing

    doing(f"reading the rules {location} at {target.oss_endpoint}")
    cache = RulesCache(location, Settings.from_environment().record_secrets)
    try:
        cache.get(fetch_from(target.bucket(location.bucket), location))
    except RulesError as error:
        raise unread(error) from None
    return {"rules": str(location), "rulesETag": str(cache.etag)}


def state_prefix_option(why: str) -> Callable[[F], F]:
    return click.option(
        "--state-prefix",
        envvar="AUTOTAG_STATE_PREFIX",
        show_envvar=True,
        default=DEFAULT_STATE_PREFIX,
        show_default=True,
        help=f"Where the sweep keeps its checkpoints and leases: {why}",
    )


class FiniteFloatRange(click.FloatRange):
    """click's FloatRange, refusing NaN too (which compares false with every bound, so passes them all and
    would be written into a job's JSON, which cannot hold it)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if number != number:  # NaN
            self.fail(f"{value!r} is not a number", param, ctx)
        return number
