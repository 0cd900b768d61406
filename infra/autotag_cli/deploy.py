"""`autotag deploy`: template.yml to Function Compute through aliyun-fc2, idempotently."""

from __future__ import annotations

from pathlib import Path

import click
from deployer.apply import Deployer
from deployer.package import PackageError, build_package, vendored_dependencies
from deployer.plan import UNCHANGED, Target
from deployer.recursion import recursion_findings
from rich.console import Console
from rich.table import Table

from localcloud.fc import Template

from .fc_options import read_template, template_option
from .options import credential_options


@click.command()
@template_option
@click.option(
    "--endpoint",
    envvar="AUTOTAG_FC_ENDPOINT",
    required=True,
    help="FC endpoint, e.g. https://<account>.cn-hangzhou.fc.aliyuncs.com [env AUTOTAG_FC_ENDPOINT]",
)
@click.option("--region", default="cn-hangzhou", show_default=True)
@click.option(
    "--account-id", envvar="ALIBABA_CLOUD_ACCOUNT_ID", default="1234567890123456", show_default=True
)
@click.option(
    "--role",
    "roles",
    multiple=True,
    metavar="SERVICE=ARN",
    help="The RAM role a service runs under (repeatable); default acs:ram::<account-id>:role/<service>, "
    "a role carrying that service's Policies from the template.",
)
@click.option("--trigger-role", default="", help="RAM role ARN OSS assumes to invoke the functions.")
@credential_options(required=True)
@click.option("--no-dependencies", is_flag=True, help="Zip the CodeUri only (no vendored wheels).")
@click.option("--dry-run", is_flag=True, help="Print the plan; change nothing.")
def deploy(
    template_path: Path,
    endpoint: str,
    region: str,
    account_id: str,
    roles: tuple[str, ...],
    trigger_role: str,
    access_key_id: str,
    access_key_secret: str,
    security_token: str,
    no_dependencies: bool,
    dry_run: bool,
) -> None:
    """Create or update the services, functions, async configs and triggers template.yml declares."""
    import fc2

    template = read_template(template_path)
    findings = recursion_findings(template)
    for finding in findings:
        click.echo(f"{finding.level}: {finding.message}", err=True)
    if any(f.level == "error" for f in findings):
        raise click.ClickException("template.yml would make a function trigger itself; nothing deployed")
    try:
        dependencies = None if no_dependencies else vendored_dependencies()
    except PackageError as error:
        raise click.ClickException(str(error)) from error
    client = fc2.Client(
        endpoint=endpoint,
        accessKeyID=access_key_id,
        accessKeySecret=access_key_secret,
        securityToken=security_token,
    )
    deployer = Deployer(
        client,
        template,
        Target(region, account_id, _service_roles(roles, template), trigger_role),
        lambda code: build_package(code, dependencies),
    )
    try:
        actions = deployer.plan()
        table = Table(
            title=f"deploy plan for {template_path} → {endpoint}" + (" (dry run)" if dry_run else "")
        )
        for column in ("resource", "action", "why"):
            table.add_column(column)
        for action in actions:
            table.add_row(action.resource, action.verb, action.reason)
        Console().print(table)
        changes = sum(a.verb != UNCHANGED for a in actions)
        if dry_run:
            click.echo(f"{changes} change(s) planned; nothing done (dry run)")
            return
        done = deployer.apply(actions)
    except fc2.fc_exceptions.FcError as error:
        raise click.ClickException(f"FC refused the deploy: {error}") from error
    finally:
        deployer.close()
    click.echo(f"{done} change(s) applied" if done else "nothing to change: already deployed")


def _service_roles(given: tuple[str, ...], template: Template) -> dict[str, str]:
    services = {spec.service for spec in template.functions.values()}
    roles: dict[str, str] = {}
    for item in given:
        service, equals, arn = item.partition("=")
        if not equals or service not in services or not arn.startswith("acs:ram::"):
            raise click.BadParameter(
                f"{item!r} is not SERVICE=acs:ram::<account-id>:role/<name> for a service of the template "
                f"({', '.join(sorted(services))})",
                param_hint="--role",
            )
        roles[service] = arn
    return roles
