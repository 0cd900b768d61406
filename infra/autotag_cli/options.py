"""Options the commands that talk to OSS share: endpoint, credentials and rules."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click
import oss2

from autotag.handlers.clients import oss_auth
from autotag.rules import RulesError, RuleSet, load_rules
from autotag.settings import Credentials, Settings

F = TypeVar("F", bound=Callable[..., Any])


def credential_options(required: bool) -> Callable[[F], F]:
    """--access-key-id / --access-key-secret / --security-token from the usual environment variables."""

    def decorate(command: F) -> F:
        secret_default = {} if required else {"default": ""}
        command = click.option("--security-token", envvar="ALIBABA_CLOUD_SECURITY_TOKEN", default="")(command)
        command = click.option(
            "--access-key-secret",
            envvar="ALIBABA_CLOUD_ACCESS_KEY_SECRET",
            required=required,
            **secret_default,
        )(command)
        return click.option(
            "--access-key-id", envvar="ALIBABA_CLOUD_ACCESS_KEY_ID", required=required, **secret_default
        )(command)

    return decorate


def oss_options(command: F) -> F:
    for option in reversed(
        [
            click.option(
                "--endpoint",
                envvar="AUTOTAG_OSS_ENDPOINT",
                required=True,
                help="OSS endpoint [env AUTOTAG_OSS_ENDPOINT]",
            ),
            credential_options(required=True),
            click.option(
                "--rules",
                "rules_path",
                envvar="AUTOTAG_RULES",
                default="default",
                show_default=True,
                help="Rules file, or `default` for the shipped rules [env AUTOTAG_RULES]",
            ),
        ]
    ):
        command = option(command)
    return command


def rules_from(path: str) -> RuleSet:
    try:
        # the functions' own record secrets (AUTOTAG_RECORD_SECRET), so the CLI trusts the same records
        secrets = Settings.from_environment().record_secrets
        return load_rules(Settings(rules=path, endpoint=None).rules_path(), secrets)
    except RulesError as error:
        raise click.ClickException(str(error)) from error


def bucket_for(
    endpoint: str, name: str, key_id: str, secret: str, token: str, pool_size: int | None = None
) -> oss2.Bucket:
    auth = oss_auth(Credentials(key_id, secret, token))
    session = oss2.Session(pool_size=pool_size) if pool_size else None
    return oss2.Bucket(auth, endpoint, name, session=session)
