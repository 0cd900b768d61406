"""`autotag deploy`: template.yml to Function Compute through aliyun-fc2, and the buckets it declares (the
sweep's state bucket) to OSS through oss2, idempotently. A deploy to Alibaba Cloud gives every function one
AUTOTAG_RECORD_SECRET: this shell's, else the one deployed, else a new one (deployer.plan.record_secret).

It shows its plan and asks before applying it on a terminal (`--yes` skips the question; without a
terminal it applies only with `--yes`). It packages for where it deploys: Alibaba Cloud gets the wheels
its runtime lacks (requirements/fc-package-<runtime>.txt); the local cloud runs functions on this interpreter,
which has them, so it gets the code alone."""

from __future__ import annotations

import json
import os
import secrets
import sys
from pathlib import Path

import click

from cloudformats.package import build_package
from deployer.apply import Deployer
from deployer.flows import FlowRefused, check_flows, cloudflow_client, flow_actions
from deployer.package import PackageError, vendored_dependencies
from deployer.plan import CHANGES, RECORD_SECRET, record_secret
from deployer.plan import Target as DeployTarget
from deployer.recursion import recursion_findings
from localcloud.fc import Template

from .console import shown
from .errors import BadInput, CliError, Unreachable, doing
from .function_host import read_template, template_option
from .target import LOCAL_CLOUDFLOW_ENDPOINT, Target, is_loopback, require_reachable, target_options


@click.command()
@template_option
@click.option(
    "--role",
    "roles",
    multiple=True,
    metavar="SERVICE=ARN",
    help="The RAM role a service runs under (repeatable). Default: acs:ram::<account-id>:role/<service>, a "
    "role carrying that service's Policies from the template.",
)
@click.option(
    "--trigger-role",
    default="",
    metavar="ARN",
    help="The RAM role OSS assumes to invoke the functions. Default: none (the local cloud needs none).",
)
@click.option(
    "--no-dependencies",
    is_flag=True,
    help="Zip the CodeUri alone. Default: alone for the local cloud, with the runtime's wheels otherwise.",
)
@click.option(
    "--prune",
    is_flag=True,
    help="Delete the functions' triggers that the template no longer declares (after moving from the "
    "native OSS trigger to EventBridge, say). Default: list them and leave them.",
)
@click.option("--dry-run", is_flag=True, help="Print the plan; change nothing.")
@click.option("-y", "--yes", is_flag=True, help="Apply the plan without asking (needed without a terminal).")
@click.option(
    "--cloudflow-endpoint",
    envvar="AUTOTAG_CLOUDFLOW_ENDPOINT",
    show_envvar=True,
    metavar="URL",
    help="CloudFlow endpoint, for the template's flows. Default: the local cloud's "
    f"({LOCAL_CLOUDFLOW_ENDPOINT}) "
    "when FC is local, else the region's.",
)
@target_options(oss=True, fc=True)
@click.option("--json", "as_json", is_flag=True, help="Print the plan and what was applied as JSON.")
def deploy(
    template_path: Path,
    roles: tuple[str, ...],
    trigger_role: str,
    no_dependencies: bool,
    prune: bool,
    dry_run: bool,
    yes: bool,
    cloudflow_endpoint: str | None,
    target: Target,
    as_json: bool,
) -> None:
    """Create or update the buckets, services, functions, async configs, triggers and CloudFlow flows
    template.yml declares.

    \b
    Examples:
      autotag deploy --dry-run                                   # against `autotag local up`
      autotag deploy --region cn-hangzhou --account-id <account-id> --dry-run
    """
    template = read_template(template_path)
    findings = recursion_findings(template)
    for finding in findings:
        click.echo(f"{finding.level}: {finding.message}", err=True)
    if any(f.level == "error" for f in findings):
        raise BadInput(f"{template_path} would make a function trigger itself; nothing deployed")
    try:  # before anything is read or sent: a definition the local cloud could not run is never deployed
        check_flows(template)
    except FlowRefused as error:
        raise BadInput(f"{template_path}: {error}; nothing deployed") from None
    local = is_loopback(target.fc_endpoint)
    bare = no_dependencies or local
    try:
        dependencies = {
            runtime: vendored_dependencies(runtime)
            for runtime in sorted({spec.runtime for spec in template.functions.values()})
            if not bare
        }
    except PackageError as error:
        raise (Unreachable if error.unreachable else CliError)(str(error)) from None
    doing(f"reading what FC at {target.fc_endpoint} has")
    client = target.fc_client()
    deployer = Deployer(
        client,
        template,
        DeployTarget(target.region, target.account_id, _service_roles(roles, template), trigger_role),
        lambda code, runtime: build_package(code, dependencies.get(runtime)),
        prune=prune,
    )
    try:
        if not local:  # the local cloud runs the template's value (empty: unkeyed seals)
            try:
                deployer.secret, source = record_secret(
                    deployer.deployed_secrets(),
                    os.environ.get(RECORD_SECRET, ""),
                    lambda: secrets.token_urlsafe(32),
                )
            except ValueError as error:
                raise click.ClickException(str(error)) from None
            click.echo(f"{RECORD_SECRET}: {source}")
        actions = deployer.plan()
        if template.buckets:
            doing(f"reading the buckets template.yml declares at OSS {target.oss_endpoint}")
            require_reachable(target.oss_endpoint, "OSS")
            actions = deployer.bucket_actions(target.bucket) + actions  # created before what uses them
        if template.flows:  # after the functions their processors invoke
            endpoint = cloudflow_endpoint or (LOCAL_CLOUDFLOW_ENDPOINT if local else "")
            doing(f"reading the flows at CloudFlow {endpoint or target.region}")
            if endpoint:
                require_reachable(endpoint, "CloudFlow")
            credentials = target.credentials
            flows = cloudflow_client(
                endpoint,
                target.region,
                credentials.access_key_id,
                credentials.access_key_secret,
                credentials.security_token,
            )
            actions += flow_actions(flows, template, target.account_id)
        # one action a line, never a table's cell: a resource's name or ARN (for --role) copies whole
        width = max((len(a.verb) for a in actions), default=0)
        plan_lines = [
            f"deploy plan for {template_path} → {target.fc_endpoint}" + (" (dry run)" if dry_run else ""),
            *(f"  {a.verb:<{width}}  {a.resource}" + (f" — {a.reason}" if a.reason else "") for a in actions),
        ]
        changes = sum(a.verb in CHANGES for a in actions)
        packaged = (
            "the code alone (the local cloud)" if bare else f"code and {', '.join(dependencies)} packages"
        )
        summary = {
            "template": str(template_path),
            "fcEndpoint": target.fc_endpoint,
            "dryRun": dry_run,
            "plan": [{"resource": a.resource, "action": a.verb, "why": a.reason} for a in actions],
            "changes": changes,
            "packaged": packaged,
            "applied": 0,
        }
        if not as_json:
            for line in plan_lines:
                click.echo(shown(line))
        if dry_run or not changes:
            if as_json:
                click.echo(json.dumps(summary, ensure_ascii=False))
            elif dry_run:
                click.echo(f"{changes} change(s) planned, packaging {packaged}; nothing done (dry run)")
            else:
                click.echo("nothing to change: already deployed")
            return
        if not yes:
            if not sys.stdin.isatty():
                raise BadInput(
                    f"{changes} change(s) planned; not a terminal, so nothing is applied without --yes"
                )
            click.confirm(f"apply {changes} change(s) to {target.fc_endpoint}?", abort=True, err=as_json)
        doing(f"deploying to FC at {target.fc_endpoint}")
        done = deployer.apply(actions)
    finally:
        deployer.close()
    if as_json:
        click.echo(json.dumps({**summary, "applied": done}, ensure_ascii=False))
    else:
        click.echo(f"{done} change(s) applied")


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
