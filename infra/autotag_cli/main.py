"""The `autotag` command: one group whose error boundary turns any failure into one line (errors.py),
and whose commands say where they point through the same target options (target.py)."""

from __future__ import annotations

import logging
from importlib.metadata import PackageNotFoundError, version

import click

from autotag.sdk_logs import quiet_oss2
from autotag.sweep.fanout import quiet_fc2

from .backfill import backfill
from .demo import demo
from .deploy import deploy
from .errors import DEBUG, VERBOSE, AutotagGroup
from .events import event
from .invoke import invoke
from .local import local
from .logs import logs
from .plan import plan
from .reconcile import reconcile
from .replay import replay
from .rules import rules
from .sweep import sweep
from .trigger import trigger


def _version() -> str:
    try:
        return version("oss-autotag")
    except PackageNotFoundError:  # run from a source tree without installing
        return "unknown"


@click.group(cls=AutotagGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(_version(), "--version", prog_name="autotag")
@click.option("-v", "--verbose", is_flag=True, help="Log what the product and the local cloud do (INFO).")
@click.option(
    "--debug", is_flag=True, help="Log everything (DEBUG, SDK lines too) and show tracebacks on errors."
)
@click.pass_context
def cli(ctx: click.Context, verbose: bool, debug: bool) -> None:
    """Automatic object tagging for Alibaba Cloud OSS, and the local cloud to run it on.

    Every command points at the local cloud unless told otherwise (--oss-endpoint, --fc-endpoint,
    --region); see `autotag COMMAND --help`."""
    ctx.meta[DEBUG] = debug
    ctx.meta[VERBOSE] = verbose or debug
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if verbose and not debug:
        for name in ("autotag", "localcloud", "backfill", "deployer"):
            logging.getLogger(name).setLevel(logging.INFO)
    if not debug:  # the SDKs' own lines (and urllib3's retry warnings) only with --debug
        for name in ("urllib3", "requests", "fc2"):
            logging.getLogger(name).setLevel(logging.ERROR)
    quiet_oss2()  # even with --debug: the SDKs' request dumps carry signatures and security tokens
    quiet_fc2()


cli.add_command(local)
cli.add_command(demo)
cli.add_command(plan)
cli.add_command(sweep)
cli.add_command(event)
cli.add_command(invoke)
cli.add_command(replay)
cli.add_command(deploy)
cli.add_command(backfill)
cli.add_command(rules)
cli.add_command(reconcile)
cli.add_command(trigger)
cli.add_command(logs)
