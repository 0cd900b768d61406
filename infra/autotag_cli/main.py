"""The `autotag` command."""

from __future__ import annotations

import logging

import click

from autotag.sdk_logs import quiet_oss2
from autotag.sweep.fanout import quiet_fc2

from .backfill import backfill
from .demo import demo
from .deploy import deploy
from .events import event
from .invoke import invoke
from .local import local
from .plan import plan
from .replay import replay
from .sweep import sweep


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log debug detail to stderr.")
def cli(verbose: bool) -> None:
    """Automatic object tagging for Alibaba Cloud OSS, and the local cloud to run it on."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    quiet_oss2()  # even with -v: the SDKs' request dumps carry signatures and security tokens
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
