"""Where a command points: the OSS and FC endpoints, the region and account, and the credentials — one
object, resolved once per command from the same options every command takes.

Endpoints: `--oss-endpoint` / `--fc-endpoint` (env `AUTOTAG_OSS_ENDPOINT` / `AUTOTAG_FC_ENDPOINT`); else,
when a region is given (`--region`, env `ALIBABA_CLOUD_REGION_ID`), Alibaba Cloud's public endpoints for
it (`https://oss-<region>.aliyuncs.com`, `https://<account-id>.<region>.fc.aliyuncs.com`), as `fun` and
`s` derive them; else the local cloud (`http://127.0.0.1:9000` and `:9001`).

Credentials: the flags, then `ALIBABA_CLOUD_ACCESS_KEY_ID` / `_SECRET` / `_SECURITY_TOKEN`, then the
profiles of the Alibaba Cloud credentials files (the aliyun CLI's `~/.aliyun/config.json`, then
`~/.alibabacloud/credentials.ini`; `--profile` or `ALIBABA_CLOUD_PROFILE` picks one) read by the official
`alibabacloud-credentials` package, and an ECS instance's RAM role when `ALIBABA_CLOUD_ECS_METADATA` names
it; then, for the local cloud only, its default AccessKey. The secret and token are never shown."""

from __future__ import annotations

import email.utils
import ipaddress
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import urlsplit

import click

from localcloud.oss.auth import DEFAULT_CREDENTIALS

from .errors import TARGET, BadInput, Unreachable
from .names import bucket_name_problem

F = TypeVar("F", bound=Callable[..., Any])
LOCAL_OSS_ENDPOINT = "http://127.0.0.1:9000"
LOCAL_FC_ENDPOINT = "http://127.0.0.1:9001"
LOCAL_CLOUDFLOW_ENDPOINT = "http://127.0.0.1:9002"
LOCAL_ACCOUNT_ID = "1234567890123456"
DEFAULT_REGION = "cn-hangzhou"


class TargetError(click.UsageError):
    """The options do not say where to go, or no credentials were found; exit code 2."""


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    access_key_secret: str
    security_token: str
    source: str  # where they came from, e.g. "environment", "profile default", "local cloud defaults"


@dataclass(frozen=True)
class Target:
    oss_endpoint: str
    fc_endpoint: str
    region: str
    account_id: str
    credentials: Credentials

    @property
    def local(self) -> bool:
        """Whether the OSS endpoint is on this machine (the local cloud)."""
        return is_loopback(self.oss_endpoint)

    def describe(self, *, oss: bool = True, fc: bool = True) -> str:
        parts = []
        if oss:
            parts.append(f"OSS {self.oss_endpoint}")
        if fc:
            parts.append(f"FC {self.fc_endpoint} (account {self.account_id})")
        parts.append(f"region {self.region}")
        parts.append(f"AccessKey ID {self.credentials.access_key_id} ({self.credentials.source})")
        return ", ".join(parts)

    def bucket(self, name: str, pool_size: int | None = None) -> Any:
        """An oss2 Bucket for `name` at the OSS endpoint, signed with these credentials; a name OSS would
        refuse is refused here, before any request."""
        import oss2

        problem = bucket_name_problem(name)
        if problem:
            raise BadInput(problem)

        from autotag.handlers.clients import oss_auth
        from autotag.settings import Credentials as OssCredentials

        credentials = self.credentials
        auth = oss_auth(
            OssCredentials(
                credentials.access_key_id, credentials.access_key_secret, credentials.security_token
            )
        )
        session = oss2.Session(pool_size=pool_size) if pool_size else None
        return oss2.Bucket(auth, self.oss_endpoint, name, session=session)

    def oss_time(self) -> datetime:
        """What time OSS says it is: the `Date` of its answer to an unsigned request (any answer has one; on
        the local cloud, its shifted clock). This machine's clock when OSS sends none."""
        import requests

        require_reachable(self.oss_endpoint, "OSS")
        answer = requests.head(self.oss_endpoint, timeout=10)
        try:
            return email.utils.parsedate_to_datetime(answer.headers["Date"]).astimezone(timezone.utc)
        except (KeyError, TypeError, ValueError):
            return datetime.now(timezone.utc)

    def fc_client(self) -> Any:
        """An aliyun-fc2 client for the FC endpoint; fails fast, naming it, when nothing listens there
        (fc2 would otherwise retry a refused connection for half a minute)."""
        import fc2

        require_reachable(self.fc_endpoint, "FC")
        credentials = self.credentials
        return fc2.Client(
            endpoint=self.fc_endpoint,
            accessKeyID=credentials.access_key_id,
            accessKeySecret=credentials.access_key_secret,
            securityToken=credentials.security_token,
        )


def is_loopback(endpoint: str) -> bool:
    host = urlsplit(endpoint if "://" in endpoint else f"http://{endpoint}").hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def require_reachable(endpoint: str, what: str, timeout: float = 3.0) -> None:
    parts = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "", port), timeout=timeout):
            pass
    except OSError as error:
        reason = error.strerror or type(error).__name__
        hint = " (is `autotag local up` running?)" if is_loopback(endpoint) else ""
        raise Unreachable(f"cannot reach {what} at {endpoint}: {reason}{hint}") from None


# ---- resolution ---------------------------------------------------------------------------------------


def resolve(
    *,
    oss_endpoint: str | None,
    fc_endpoint: str | None,
    region: str | None,
    account_id: str | None,
    access_key_id: str | None,
    access_key_secret: str | None,
    security_token: str | None,
    profile: str | None,
    environ: dict[str, str],
    key_from_environment: bool = False,
) -> Target:
    """The target these options (already merged with their environment variables) describe."""
    region_given = bool(region)
    region = region or DEFAULT_REGION
    if not oss_endpoint:
        oss_endpoint = f"https://oss-{region}.aliyuncs.com" if region_given else LOCAL_OSS_ENDPOINT
    if not fc_endpoint:
        if region_given and account_id:
            fc_endpoint = f"https://{account_id}.{region}.fc.aliyuncs.com"
        elif region_given:
            fc_endpoint = ""  # only needed, and then asked for, by commands that talk to FC
        else:
            fc_endpoint = LOCAL_FC_ENDPOINT
    for name, endpoint in (("--oss-endpoint", oss_endpoint), ("--fc-endpoint", fc_endpoint)):
        if endpoint and urlsplit(endpoint).scheme not in ("http", "https"):
            raise TargetError(
                f"{name} {endpoint[:200]!r} needs a scheme: an endpoint is a URL such as "
                "http://127.0.0.1:9000 or https://oss-cn-hangzhou.aliyuncs.com"
            )
        if endpoint and not urlsplit(endpoint).hostname:
            raise TargetError(f"{name} {endpoint[:200]!r} is not an endpoint such as http://127.0.0.1:9000")
    local = is_loopback(oss_endpoint)
    account_id = account_id or LOCAL_ACCOUNT_ID
    credentials = _credentials(
        access_key_id, access_key_secret, security_token, profile, local, environ, key_from_environment
    )
    return Target(oss_endpoint, fc_endpoint, region, account_id, credentials)


def _credentials(
    key_id: str | None,
    secret: str | None,
    token: str | None,
    profile: str | None,
    local: bool,
    environ: dict[str, str],
    key_from_environment: bool,
) -> Credentials:
    if key_id or secret:
        if not (key_id and secret):
            missing = "ACCESS_KEY_SECRET" if key_id else "ACCESS_KEY_ID"
            raise TargetError(
                f"an AccessKey needs its ID and its secret: --{missing.lower().replace('_', '-')} "
                f"(or ALIBABA_CLOUD_{missing}) is missing"
            )
        return Credentials(key_id, secret, token or "", "environment" if key_from_environment else "flags")
    found = _from_credentials_files(profile, environ)
    if found is not None:
        return found
    if profile:
        raise TargetError(
            f"no profile {profile!r} in ~/.aliyun/config.json or ~/.alibabacloud/credentials.ini"
        )
    if local:
        default = DEFAULT_CREDENTIALS[0]
        return Credentials(default.access_key_id, default.access_key_secret, "", "local cloud defaults")
    raise TargetError(
        "no credentials for Alibaba Cloud: set ALIBABA_CLOUD_ACCESS_KEY_ID and "
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET (and ALIBABA_CLOUD_SECURITY_TOKEN for STS), pass --profile, or "
        "configure the aliyun CLI"
    )


def _from_credentials_files(profile: str | None, environ: dict[str, str]) -> Credentials | None:
    """A profile of the Alibaba Cloud credentials files (or the ECS instance's role when named)."""
    from alibabacloud_credentials.provider import (
        CLIProfileCredentialsProvider,
        EcsRamRoleCredentialsProvider,
        ProfileCredentialsProvider,
    )

    name = profile or environ.get("ALIBABA_CLOUD_PROFILE")
    providers: list[tuple[str, Callable[[], Any]]] = [
        (f"aliyun CLI profile {name or 'default'}", lambda: CLIProfileCredentialsProvider(profile_name=name)),
        (
            f"credentials file profile {name or 'default'}",
            lambda: ProfileCredentialsProvider(profile_name=name),
        ),
    ]
    if environ.get("ALIBABA_CLOUD_ECS_METADATA") and not profile:
        role = environ["ALIBABA_CLOUD_ECS_METADATA"]
        providers.append((f"ECS RAM role {role}", lambda: EcsRamRoleCredentialsProvider(role_name=role)))
    for source, provider in providers:
        try:
            found = provider().get_credentials()
        except Exception:  # a provider without its file or profile: try the next one
            continue
        if found is not None and found.get_access_key_id():
            return Credentials(
                found.get_access_key_id(),
                found.get_access_key_secret(),
                found.get_security_token() or "",
                source,
            )
    return None


# ---- the options every command takes ------------------------------------------------------------------


def target_options(*, oss: bool = True, fc: bool = False, fc_optional: bool = False) -> Callable[[F], F]:
    """Add the target options to a command and pass it `target: Target` instead of them; `fc_optional`: the
    command asks FC something it can do without (--fc-endpoint taken, no account required)."""

    def decorate(command: F) -> F:
        @wraps(command)
        def with_target(*args: Any, **kwargs: Any) -> Any:
            options = {name: kwargs.pop(name, None) for name in _OPTION_NAMES}
            show = options.pop("show_target")
            source = click.get_current_context().get_parameter_source("access_key_id")
            target = resolve(
                **options,  # type: ignore[arg-type]
                key_from_environment=source == click.core.ParameterSource.ENVIRONMENT,
                environ=dict(os.environ),
            )
            if fc and not target.fc_endpoint:
                raise TargetError(
                    "FC's endpoint needs the account: pass --account-id (or ALIBABA_CLOUD_ACCOUNT_ID) with "
                    "--region, or --fc-endpoint"
                )
            click.get_current_context().meta[TARGET] = target  # so errors can name the endpoint and key
            if show:
                click.echo(f"target: {target.describe(oss=oss, fc=fc)}", err=True)
            return command(*args, target=target, **kwargs)

        decorated: Any = with_target
        for option in reversed(_options(oss=oss, fc=fc or fc_optional)):
            decorated = option(decorated)
        return decorated  # type: ignore[no-any-return]

    return decorate


_OPTION_NAMES = (
    "oss_endpoint",
    "fc_endpoint",
    "region",
    "account_id",
    "access_key_id",
    "access_key_secret",
    "security_token",
    "profile",
    "show_target",
)


def _options(*, oss: bool, fc: bool) -> list[Callable[[F], F]]:
    options: list[Callable[[F], F]] = []
    if oss:
        options.append(
            click.option(
                "--oss-endpoint",
                envvar="AUTOTAG_OSS_ENDPOINT",
                show_envvar=True,
                metavar="URL",
                help=f"OSS endpoint. Default: from --region, else the local cloud ({LOCAL_OSS_ENDPOINT}).",
            )
        )
    if fc:
        options.append(
            click.option(
                "--fc-endpoint",
                envvar="AUTOTAG_FC_ENDPOINT",
                show_envvar=True,
                metavar="URL",
                help="FC endpoint. Default: from --region and --account-id, else the local cloud "
                f"({LOCAL_FC_ENDPOINT}).",
            )
        )
    options += [
        click.option(
            "--region",
            envvar="ALIBABA_CLOUD_REGION_ID",
            show_envvar=True,
            help=f"Alibaba Cloud region; given, it picks the region's public endpoints. Default: "
            f"{DEFAULT_REGION} on the local cloud.",
        ),
        click.option(
            "--account-id",
            envvar="ALIBABA_CLOUD_ACCOUNT_ID",
            show_envvar=True,
            help=f"Alibaba Cloud account ID (FC endpoints and ARNs). Default: {LOCAL_ACCOUNT_ID}, the local "
            "cloud's.",
        ),
        click.option(
            "--access-key-id",
            envvar="ALIBABA_CLOUD_ACCESS_KEY_ID",
            show_envvar=True,
            help="AccessKey ID. Default: the credentials files (--profile), else the local cloud's.",
        ),
        click.option(
            "--access-key-secret",
            envvar="ALIBABA_CLOUD_ACCESS_KEY_SECRET",
            show_envvar=True,
            help="AccessKey secret (prefer the environment variable to the flag).",
        ),
        click.option(
            "--security-token",
            envvar="ALIBABA_CLOUD_SECURITY_TOKEN",
            show_envvar=True,
            help="STS security token, with STS credentials. Default: none.",
        ),
        click.option(
            "--profile",
            envvar="ALIBABA_CLOUD_PROFILE",
            show_envvar=True,
            help="Profile of ~/.aliyun/config.json or ~/.alibabacloud/credentials.ini. Default: 'default' "
            "when those files exist.",
        ),
        click.option(
            "--show-target",
            is_flag=True,
            help="Print the endpoints, region and AccessKey ID used (never the secret) to stderr first.",
        ),
    ]
    return options
